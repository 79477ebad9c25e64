"""How far a ConsensusService has got: caught up with the leader, synced with a log index.

- *caught up* (``is_caught_up``, for ``/readyz``): a known leader that has committed in its own
  term, and this peer applied everything up to its commit index;
- *synced* (``is_synced``): this peer applied the log up to an index and its reactor handled the
  events that produced (optionally checking the table of contents holds, or no longer holds, a
  collection); ``wait_peers_synced`` asks the same of other peers over the p2p port.

The waits poll the condition on the loop until their deadline.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from qcluster.consensus.peer_calls import SyncTarget, wait_peers_synced
from qcluster.errors import StorageError, TimeoutError_, TransientError

if TYPE_CHECKING:
    from qcluster.consensus.service import ConsensusService


class SyncWaits:
    def __init__(self, service: ConsensusService, has_collection: Callable[[str], bool] | None) -> None:
        self.service = service
        self._has_collection = has_collection

    def is_caught_up(self) -> bool:
        """This peer knows a leader that has committed an entry of its own term (so everything
        before it is known committed), its Raft node has applied up to the leader's commit index,
        and the loop has applied every operation the Raft node handed over (for ``/readyz``)."""
        svc = self.service
        st = svc.raft_status()
        if not svc.running or st.leader is None or svc.bridge is None or st.commit_term != st.term:
            return False
        target = max(st.commit, st.leader_commit or 0)
        return st.last_applied >= target and svc.applier.applied_index >= svc.bridge.handed_index

    async def wait_caught_up(self, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.is_caught_up():
            if loop.time() >= deadline:
                raise TransientError(
                    f"peer {self.service.peer_id} has not caught up with the leader within {timeout:g}s"
                )
            await asyncio.sleep(0.02)

    def live_peers(self) -> set[int]:
        """Peers of the state this one can reach right now (itself included)."""
        svc = self.service
        reachable = {svc.peer_id, *svc.raft_status().connected}
        return {p for p in svc.applier.state.peers if p in reachable}

    def is_synced(self, index: int) -> bool:
        """This peer has applied the log up to ``index`` and handled the resulting events."""
        return self.service.applier.applied_index >= index and self.service.reactor.handled_through(index)

    async def wait_synced(
        self, index: int, timeout: float, collection: str = "", expect_absent: bool = False
    ) -> None:
        """Wait until :meth:`is_synced`; with ``collection``, also check this peer then holds it
        (or, ``expect_absent``, no longer holds it). TimeoutError_ / StorageError otherwise."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.is_synced(index):
            if loop.time() >= deadline:
                raise TimeoutError_(
                    f"applied {self.service.applier.applied_index} of {index} log entries within {timeout:g}s"
                )
            await asyncio.sleep(0.01)
        probe = self._has_collection
        if collection and probe is not None and probe(collection) == expect_absent:
            what = "still holds" if expect_absent else "does not hold"
            raise StorageError(
                f"applied entry {index} but {what} collection `{collection}` (see this peer's log)"
            )

    async def wait_peers_synced(
        self, peers: Mapping[int, str], target: SyncTarget, timeout: float, what: str
    ) -> None:
        """Wait until each of ``peers`` (this one included or not) is synced with ``target``."""
        svc = self.service
        await wait_peers_synced(svc.pool, svc.peer_id, self.wait_synced, peers, target, timeout, what)
