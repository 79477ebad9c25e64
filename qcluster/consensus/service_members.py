"""Who is in the cluster, as a ConsensusService changes it: joins, removals, leadership hand-over.

- ``handle_join`` (the ``Join`` call, server side): agree on the new peer's URI, then make it a
  Raft member (client side and the steps: :mod:`membership`);
- ``remove_peer``: ask the peer to stay quiet, drop it from Raft, then from the state;
- ``step_down``: this leader stops sending heartbeats for a while so another peer is elected;
- ``open_raft_inbound``: a Raft stream from another peer (the ``RaftStream`` call);
- ``register_self`` (a background task from ``start``): make the state list this peer under
  its current URI (first start, or a restart on a new ``--uri``).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from qcluster.consensus import operations as ops
from qcluster.consensus.info import JoinAnswer
from qcluster.consensus.membership import ensure_raft_member, remove_raft_member
from qcluster.consensus.peer_calls import ask_step_down
from qcluster.consensus.proposer import DEFAULT_TIMEOUT
from qcluster.errors import BadInputError, NotFoundError, QClusterError, TransientError
from qcluster.logging import get_logger
from qcluster.p2p.channels import parse_uri

if TYPE_CHECKING:
    from qcluster.consensus.service import ConsensusService

log = get_logger(__name__)

SELF_REGISTER_RETRY = 0.5


class Members:
    def __init__(self, service: ConsensusService) -> None:
        self.service = service

    async def register_self(self) -> None:
        """Make the state list this peer with its current URI (first start, restart on a new URI)."""
        svc = self.service
        while svc.running:
            if not svc.is_caught_up():
                await asyncio.sleep(0.02)
                continue
            known = svc.state.peers.get(svc.peer_id)
            if known == svc.uri:
                return
            op = (
                ops.add_peer(svc.peer_id, svc.uri)
                if known is None
                else ops.update_peer_uri(svc.peer_id, svc.uri)
            )
            try:
                await svc.propose(op, DEFAULT_TIMEOUT)
            except QClusterError as exc:
                log.info("registering this peer's uri failed; retrying", error=exc.message)
                await asyncio.sleep(SELF_REGISTER_RETRY)

    async def remove_peer(self, peer_id: int, *, force: bool, timeout: float) -> None:
        """Remove a peer from Raft and from the state. Without ``force`` a peer that still holds
        replicas is refused (BadInputError); with it, its replicas are dropped from the state."""
        svc = self.service
        if svc.raft is None or not svc.running:
            raise TransientError("consensus is not running on this peer")
        raft = svc.raft
        if peer_id == svc.peer_id:
            raise BadInputError("a peer cannot remove itself; send the request to another peer", "peer_id")
        if peer_id not in svc.state.peers and peer_id not in raft.status.members:
            raise NotFoundError(f"peer {peer_id} doesn't exist")
        held = svc.state.replicas_on_peer(peer_id)
        if held and not force:
            shards = ", ".join(f"{c}/{s}" for c, s, _ in held[:5])
            raise BadInputError(
                f"peer {peer_id} still holds replicas ({shards}); move them first or use force", "force"
            )
        known = svc.links.addresses() if svc.links is not None else {}
        uri = svc.state.peers.get(peer_id) or known.get(peer_id)
        quiet = 3 * svc.tuning.election_timeout_max
        pool = svc.pool

        async def step_down() -> None:
            if uri:
                await ask_step_down(pool, peer_id, uri, quiet)

        await remove_raft_member(raft, peer_id, timeout, step_down, quiet)
        if peer_id in svc.state.peers:
            await svc.propose(ops.remove_peer(peer_id), timeout)

    def step_down(self, quiet: float) -> bool:
        """Hand leadership over (see :meth:`RaftLinks.quiet`); False when this peer is not the leader."""
        svc = self.service
        st = svc.raft_status()
        if svc.links is None or st.leader != svc.peer_id:
            return False
        log.info("stepping down as leader", quiet_s=quiet, term=st.term)
        svc.links.quiet(quiet)
        return True

    async def handle_join(self, peer_id: int, uri: str) -> JoinAnswer:
        svc = self.service
        if svc.raft is None or not svc.running:
            raise TransientError("consensus is not running on this peer yet")
        if not 1 <= peer_id <= ops.MAX_PEER_ID:
            raise BadInputError(f"peer_id must be in [1, 2^53], got {peer_id}", "peer_id")
        if peer_id == svc.peer_id:
            raise BadInputError(f"peer id {peer_id} is this peer's own id", "peer_id")
        parse_uri(uri, "uri")
        raft = svc.raft
        known = svc.state.peers.get(peer_id)
        if known is None:
            await svc.propose(ops.add_peer(peer_id, uri))
        elif known != uri:
            await svc.propose(ops.update_peer_uri(peer_id, uri))
        await ensure_raft_member(raft.add_member, lambda: raft.status, peer_id, True, DEFAULT_TIMEOUT)
        log.info("peer joined", peer=peer_id, uri=uri, term=raft.status.term)
        return JoinAnswer(peer_id, uri, dict(svc.state.peers), raft.status.leader)

    def open_raft_inbound(self, sender_id: int, sender_uri: str) -> Any:
        svc = self.service
        if svc.links is None or not svc.running:
            raise TransientError("this peer's Raft node is not running")
        return svc.links.inbound(sender_id, sender_uri)
