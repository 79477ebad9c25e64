"""What a ConsensusService reports about itself: Raft status, ``/cluster`` body, ``Health`` figures.

Everything here reads; nothing changes the node. :func:`log_status_change` is the Raft node's
status-change hook, posted to the loop (see ``service_start.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import qcluster
from qcluster.consensus.info import RaftInfo, RaftStatus, cluster_body
from qcluster.logging import get_logger

if TYPE_CHECKING:
    from qcluster.consensus.service import ConsensusService

log = get_logger(__name__)


class StatusReport:
    def __init__(self, service: ConsensusService) -> None:
        self.service = service

    def raft_status(self) -> RaftStatus:
        raft = self.service.raft
        return raft.status if raft is not None else RaftStatus()

    def raft_info(self) -> RaftInfo:
        svc = self.service
        st = self.raft_status()
        return RaftInfo(
            term=st.term,
            commit=st.commit,
            pending_operations=svc.proposer.pending if svc.proposer is not None else 0,
            leader=st.leader,
            role=st.role if svc.raft is not None else None,
            is_voter=svc.raft is not None,
        )

    def health(self) -> dict[str, Any]:
        """This peer's figures as the ``Health`` call reports them (see ``/cluster/telemetry``)."""
        svc = self.service
        info = self.raft_info()
        return {
            "peer_id": svc.peer_id,
            "term": info.term,
            "commit": info.commit,
            "leader_peer_id": info.leader or 0,
            "role": info.role.value if info.role is not None else "",
            "version": qcluster.QDRANT_COMPAT_VERSION,
            "is_voter": info.is_voter,
            "pending_operations": info.pending_operations,
            "consensus_thread_status": "working" if svc.running else "stopped",
            "applied_index": svc.applier.applied_index,
        }

    def cluster_info(self) -> dict[str, Any]:
        """Qdrant's ``GET /cluster`` result body."""
        svc = self.service
        failures = svc.links.failures if svc.links is not None else {}
        return cluster_body(svc.peer_id, self.raft_info(), svc.applier.state.peers, failures, svc.running)


def log_status_change(old: RaftStatus, new: RaftStatus) -> None:
    if (old.role, old.leader) != (new.role, new.leader):
        log.info(
            "raft role changed", role=new.role.value, leader=new.leader, term=new.term, was=old.role.value
        )
    if old.members != new.members:
        log.info("raft membership changed", members=list(new.members), term=new.term, commit=new.commit)
