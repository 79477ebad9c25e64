"""The data plane's view of the cluster (:class:`ReplicaEnv` for replica sets in cluster mode).

* ``remote(collection, shard, peer)``: the replica on another peer, a :class:`RemoteShard` whose
  address is read from the agreed peer list at every call;
* ``deactivate(...)``: mark a replica that failed a write ``Dead`` through consensus, naming the
  state it replaces, and return once this peer has applied it (so the next write and read here
  already skip it). When consensus cannot take it now (no quorum), the error goes back to the
  write (its client learns consistency is not guaranteed) and a background task keeps proposing
  until it is taken or the replica's state moved on;
* ``forward(...)``: have the peer that leads a shard for medium/strong ordering coordinate a write.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import TYPE_CHECKING

from qcluster.consensus import operations as ops
from qcluster.errors import HoldersGoneError, QClusterError, TransientError
from qcluster.logging import get_logger
from qcluster.p2p.channels import ChannelPool
from qcluster.retry import until_done
from qcluster.shards.base import ShardOperation, UpdateResult
from qcluster.shards.operations import UpdateOperation
from qcluster.shards.remote_shard import RemoteShard
from qcluster.shards.replica_env import FailedReplica, Ordering, ShardView
from qcluster.types import ReplicaState

if TYPE_CHECKING:
    from qcluster.consensus.service import ConsensusService

log = get_logger(__name__)
DEACTIVATE_TIMEOUT = 10.0
DEACTIVATE_RETRY_FOR = 600.0


class ClusterDataPlane:
    def __init__(self, consensus: ConsensusService, pool: ChannelPool, timeout: float, persist_for: float):
        self._consensus = consensus
        self._pool = pool
        self._timeout = timeout
        self.persist_for = persist_for
        self._retries: dict[tuple[str, int, int], asyncio.Task[None]] = {}
        self._view_current = False  # caught up with the leader once since this peer started

    @property
    def peer_id(self) -> int:
        return self._consensus.peer_id

    def check_view(self) -> None:
        if self._view_current:
            return
        if not self._consensus.is_caught_up():
            raise TransientError(
                "this peer is catching up with the cluster state after its start; retry shortly"
            )
        self._view_current = True

    def agreed_view(self, collection: str, shard_id: int) -> ShardView | None:
        info = self._consensus.state.collections.get(collection)
        shard = info.shards.get(shard_id) if info is not None else None
        return None if shard is None else (shard.replicas, shard.since)

    def _address(self, peer_id: int) -> str:
        uri = self._consensus.state.peers.get(peer_id)
        if uri is None:
            raise TransientError(f"peer {peer_id} is not a member of the cluster")
        return uri

    def remote(self, collection: str, shard_id: int, peer_id: int) -> ShardOperation:
        return RemoteShard(
            collection, shard_id, peer_id, lambda: self._address(peer_id), self._pool, self._timeout
        )

    async def forward(
        self,
        collection: str,
        shard_id: int,
        peer_id: int,
        op: UpdateOperation,
        wait: bool,
        ordering: Ordering,
    ) -> UpdateResult:
        leader = RemoteShard(
            collection, shard_id, peer_id, lambda: self._address(peer_id), self._pool, self._timeout
        )
        return await leader.coordinate(op, wait, ordering)

    async def deactivate(self, failed: FailedReplica) -> None:
        try:
            await self._mark_dead(failed)
        except HoldersGoneError:
            raise  # final for this write: nothing to retry
        except QClusterError as exc:
            log.warning(
                "could not mark a failed replica Dead yet; retrying in the background",
                collection=failed.collection,
                shard=failed.shard_id,
                peer=failed.peer_id,
                error=exc.message,
            )
            self._retry_later(replace(failed, holders=(), holders_since=(), view=(), view_since=()))
            raise
        now = self._consensus.state.replica_state(failed.collection, failed.shard_id, failed.peer_id)
        if now not in (None, ReplicaState.DEAD):
            return  # its agreed state was no longer ``from_state``: left as it is
        log.info(
            "replica marked Dead after a failed write; it will be recovered from another replica",
            collection=failed.collection,
            shard=failed.shard_id,
            peer=failed.peer_id,
            was=failed.from_state.value,
            reason=failed.reason,
        )

    async def _mark_dead(self, failed: FailedReplica) -> None:
        """Commit the failed replica Dead. With ``holders`` (the replicas that took the write),
        only while one of them still takes writes in the agreed state: two coordinators with
        stale views must not deactivate each other's replicas until none is left, each then
        acknowledging a write no Active replica holds (HoldersGoneError instead)."""
        consensus = self._consensus
        collection, shard_id, holders = failed.collection, failed.shard_id, failed.holders
        op = ops.set_replica_state(
            collection,
            shard_id,
            failed.peer_id,
            ReplicaState.DEAD,
            failed.from_state,
            holders,
            failed.holders_since,
            failed.view,
            failed.view_since,
        )
        if (
            consensus.state.replica_state(collection, shard_id, failed.peer_id) != failed.from_state
            and not holders
        ):
            return  # already moved on (another coordinator marked it, or it is being recovered)
        result = await consensus.propose(op, DEACTIVATE_TIMEOUT)
        if result.refused:
            raise HoldersGoneError(
                f"shard {shard_id} of collection `{collection}`: the replicas that took the write "
                f"(peers {', '.join(map(str, holders))}) no longer take writes in the cluster state or were "
                "rebuilt since, or another replica that may lack the write takes writes now, so the write "
                "is not acknowledged"
            )
        await consensus.wait_synced(result.index, DEACTIVATE_TIMEOUT)

    def _retry_later(self, failed: FailedReplica) -> None:
        key = (failed.collection, failed.shard_id, failed.peer_id)
        if key in self._retries and not self._retries[key].done():
            return

        async def retry() -> None:
            try:
                async for attempt in until_done(DEACTIVATE_RETRY_FOR):
                    with attempt:
                        await self._mark_dead(failed)
            except QClusterError as exc:
                log.error(
                    "gave up marking a failed replica Dead; it may miss acknowledged writes",
                    collection=failed.collection,
                    shard=failed.shard_id,
                    peer=failed.peer_id,
                    error=exc.message,
                )
            finally:
                self._retries.pop(key, None)

        self._retries[key] = asyncio.get_running_loop().create_task(retry(), name=f"deactivate:{key}")

    async def close(self) -> None:
        tasks = list(self._retries.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
