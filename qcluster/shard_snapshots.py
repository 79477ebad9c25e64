"""Snapshots of one shard replica on this peer, and recovering a replica from one.

Files: ``<snapshots_path>/<collection>/shards/<shard_id>/<name>.snapshot`` (the tar archive of
:mod:`qcluster.shards.shard_snapshot`) with a ``.checksum`` (sha256) beside it.

Unlike Qdrant, asking this peer for a snapshot of a shard it holds no replica of is a 404 naming
the peers that do, never an "ok" with an empty archive.

Recovery (``recover``) replaces this peer's replica with an archive, after an optional sha256
check; ``priority`` says what happens to the other replicas in a cluster:

* ``no_sync``: nothing, only this replica changes;
* ``snapshot``: the archive becomes the truth: this replica and then every other one is marked
  ``Dead`` (writes to the shard fail meanwhile: no replica may take them), this one is swapped and
  marked ``Active``, and the others are then recovered from it by their watchdogs;
* ``replica`` (the default): the current replicas stay the truth: this replica is marked ``Dead``
  first, restored, and then recovered from an ``Active`` one (with no other ``Active`` replica it
  behaves as ``snapshot``).

While the replica is swapped, this peer's watchdog leaves it alone, and being ``Dead`` it is no
peer's recovery source: nothing copies the old data out, or into it, in between.

The replica is swapped while the collection's writes are paused (its gate), so no write lands
half in the old and half in the new replica.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import shutil
import tempfile
import uuid
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from qcluster.consensus import operations as ops
from qcluster.errors import BadInputError, NotFoundError
from qcluster.logging import get_logger
from qcluster.snapshots import SUFFIX, Snapshots, describe, sha256_file
from qcluster.types import ReplicaState

if TYPE_CHECKING:
    from qcluster.collection import Collection
    from qcluster.consensus.service import ConsensusService
    from qcluster.shards.local_shard import LocalShard
    from qcluster.toc import TableOfContents
    from qcluster.transfer.recovery import RecoveryWatchdog

log = get_logger(__name__)
Priority = Literal["no_sync", "snapshot", "replica"]
PROPOSE_TIMEOUT = 30.0
PRIORITIES = ("no_sync", "snapshot", "replica")


def parse_priority(raw: str | None) -> Priority | None:
    """The ``priority`` query parameter of an upload (400 naming it when unknown)."""
    if raw is None or raw == "":
        return None
    if raw not in PRIORITIES:
        raise BadInputError(f"priority: expected one of {', '.join(PRIORITIES)}, got {raw!r}", "priority")
    return cast(Priority, raw)


class ShardSnapshots:
    def __init__(self, snapshots: Snapshots, consensus: Any = None, watchdog: Any = None):
        self.snapshots = snapshots
        self.consensus: ConsensusService | None = consensus  # set in cluster mode
        self.watchdog: RecoveryWatchdog | None = watchdog

    def folder(self, col: Collection, shard_id: int) -> Path:
        return self.snapshots.collection_dir(col.name) / "shards" / str(shard_id)

    def local(self, col: Collection, shard_id: int) -> LocalShard:
        """This peer's replica of the shard, or a 404 saying where the shard lives."""
        rs = col.holder.sets.get(shard_id)
        if rs is None:
            raise NotFoundError(f"Shard {shard_id} does not exist in collection `{col.name}`")
        if rs.local is None:
            holders = sorted(p for p in rs.states)
            raise NotFoundError(
                f"Shard {shard_id} of collection `{col.name}` has no replica on this peer; "
                f"its replicas are on peers {holders}"
            )
        return rs.local

    async def create(self, col: Collection, shard_id: int) -> dict[str, Any]:
        shard = self.local(col, shard_id)
        folder = self.folder(col, shard_id)
        folder.mkdir(parents=True, exist_ok=True)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d-%H-%M-%S")
        target = folder / f"{col.name}-shard-{shard_id}-{stamp}-{uuid.uuid4().hex[:8]}{SUFFIX}"
        tmp = target.with_name(target.name + ".tmp")
        version = await shard.create_snapshot(tmp)
        digest = await asyncio.to_thread(sha256_file, tmp)
        tmp.replace(target)
        target.with_name(target.name + ".checksum").write_text(digest)
        log.info(
            "shard snapshot created",
            collection=col.name,
            shard=shard_id,
            snapshot=target.name,
            version=version,
        )
        return describe(target)

    def list(self, col: Collection, shard_id: int) -> list[dict[str, Any]]:
        self.local(col, shard_id)
        return self.snapshots.list(self.folder(col, shard_id))

    def path(self, col: Collection, shard_id: int, name: str) -> Path:
        return self.snapshots.path_of(self.folder(col, shard_id), name)

    def delete(self, col: Collection, shard_id: int, name: str) -> None:
        self.snapshots.delete(self.folder(col, shard_id), name)

    async def stream_to_file(self, col: Collection, shard_id: int, into: Path) -> Path:
        """A fresh archive of the replica in ``into`` (for ``GET .../snapshot``)."""
        shard = self.local(col, shard_id)
        target = into / f"{col.name}-shard-{shard_id}{SUFFIX}"
        await shard.create_snapshot(target)
        return target

    # ------------------------------------------------------------------ recovery
    async def recover(
        self, col: Collection, shard_id: int, archive: Path, priority: Priority | None, checksum: str | None
    ) -> None:
        self.local(col, shard_id)
        if checksum is not None:
            actual = await asyncio.to_thread(sha256_file, archive)
            if actual != checksum.lower():
                raise BadInputError(
                    f"Snapshot checksum mismatch: expected {checksum}, got {actual}", "checksum"
                )
        await self._validate_archive(archive)
        priority = priority or "replica"
        consensus = self.consensus
        if consensus is None or priority == "no_sync":
            await self._swap(col, shard_id, archive)
            return
        me = consensus.peer_id
        replicas = dict(consensus.state.collections[col.name].shards[shard_id].replicas)
        others_active = [p for p, st in replicas.items() if p != me and st is ReplicaState.ACTIVE]
        # This peer's watchdog must not recover the replica while it is swapped, and no peer may
        # take it (old data) as a source meanwhile: it is Dead until the swap is done.
        async with self._paused(col.name, shard_id):
            if replicas.get(me) is not ReplicaState.DEAD:
                await self._set(col.name, shard_id, me, ReplicaState.DEAD, replicas.get(me))
            if priority == "replica" and others_active:
                await self._swap(col, shard_id, archive)
                log.info(
                    "shard recovered from a snapshot; it will now sync from its replicas",
                    collection=col.name,
                    shard=shard_id,
                )
                return
            # the archive wins: every other replica Dead (writes pause: no replica takes them),
            # this one swapped and Active, the others then recovered from it
            for peer, state in replicas.items():
                if peer != me and state is not ReplicaState.DEAD:
                    await self._set(col.name, shard_id, peer, ReplicaState.DEAD, state)
            await self._swap(col, shard_id, archive)
            await self._set(col.name, shard_id, me, ReplicaState.ACTIVE, ReplicaState.DEAD)
        log.info(
            "shard recovered from a snapshot; its other replicas sync from it",
            collection=col.name,
            shard=shard_id,
        )

    def _paused(self, collection: str, shard_id: int) -> AbstractAsyncContextManager[None]:
        if self.watchdog is None:
            return contextlib.nullcontext()
        return self.watchdog.paused(collection, shard_id)

    async def recover_collection(
        self, toc: TableOfContents, name: str, archive: Path, priority: Priority | None, checksum: str | None
    ) -> None:
        """A collection snapshot recovered on this peer of a cluster: each shard this peer holds a
        replica of is recovered from the archive's copy of it, with ``priority`` as for one shard
        (``replica`` by default: the cluster's current data wins and this peer resyncs; ``snapshot``:
        the archive wins on every replica). A collection the cluster does not have is created first
        (through consensus, with the archive's config; then the archive wins unless ``priority`` says
        otherwise). Qdrant replaces the collection on the
        receiving peer only; here every replica of the shards ends up agreeing."""
        staging = Path(tempfile.mkdtemp(dir=self.snapshots.root, prefix=".restore-"))
        try:
            config, shards, folder = await self.snapshots.unpack_collection(archive, staging, checksum)
            if not toc.exists(name):
                await toc.create(name, config, PROPOSE_TIMEOUT)
                priority = priority or "snapshot"  # a new collection: its empty replicas take the archive
            col = toc.get(name)
            if col.config.params.vectors != config.params.vectors:
                raise BadInputError(
                    f"snapshot: its vectors config differs from collection `{col.name}`'s; recover it "
                    "into a new collection name",
                    "snapshot",
                )
            held = sorted(sid for sid, rs in col.holder.sets.items() if rs.local is not None)
            if not held:
                raise BadInputError(
                    f"this peer holds no replica of collection `{col.name}`: recover the snapshot on a "
                    "peer that does (GET /collections/{name}/cluster lists them)",
                    "collection",
                )
            missing = sorted(set(held) - {sid for sid, _ in shards})
            if missing:
                raise BadInputError(
                    f"snapshot: it holds no data for shard(s) {missing} of `{col.name}` that this peer "
                    f"holds replicas of (it has {sorted(sid for sid, _ in shards)})",
                    "snapshot",
                )
            for sid in held:
                await self.recover(col, sid, folder / f"{sid}.tar", priority, None)
        finally:
            await asyncio.to_thread(shutil.rmtree, staging, True)
        log.info(
            "collection recovered from a snapshot on its local shards",
            collection=name,
            shards=held,
            priority=priority or "replica",
        )

    async def _validate_archive(self, archive: Path) -> None:
        """Refuse a file that is not a shard archive before anything changes."""
        from qcluster.shards import shard_snapshot

        with tempfile.TemporaryDirectory(dir=archive.parent, prefix=".check-") as tmp:
            await asyncio.to_thread(shard_snapshot.unpack, archive, Path(tmp) / "shard")

    async def _swap(self, col: Collection, shard_id: int, archive: Path) -> None:
        async with col.writes.paused():
            await col.holder.reset_local(shard_id, archive)

    async def _set(
        self, name: str, shard_id: int, peer: int, state: ReplicaState, from_state: ReplicaState | None
    ) -> None:
        assert self.consensus is not None
        op = ops.set_replica_state(name, shard_id, peer, state, from_state)
        result = await self.consensus.propose(op, PROPOSE_TIMEOUT)
        await self.consensus.wait_synced(result.index, PROPOSE_TIMEOUT)
