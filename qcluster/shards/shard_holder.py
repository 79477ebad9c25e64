"""A collection's shards on this peer: shard id -> :class:`ReplicaSet`, built from the placement.

The placement (which peers hold a replica of each shard, in which state, and the shard's key under
custom sharding) comes from the agreed cluster state; on a single peer every shard is local and
``Active``. ``sync(placement)`` makes this peer's local replicas match it: it opens or creates the
local shards this peer holds and, when ``destructive``, closes and deletes the ones it no longer
holds (the caller passes ``destructive`` only once this peer has caught up with the cluster, so a
replay of old log entries never deletes data a later entry gives back).

Routing: ids go to shards over the collection's routing scheme (:mod:`routing`); under custom
sharding, over the shards of the point's shard key.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from qcluster.errors import BadInputError, NotFoundError, TransientError
from qcluster.logging import get_logger
from qcluster.shards.clock import ClockSet
from qcluster.shards.operations import (
    SELECTOR_OPS,
    PointSelector,
    UpdateOperation,
    UpdateVectors,
    UpsertPoints,
    sub_batch,
)
from qcluster.shards.replica_env import ReplicaEnv
from qcluster.shards.replica_set import ReplicaSet
from qcluster.shards.routing import Router, RoutingScheme, ring_table
from qcluster.types import ReplicaState, ShardKey

if TYPE_CHECKING:
    from qcluster.shards.local_shard import LocalShard

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class ShardPlacement:
    replicas: Mapping[int, ReplicaState] = field(default_factory=dict)
    shard_key: ShardKey | None = None
    since: Mapping[int, int] = field(default_factory=dict)  # the agreed ``ShardInfo.since``


OpenLocal = Callable[[Path], Awaitable["LocalShard"]]


def local_placement(shard_number: int, peer_id: int) -> dict[int, ShardPlacement]:
    """Every shard on this peer alone, Active (a single peer)."""
    return {sid: ShardPlacement({peer_id: ReplicaState.ACTIVE}) for sid in range(shard_number)}


class ShardHolder:
    def __init__(
        self,
        collection: str,
        root: Path,
        env: ReplicaEnv,
        epoch: int,
        scheme: RoutingScheme,
        custom: bool,
        write_factor: Callable[[], int],
        open_local: OpenLocal,
    ):
        self.collection = collection
        self.root = root
        self.env = env
        self.epoch = epoch
        self.scheme = scheme
        self.custom = custom
        self.sets: dict[int, ReplicaSet] = {}
        self.synced = False
        self.created_fresh: set[int] = set()  # local replicas created empty by this process
        self._write_factor = write_factor
        self._open_local = open_local
        self._routers: dict[tuple[int, ...], Router] = {}
        self._lock = asyncio.Lock()

    # ------------------------------------------------------------------ local replicas
    def local_shards(self) -> dict[int, LocalShard]:
        return {sid: rs.local for sid, rs in sorted(self.sets.items()) if rs.local is not None}

    def _set(self, sid: int, key: ShardKey | None) -> ReplicaSet:
        rs = self.sets.get(sid)
        if rs is None:
            rs = ReplicaSet(
                self.collection,
                sid,
                self.env,
                ClockSet(lambda: self.env.peer_id, self.epoch),
                self._write_factor,
                key,
            )
            self.sets[sid] = rs
        rs.shard_key = key
        return rs

    async def open_existing(self) -> None:
        """Open every local shard on disk (before the placement is known, at start)."""
        if not self.root.exists():
            return
        sids = sorted(int(p.name) for p in self.root.iterdir() if p.is_dir() and p.name.isdigit())
        shards = await asyncio.gather(*(self._open_local(self.root / str(sid)) for sid in sids))
        for sid, shard in zip(sids, shards, strict=True):
            self._set(sid, None).local = shard

    async def sync(self, placement: Mapping[int, ShardPlacement], *, destructive: bool) -> list[int]:
        """Match the local replicas to ``placement``; returns the shard ids whose local replica
        was created now (empty)."""
        async with self._lock:
            me = self.env.peer_id
            created: list[int] = []
            keys = {sid: p.shard_key for sid, p in placement.items()}
            for sid, p in sorted(placement.items()):
                rs = self._set(sid, keys[sid])
                rs.set_states(p.replicas, p.since)
                if me in p.replicas and rs.local is None:
                    path = self.root / str(sid)
                    fresh = not path.exists()
                    rs.local = await self._open_local(path)
                    if fresh:
                        created.append(sid)
                        self.created_fresh.add(sid)
            if destructive:
                for sid, rs in list(self.sets.items()):
                    held = sid in placement and me in placement[sid].replicas
                    if rs.forward is not None:
                        continue  # the source of a finishing move: kept until every peer knows
                    if not held and rs.local is not None:
                        await self._drop_local(rs)
                    if sid not in placement:
                        del self.sets[sid]
            counts = sorted({len(self.shard_ids(k)) for k in {*keys.values()}} if placement else set())
            await asyncio.gather(*(asyncio.to_thread(ring_table, n) for n in counts if self.scheme == "ring"))
            self._routers.clear()
            self.synced = True
            return created

    async def _drop_local(self, rs: ReplicaSet) -> None:
        shard, rs.local = rs.local, None
        if shard is None:
            return
        log.info(
            "local replica dropped: this peer no longer holds it",
            collection=self.collection,
            shard=rs.shard_id,
        )
        await shard.close()
        await asyncio.to_thread(shutil.rmtree, shard.path, True)

    async def reset_local(self, sid: int, archive: Path | None = None) -> LocalShard:
        """Replace this peer's replica of ``sid`` by an empty one, or by the contents of a shard
        snapshot ``archive`` (the target of a transfer; nothing writes to it meanwhile)."""
        from qcluster.shards.local_shard import LocalShard

        async with self._lock:
            rs = self.sets[sid]
            path = self.root / str(sid)
            if rs.local is not None:
                old, rs.local = rs.local, None
                await old.close()
            await asyncio.to_thread(shutil.rmtree, path, True)
            if archive is not None:
                await LocalShard.restore_snapshot(archive, path)
            rs.local = await self._open_local(path)
            self.created_fresh.discard(sid)
            return rs.local

    async def replace_locals(self, shards: Mapping[int, LocalShard]) -> list[LocalShard]:
        """Swap in new local shards (a rebuild); returns the ones replaced."""
        old = []
        for sid, shard in shards.items():
            rs = self.sets[sid]
            if rs.local is not None:
                old.append(rs.local)
            rs.local = shard
        return old

    async def close(self) -> None:
        await asyncio.gather(*(rs.close() for rs in self.sets.values()), return_exceptions=True)

    async def wait_dropped(self, sid: int, timeout: float) -> bool:
        """True once shard ``sid`` is gone from this peer's view (within ``timeout`` seconds)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while sid in self.sets:
            if asyncio.get_running_loop().time() >= deadline:
                return False
            await asyncio.sleep(0.05)
        return True

    # ------------------------------------------------------------------ routing
    def shard_ids(self, key: ShardKey | None = None) -> list[int]:
        return sorted(sid for sid, rs in self.sets.items() if not self.custom or rs.shard_key == key)

    def shard_keys(self) -> list[ShardKey]:
        return sorted({rs.shard_key for rs in self.sets.values() if rs.shard_key is not None}, key=str)

    def _check_ready(self) -> None:
        if not self.synced:
            raise TransientError(f"collection `{self.collection}` is not synced with the cluster state yet")

    def _router(self, key: ShardKey | None) -> Router:
        ids = tuple(self.shard_ids(key))
        router = self._routers.get(ids)
        if router is None:
            if not ids:
                raise NotFoundError(f"Shard key {key} not found in collection `{self.collection}`")
            router = self._routers[ids] = Router(self.scheme, ids)
        return router

    def _write_keys(self, keys: Sequence[ShardKey] | None) -> list[ShardKey | None]:
        if not self.custom:
            if keys:
                raise BadInputError(
                    "shard_key: this collection uses automatic sharding; a shard key selector needs "
                    "sharding_method: custom",
                    "shard_key",
                )
            return [None]
        if not keys:
            raise BadInputError(
                "shard_key: this collection uses custom sharding; every write names its shard key",
                "shard_key",
            )
        self._check_keys(keys)
        return list(keys)

    def _check_keys(self, keys: Iterable[ShardKey]) -> None:
        known = {rs.shard_key for rs in self.sets.values()}
        for key in keys:
            if key not in known:
                raise NotFoundError(f"Shard key {key} not found in collection `{self.collection}`")

    def read_sets(self, keys: Sequence[ShardKey] | None = None) -> list[ReplicaSet]:
        """The replica sets a read covers: every shard, or those of the selected shard keys."""
        self._check_ready()
        if keys:
            if not self.custom:
                raise BadInputError(
                    "shard_key: this collection uses automatic sharding; a shard key selector needs "
                    "sharding_method: custom",
                    "shard_key",
                )
            self._check_keys(keys)
            return [rs for _, rs in sorted(self.sets.items()) if rs.shard_key in keys]
        return [rs for _, rs in sorted(self.sets.items())]

    def route_ids(
        self, ids: Sequence[object], keys: Sequence[ShardKey] | None = None
    ) -> dict[int, list[int]]:
        """Shard id -> positions in ``ids`` (for reads by id)."""
        self._check_ready()
        out: dict[int, list[int]] = {}
        for key in self._read_keys(keys):
            for sid, rows in self._router(key).split(ids).items():  # type: ignore[arg-type]
                out.setdefault(sid, []).extend(rows)
        return out

    def _read_keys(self, keys: Sequence[ShardKey] | None) -> list[ShardKey | None]:
        if not self.custom:
            return [None]
        if keys:
            self._check_keys(keys)
            return list(keys)
        return list(self.shard_keys())

    def split(
        self, op: UpdateOperation, keys: Sequence[ShardKey] | None = None
    ) -> dict[int, UpdateOperation]:
        """Shard id -> the part of ``op`` that shard applies. Filters and index ops go to every
        shard (of the selected keys)."""
        self._check_ready()
        out: dict[int, UpdateOperation] = {}
        for key in self._write_keys(keys):
            router = self._router(key)
            if isinstance(op, UpsertPoints | UpdateVectors):
                for sid, rows in router.split(op.batch.ids).items():
                    out[sid] = replace(op, batch=sub_batch(op.batch, rows))
            elif isinstance(op, SELECTOR_OPS) and op.selector.ids is not None and op.selector.filter is None:
                ids = op.selector.ids
                for sid, rows in router.split(ids).items():
                    out[sid] = replace(op, selector=PointSelector(ids=tuple(ids[i] for i in rows)))
            else:
                for sid in self.shard_ids(key):
                    out[sid] = op
        return out
