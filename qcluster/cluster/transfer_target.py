"""What the transfer servicer needs from this peer (``TransferBackend``): its shard holders, whether
a replica is the target of a running transfer, and the progress of the transfers it sends."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from qcluster.shards.shard_holder import ShardHolder
from qcluster.transfer.progress import TransferProgress
from qcluster.types import ReplicaState

if TYPE_CHECKING:
    from qcluster.consensus.service import ConsensusService
    from qcluster.toc import TableOfContents
    from qcluster.transfer.driver import TransferDriver


class TransferTargets:
    def __init__(
        self, toc: TableOfContents, consensus: ConsensusService, driver: TransferDriver, scratch: Path
    ):
        self._toc = toc
        self._consensus = consensus
        self._driver = driver
        self._scratch = scratch

    def holder(self, collection: str) -> ShardHolder | None:
        col = self._toc.collections.get(collection)
        return None if col is None else col.holder

    def is_transfer_target(self, collection: str, shard_id: int, from_peer: int) -> bool:
        state = self._consensus.state
        me = self._consensus.peer_id
        if state.replica_state(collection, shard_id, me) is not ReplicaState.PARTIAL:
            return False
        return any(
            r.collection == collection and r.shard_id == shard_id and r.to_peer == me
            for r in state.transfers
            if from_peer in (0, r.from_peer)
        )

    def progress(self, collection: str) -> list[TransferProgress]:
        return self._driver.progress_of(collection)

    def scratch_dir(self) -> Path:
        self._scratch.mkdir(parents=True, exist_ok=True)
        return self._scratch
