"""A collection on this peer: its config and a :class:`ShardHolder` (shard id -> replica set).

Updates are split per shard over the collection's routing (the consistent-hash ring for new
collections, see :mod:`qcluster.shards.routing`) and each part goes to its shard's replica set,
which writes every replica; operations that name points which must exist (payload and vector
updates) are checked on every shard first, so a request is rejected whole instead of being
half-applied across shards. Reads fan out to one replica set per shard and merge
(:mod:`reads`).

``config.json`` holds ``{"name", "config", "shards_dir", "created_at", "shards"}``: ``shards_dir``
names the current shard generation (``shards`` unless a vector was added or removed, see
``rebuild.py``); ``created_at`` is the incarnation agreed through consensus (absent on a single
peer); ``shards`` lists the shard ids and keys of a single peer's collection (absent before custom
sharding existed: shards ``0..shard_number-1``). Every operation passes a gate (``gate.py``) that a
rebuild closes to swap generations.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, Literal, TypeVar

from qcluster.collection import rebuild
from qcluster.collection.gate import Gate
from qcluster.collection.reads import CollectionReads
from qcluster.errors import AlreadyExistsError, BadInputError, NotFoundError, StaleShardViewError
from qcluster.logging import get_logger
from qcluster.models.collections import CollectionConfig, with_vector
from qcluster.models.config import SparseVectorParams, VectorParams
from qcluster.settings import StorageSettings
from qcluster.shards.base import (
    NO_PAYLOAD,
    NO_VECTORS,
    CountRequest,
    PayloadSelector,
    Record,
    ScoredPoint,
    ScrollRequest,
    ScrollResult,
    SearchRequest,
    ShardInfo,
    UpdateResult,
    VectorSelector,
)
from qcluster.shards.local_shard import LocalShard
from qcluster.shards.operations import (
    SELECTOR_OPS,
    DeletePoints,
    PointsBatch,
    UpdateOperation,
    UpdateVectors,
    UpsertPoints,
    sub_batch,
)
from qcluster.shards.replica_set import DEFAULT_WRITE, ReplicaEnv, WriteOptions
from qcluster.shards.routing import LEGACY_SCHEME
from qcluster.shards.segment_files import read_json, write_json_atomic
from qcluster.shards.shard_holder import ShardHolder, ShardPlacement
from qcluster.types import DEFAULT_VECTOR, PointId, ReplicaState, ShardKey

log = get_logger(__name__)
CONFIG_FILE = "config.json"
STALE_VIEW_WAIT = 5.0  # seconds a read waits for this peer to apply a shard's removal
T = TypeVar("T")
UpdateMode = Literal["upsert", "insert_only", "update_only"]


class Collection:
    def __init__(
        self,
        name: str,
        path: Path,
        config: CollectionConfig,
        storage: StorageSettings,
        shards_dir: str,
        env: ReplicaEnv,
        epoch: int,
        created_at: float | None = None,
    ):
        self.name = name
        self.path = path
        self.config = config
        self.storage = storage
        self.shards_dir = shards_dir
        self.created_at = created_at
        self.holder = ShardHolder(
            name,
            path / shards_dir,
            env,
            epoch,
            config.params.routing or LEGACY_SCHEME,
            config.params.sharding_method == "custom",
            lambda: self.config.params.write_consistency_factor,
            self._open_local,
        )
        self.reads = CollectionReads(self.holder, lambda using: self.config.distance_of(using))
        self._reads = Gate()
        self._writes = Gate()
        self._schema_lock = asyncio.Lock()

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    async def create(
        cls,
        name: str,
        path: Path,
        config: CollectionConfig,
        storage: StorageSettings,
        env: ReplicaEnv,
        epoch: int,
        placement: Mapping[int, ShardPlacement],
        created_at: float | None = None,
    ) -> Collection:
        path.mkdir(parents=True, exist_ok=True)
        col = cls(name, path, config, storage, rebuild.SHARDS_PREFIX, env, epoch, created_at)
        col._save_config(placement if created_at is None else None)
        await col.holder.sync(placement, destructive=True)
        return col

    @classmethod
    async def load(
        cls,
        path: Path,
        storage: StorageSettings,
        env: ReplicaEnv,
        epoch: int,
        single_peer: bool,
    ) -> Collection:
        """Open a collection from disk: on a single peer with every shard local; in a cluster with
        the local shards found on disk, until the agreed placement arrives (``sync``)."""
        raw = read_json(path / CONFIG_FILE)
        shards_dir = str(raw.get("shards_dir") or rebuild.SHARDS_PREFIX)
        await asyncio.to_thread(rebuild.remove_stale_generations, path, shards_dir)
        config = CollectionConfig.model_validate(raw["config"])
        created_at = raw.get("created_at")
        col = cls(raw["name"], path, config, storage, shards_dir, env, epoch, created_at)
        if single_peer:
            await col.holder.sync(col.single_peer_placement(raw.get("shards")), destructive=False)
        else:
            await col.holder.open_existing()
        return col

    def single_peer_placement(self, shards: Any = None) -> dict[int, ShardPlacement]:
        me = {self.holder.env.peer_id: ReplicaState.ACTIVE}
        if shards is None:
            return {sid: ShardPlacement(me) for sid in range(self.config.params.shard_number)}
        return {int(sid): ShardPlacement(me, key) for sid, key in shards}

    async def _open_local(self, path: Path) -> LocalShard:
        return await LocalShard.load_or_create(path, self.config.shard_config(), self.storage)

    def _save_config(self, placement: Mapping[int, ShardPlacement] | None = None) -> None:
        body: dict[str, Any] = {
            "name": self.name,
            "config": self.config.model_dump(mode="json", exclude_none=True),
            "shards_dir": self.shards_dir,
        }
        if self.created_at is not None:
            body["created_at"] = self.created_at
        if placement is None and self.created_at is None:
            placement = {sid: ShardPlacement({}, rs.shard_key) for sid, rs in self.holder.sets.items()}
        if placement is not None:
            body["shards"] = [[sid, p.shard_key] for sid, p in sorted(placement.items())]
        write_json_atomic(self.path / CONFIG_FILE, body)

    async def sync(self, placement: Mapping[int, ShardPlacement], *, destructive: bool) -> list[int]:
        """Match this peer's local replicas to the agreed placement (cluster mode)."""
        return await self.holder.sync(placement, destructive=destructive)

    async def close(self) -> None:
        await self.holder.close()

    async def drop(self) -> None:
        await self.close()
        await asyncio.to_thread(shutil.rmtree, self.path, True)

    def writes_paused(self) -> AbstractAsyncContextManager[None]:
        """Hold the collection's writes (in flight ones finish first) while the block runs."""
        return self._writes.exclusive()

    def local_shards(self) -> dict[int, LocalShard]:
        return self.holder.local_shards()

    async def update_config(self, config: CollectionConfig) -> None:
        """Take new settings; a changed set of vector names rebuilds the local shards."""
        if set(config.params.vectors) != set(self.config.params.vectors):
            async with self._schema_lock:
                await self._rebuild(config)
            return
        self.config = config
        self._save_config()
        shard_cfg = config.shard_config()
        for shard in self.local_shards().values():
            await shard.update_config(shard_cfg)

    # ------------------------------------------------------------------ shard keys (single peer)
    async def add_shard_key(self, key: ShardKey, shard_number: int) -> None:
        placement = {
            sid: ShardPlacement({self.holder.env.peer_id: ReplicaState.ACTIVE}, rs.shard_key)
            for sid, rs in self.holder.sets.items()
        }
        if any(p.shard_key == key for p in placement.values()):
            raise AlreadyExistsError(f"Shard key {key} already exists")
        first = max(placement, default=-1) + 1
        for sid in range(first, first + shard_number):
            placement[sid] = ShardPlacement({self.holder.env.peer_id: ReplicaState.ACTIVE}, key)
        await self.holder.sync(placement, destructive=True)
        self._save_config(placement)

    async def drop_shard_key(self, key: ShardKey) -> None:
        placement = {
            sid: ShardPlacement({self.holder.env.peer_id: ReplicaState.ACTIVE}, rs.shard_key)
            for sid, rs in self.holder.sets.items()
            if rs.shard_key != key
        }
        if len(placement) == len(self.holder.sets):
            raise NotFoundError(f"Shard key {key} not found")
        await self.holder.sync(placement, destructive=True)
        self._save_config(placement)

    # ------------------------------------------------------------------ vector names
    async def create_vector(self, name: str, params: VectorParams | SparseVectorParams) -> None:
        """Add named vector ``name`` (existing points have none of it). A rebuild: writes wait
        until it is done; reads go on, except for the instant of the swap."""
        async with self._schema_lock:
            await self._rebuild(self.config_with_vector(name, params))

    def config_with_vector(
        self, name: str, params: VectorParams | SparseVectorParams | None
    ) -> CollectionConfig:
        """The config with ``name`` added (dense or sparse ``params``) or removed (None), validated."""
        sparse = self.config.params.sparse_vectors or {}
        if params is not None:
            if name in self.config.params.vectors or name in sparse:
                raise AlreadyExistsError(f"Vector name `{name}` already exists in collection `{self.name}`")
            if name == DEFAULT_VECTOR or self.config.single_unnamed:
                raise BadInputError(
                    "a named vector cannot be added to a collection with an unnamed vector", "vector_name"
                )
        else:
            if name not in self.config.params.vectors and name not in sparse:
                raise NotFoundError(f"Vector name `{name}` doesn't exist in collection `{self.name}`")
            if len(self.config.params.vectors) + len(sparse) == 1:
                raise BadInputError("the last vector of a collection cannot be deleted", "vector_name")
        return with_vector(self.config, name, params)

    async def delete_vector(self, name: str) -> None:
        """Remove named vector ``name`` and its data: a rebuild."""
        async with self._schema_lock:
            await self._rebuild(self.config_with_vector(name, None))

    async def _rebuild(self, config: CollectionConfig) -> None:
        """Copy the local shards into a new generation under ``config`` and swap it in (see
        ``rebuild.py`` for the steps, the commit point and crash behaviour)."""
        async with self._writes.exclusive():
            gen, shards = await rebuild.build_generation(self.path, self.local_shards(), config, self.storage)
            async with self._reads.exclusive():
                old_dir = self.shards_dir
                self.config, self.shards_dir = config, gen
                self.holder.root = self.path / gen
                self._save_config()
                old_shards = await self.holder.replace_locals(shards)
            await asyncio.gather(*(s.close() for s in old_shards), return_exceptions=True)
            await asyncio.to_thread(shutil.rmtree, self.path / old_dir, True)
            log.info("collection rebuilt with a new vector layout", collection=self.name, shards_dir=gen)

    # ------------------------------------------------------------------ updates
    async def update(
        self, op: UpdateOperation, wait: bool = True, options: WriteOptions = DEFAULT_WRITE
    ) -> UpdateResult:
        await self._writes.enter()
        try:
            parts = self.holder.split(op, options.shard_keys)
            if len(parts) > 1:
                await self._require_existing(op)
            sets = self.holder.sets
            results = await asyncio.gather(
                *(sets[sid].update(part, wait, options.ordering) for sid, part in parts.items())
            )
        finally:
            self._writes.leave()
        version = max((r.operation_id for r in results), default=0)
        return UpdateResult(version, "completed" if wait else "acknowledged")

    async def upsert(
        self,
        batch: PointsBatch,
        wait: bool = True,
        mode: UpdateMode = "upsert",
        update_filter: Mapping[str, Any] | None = None,
        options: WriteOptions = DEFAULT_WRITE,
    ) -> UpdateResult:
        """Upsert with Qdrant's conditions: ``insert_only`` skips existing points, ``update_only``
        skips new ones, ``update_filter`` updates only existing points matching it (new points are
        inserted regardless). The existence check and the write are two steps: a concurrent write
        of the same ids in between may be overwritten, as with any concurrent upserts."""
        if mode == "upsert" and update_filter is None:
            return await self.update(UpsertPoints(batch), wait, options)
        existing, allowed = await self._existing(batch.ids, update_filter)
        rows = [
            i
            for i, pid in enumerate(batch.ids)
            if (pid in allowed and mode != "insert_only") or (pid not in existing and mode != "update_only")
        ]
        if not rows:
            return UpdateResult(0, "completed" if wait else "acknowledged")
        return await self.update(UpsertPoints(sub_batch(batch, rows)), wait, options)

    async def update_vectors(
        self,
        batch: PointsBatch,
        wait: bool = True,
        update_filter: Mapping[str, Any] | None = None,
        options: WriteOptions = DEFAULT_WRITE,
    ) -> UpdateResult:
        if update_filter is None:
            return await self.update(UpdateVectors(batch), wait, options)
        existing, allowed = await self._existing(batch.ids, update_filter)
        missing = [pid for pid in batch.ids if pid not in existing]
        if missing:
            raise NotFoundError(f"No point with id {missing[0]} found")
        rows = [i for i, pid in enumerate(batch.ids) if pid in allowed]
        if not rows:
            return UpdateResult(0, "completed" if wait else "acknowledged")
        return await self.update(UpdateVectors(sub_batch(batch, rows)), wait, options)

    async def _existing(
        self, ids: Sequence[PointId], flt: Mapping[str, Any] | None
    ) -> tuple[set[PointId], set[PointId]]:
        """(ids that exist, the existing ids matching ``flt`` or all of them without one)."""
        existing = {r.id for r in await self.retrieve(ids, NO_PAYLOAD, NO_VECTORS)}
        if flt is None or not existing:
            return existing, existing
        page = await self.scroll(
            ScrollRequest(
                limit=len(existing),
                filter={"must": [flt, {"has_id": list(existing)}]},
                with_payload=NO_PAYLOAD,
            )
        )
        return existing, {r.id for r in page.points}

    async def _require_existing(self, op: UpdateOperation) -> None:
        ids: Sequence[PointId] = ()
        if isinstance(op, UpdateVectors):
            ids = op.batch.ids
        elif isinstance(op, SELECTOR_OPS) and not isinstance(op, DeletePoints) and op.selector.filter is None:
            ids = op.selector.ids or ()
        if not ids:
            return
        found = {r.id for r in await self.reads.retrieve(ids, NO_PAYLOAD, NO_VECTORS)}
        for pid in ids:
            if pid not in found:
                raise NotFoundError(f"No point with id {pid} found")

    # ------------------------------------------------------------------ reads
    async def _read(self, fn: Callable[[], Awaitable[T]]) -> T:
        """One read under the read gate. A shard every replica says it does not know was dropped
        from the agreed state on those peers first: once this peer applied that too, read again."""
        await self._reads.enter()
        try:
            try:
                return await fn()
            except StaleShardViewError as exc:
                if not await self.holder.wait_dropped(exc.shard_id, STALE_VIEW_WAIT):
                    raise
                return await fn()
        finally:
            self._reads.leave()

    async def search(self, requests: Sequence[SearchRequest]) -> list[list[ScoredPoint]]:
        return await self._read(lambda: self.reads.search(requests))

    async def scroll(self, request: ScrollRequest) -> ScrollResult:
        return await self._read(lambda: self.reads.scroll(request))

    async def count(self, request: CountRequest) -> int:
        return await self._read(lambda: self.reads.count(request))

    async def retrieve(
        self, ids: Sequence[PointId], with_payload: PayloadSelector, with_vector: VectorSelector
    ) -> list[Record]:
        return await self._read(lambda: self.reads.retrieve(ids, with_payload, with_vector))

    async def facet(self, key: str, filter: Any, limit: int, exact: bool) -> list[tuple[Any, int]]:
        return await self._read(lambda: self.reads.facet(key, filter, limit, exact))

    async def info(self) -> ShardInfo:
        return await self._read(self.reads.info)
