"""Snapshots of one shard replica on this peer, and recovering a replica from one.

Files: ``<snapshots_path>/<collection>/shards/<shard_id>/<name>.snapshot`` (the tar archive of
:mod:`qcluster.shards.shard_snapshot`) with a ``.checksum`` (sha256) beside it.

Unlike Qdrant, asking this peer for a snapshot of a shard it holds no replica of is a 404 naming
the peers that do, never an "ok" with an empty archive.

Recovery (``recover``) replaces this peer's replica with an archive, after an optional sha256
check; ``priority`` says what happens to the other replicas in a cluster:

* ``no_sync``: nothing, only this replica changes;
* ``snapshot``: the archive becomes the truth: every other replica is marked ``Dead`` first (so
  coordinators stop writing to them), and then recovered from this one by the watchdog;
* ``replica`` (the default): the current replicas stay the truth: this replica is marked ``Dead``
  first, restored, and then recovered from an ``Active`` one (with no other ``Active`` replica it
  behaves as ``snapshot``).

The replica is swapped while the collection's writes are paused (its gate), so no write lands
half in the old and half in the new replica.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import tempfile
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from qcluster.consensus import operations as ops
from qcluster.errors import BadInputError, NotFoundError
from qcluster.logging import get_logger
from qcluster.snapshots import SUFFIX, Snapshots, describe, sha256_file
from qcluster.types import ReplicaState

if TYPE_CHECKING:
    from qcluster.collection import Collection
    from qcluster.consensus.service import ConsensusService
    from qcluster.shards.local_shard import LocalShard

log = get_logger(__name__)
Priority = Literal["no_sync", "snapshot", "replica"]
PROPOSE_TIMEOUT = 30.0


class ShardSnapshots:
    def __init__(self, snapshots: Snapshots, consensus: Any = None):
        self.snapshots = snapshots
        self.consensus: ConsensusService | None = consensus  # set in cluster mode

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
        if priority == "replica" and others_active:
            await self._set(col.name, shard_id, me, ReplicaState.DEAD, replicas.get(me))
            await self._swap(col, shard_id, archive)
            log.info(
                "shard recovered from a snapshot; it will now sync from its replicas",
                collection=col.name,
                shard=shard_id,
            )
            return
        for peer, state in replicas.items():
            if peer != me and state is not ReplicaState.DEAD:
                await self._set(col.name, shard_id, peer, ReplicaState.DEAD, state)
        await self._swap(col, shard_id, archive)
        if replicas.get(me) is not ReplicaState.ACTIVE:
            await self._set(col.name, shard_id, me, ReplicaState.ACTIVE, replicas.get(me))
        log.info(
            "shard recovered from a snapshot; its other replicas sync from it",
            collection=col.name,
            shard=shard_id,
        )

    async def _validate_archive(self, archive: Path) -> None:
        """Refuse a file that is not a shard archive before anything changes."""
        from qcluster.shards import shard_snapshot

        with tempfile.TemporaryDirectory(dir=archive.parent, prefix=".check-") as tmp:
            await asyncio.to_thread(shard_snapshot.unpack, archive, Path(tmp) / "shard")

    async def _swap(self, col: Collection, shard_id: int, archive: Path) -> None:
        async with col.writes_paused():
            await col.holder.reset_local(shard_id, archive)

    async def _set(
        self, name: str, shard_id: int, peer: int, state: ReplicaState, from_state: ReplicaState | None
    ) -> None:
        assert self.consensus is not None
        op = ops.set_replica_state(name, shard_id, peer, state, from_state)
        result = await self.consensus.propose(op, PROPOSE_TIMEOUT)
        await self.consensus.wait_synced(result.index, PROPOSE_TIMEOUT)
