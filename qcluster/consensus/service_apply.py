"""The apply path of a ConsensusService, on the loop: committed entries and snapshots -> the state.

The Raft thread never runs this: :class:`ApplyBridge` hands each committed operation (and each
snapshot pysyncobj loads) over to the loop, which calls :meth:`StateApplier.on_apply` /
:meth:`StateApplier.on_snapshot` in log order. Each applies to :class:`ClusterState` (a total
function: a failure is a bug, logged, and the entry counts as applied), keeps the Raft links'
address book and ``peers.json`` in step with the peers of the state, wakes the proposer's
waiters, hands the events to the reactor, and now and then publishes the state to the bridge
as the base of future Raft dumps.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qcluster.consensus import events as ev
from qcluster.consensus.bridge import SnapshotImage
from qcluster.consensus.identity import save_peers
from qcluster.consensus.op_codec import decode_op
from qcluster.consensus.state import ClusterState
from qcluster.errors import BadInputError
from qcluster.logging import get_logger

if TYPE_CHECKING:
    from qcluster.consensus.service import ConsensusService

log = get_logger(__name__)

PUBLISH_EVERY = 32


class StateApplier:
    def __init__(self, service: ConsensusService) -> None:
        self.service = service
        self.state = ClusterState()  # replaced whole by a snapshot; never mutate it elsewhere
        self.applied_index = 0
        self._published_index = 0

    def on_apply(self, index: int, term: int, op_bytes: bytes) -> None:
        svc = self.service
        try:
            op = decode_op(op_bytes)
        except BadInputError as exc:
            log.error("undecodable consensus operation skipped", index=index, term=term, error=exc.message)
            self.applied_index = index
            return
        try:
            events = self.state.apply(op)
        except Exception:  # apply is total by design: this is a bug, and this peer may now diverge
            log.exception(
                "BUG: cluster state apply failed", kind=op.KIND, index=index, request_id=op.request_id
            )
            events = []
        self.applied_index = index
        log.info(
            "consensus operation applied",
            kind=op.KIND,
            index=index,
            term=term,
            request_id=op.request_id,
            events=[type(e).__name__ for e in events],
        )
        self._follow_peers(events)
        if svc.proposer is not None:
            svc.proposer.on_applied(op.request_id, index, events)
        svc.reactor.submit(events, index)
        if svc.bridge is not None and index - self._published_index >= PUBLISH_EVERY:
            svc.bridge.publish(index, self.state.to_bytes())
            self._published_index = index

    def on_snapshot(self, image: SnapshotImage) -> None:
        svc = self.service
        self.state = image.materialise()
        self.applied_index = image.index
        if svc.bridge is not None:
            svc.bridge.publish(image.index, self.state.to_bytes())
            self._published_index = image.index
        log.info("consensus snapshot loaded", index=image.index, peers=len(self.state.peers))
        self._follow_peers([ev.StateReset(image.index)])
        if svc.proposer is not None:
            svc.proposer.on_reset(self.state.applied_requests)
        svc.reactor.submit([ev.StateReset(image.index)], image.index)

    def _follow_peers(self, events: list[ev.Event]) -> None:
        """Keep the Raft links' address book and ``peers.json`` in step with the state."""
        svc = self.service
        touched = False
        for e in events:
            if isinstance(e, ev.PeerAdded | ev.PeerUriChanged | ev.PeerRemoved | ev.StateReset):
                touched = True
        if not touched or svc.links is None:
            return
        for pid, uri in self.state.peers.items():
            if pid != svc.peer_id:
                svc.links.set_address(pid, uri)
        for e in events:
            if isinstance(e, ev.PeerRemoved):
                svc.links.set_address(e.peer_id, None)
        peers = dict(self.state.peers)
        peers.setdefault(svc.peer_id, svc.uri)
        save_peers(svc.raft_dir, peers)
