"""ConsensusService: this peer's Raft node, cluster state, proposer and reactor behind one object.

Integration guide (node.py)
---------------------------
::

    pool = ChannelPool(settings.cluster.secret)                 # shared with other p2p clients
    consensus = ConsensusService(settings.cluster, settings.storage.storage_path,
                                 listener=toc, pool=pool)        # toc: a ConsensusListener
    server = P2pServer(settings.service.host, settings.cluster.p2p.port, settings.cluster.secret)
    ClusterServicer(consensus).register(server.grpc)
    await server.start()                                         # 1. the port first: Raft rides it
    await consensus.start(p2p_port=server.port, uri=args.uri, bootstrap=args.bootstrap)   # 2.
    ...
    await consensus.stop(); await server.stop(); await pool.close()

``start`` resumes after a restart, joins a cluster (``--bootstrap``) or founds a new one (see
``service_start.py``). It refuses to run without ``cluster.secret`` unless
``cluster.allow_insecure_p2p`` is set (then it logs a loud warning).

Reading: ``state`` (the :class:`ClusterState`, applied on the loop; never mutate it), ``peer_id``,
``raft_info()`` and ``cluster_info()`` (Qdrant's ``GET /cluster`` body), ``is_caught_up()`` (for
``/readyz``). ``--reinit`` (``start(reinit=True)``) turns a surviving peer into the sole member of
a new cluster, keeping its state minus the other peers (see :mod:`reinit`). Writing: ``await propose(op, timeout)`` with an operation from
:mod:`operations` (compute placements with :mod:`placement` first); it raises TransientError
without a quorum, TimeoutError_ past the deadline, and NotFound/AlreadyExists/BadInput when the
state rejects the operation. Membership: ``remove_peer(peer_id, force=...)``; joins arrive through
the gRPC servicer (``handle_join``). The listener gets every event in log order (see :mod:`reactor`).

The service holds the parts (settings, identity, the Raft node, its links, the apply bridge, the
proposer, the reactor: public for its collaborators; other modules call its methods) and answers
every call; the work lives beside it, one collaborator each:

- ``service_start.py`` (``lifecycle``): restart / join / first peer, wiring Raft, stopping;
- ``service_apply.py`` (``applier``): committed entries and snapshots applied to the state on the
  loop, then handed to the proposer's waiters and the reactor; owns ``state``;
- ``service_members.py`` (``members``): joins, removals, stepping down, inbound Raft streams,
  this peer's own entry in the state;
- ``service_sync.py`` (``sync``): caught up / synced checks and waits, here and on other peers;
- ``service_status.py`` (``status``): Raft status, ``raft_info``, ``Health`` and ``/cluster``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from qcluster.consensus import operations as ops
from qcluster.consensus.bridge import ApplyBridge
from qcluster.consensus.info import JoinAnswer, RaftInfo, RaftStatus
from qcluster.consensus.peer_calls import SyncTarget
from qcluster.consensus.proposer import DEFAULT_TIMEOUT, ProposalResult, Proposer
from qcluster.consensus.raft import MetadataRaft, RaftTuning
from qcluster.consensus.reactor import ConsensusListener, EventHandlers, Reactor
from qcluster.consensus.service_apply import StateApplier
from qcluster.consensus.service_members import Members
from qcluster.consensus.service_start import Lifecycle
from qcluster.consensus.service_status import StatusReport
from qcluster.consensus.service_sync import SyncWaits
from qcluster.consensus.state import ClusterState
from qcluster.consensus.transport import RaftLinks
from qcluster.errors import TransientError
from qcluster.p2p.channels import ChannelPool
from qcluster.settings import ClusterSettings


class ConsensusService:
    def __init__(
        self,
        cluster: ClusterSettings,
        storage_path: Path,
        *,
        tuning: RaftTuning | None = None,
        listener: ConsensusListener | None = None,
        pool: ChannelPool | None = None,
        has_collection: Callable[[str], bool] | None = None,
    ) -> None:
        self.settings = cluster
        self.raft_dir = Path(storage_path) / "raft"
        self.tuning = tuning or RaftTuning()
        self.own_pool = pool is None
        self.pool = pool if pool is not None else ChannelPool(cluster.secret)
        self.peer_id = 0  # this peer's id and p2p URI, from ``start`` on
        self.uri = ""
        self.running = False
        # the Raft node and what it talks through, from ``start`` on
        self.raft: MetadataRaft | None = None
        self.links: RaftLinks | None = None
        self.bridge: ApplyBridge | None = None
        self.proposer: Proposer | None = None
        self.applier = StateApplier(self)
        self.reactor = Reactor(listener or EventHandlers(), lambda: self.applier.state)
        self.lifecycle = Lifecycle(self)
        self.members = Members(self)
        self.sync = SyncWaits(self, has_collection)
        self.status = StatusReport(self)

    # ------------------------------------------------------------------ read side

    @property
    def state(self) -> ClusterState:
        return self.applier.state

    @property
    def applied_index(self) -> int:
        return self.applier.applied_index

    def raft_status(self) -> RaftStatus:
        return self.status.raft_status()

    def raft_info(self) -> RaftInfo:
        return self.status.raft_info()

    def health(self) -> dict[str, Any]:
        return self.status.health()

    def cluster_info(self) -> dict[str, Any]:
        return self.status.cluster_info()

    def is_caught_up(self) -> bool:
        return self.sync.is_caught_up()

    async def wait_caught_up(self, timeout: float) -> None:
        await self.sync.wait_caught_up(timeout)

    def live_peers(self) -> set[int]:
        return self.sync.live_peers()

    def is_synced(self, index: int) -> bool:
        return self.sync.is_synced(index)

    async def wait_synced(
        self, index: int, timeout: float, collection: str = "", expect_absent: bool = False
    ) -> None:
        await self.sync.wait_synced(index, timeout, collection, expect_absent)

    async def wait_peers_synced(
        self, peers: Mapping[int, str], target: SyncTarget, timeout: float, what: str
    ) -> None:
        await self.sync.wait_peers_synced(peers, target, timeout, what)

    # ------------------------------------------------------------------ lifecycle

    async def start(
        self,
        *,
        p2p_port: int,
        uri: str | None = None,
        bootstrap: str | None = None,
        reinit: bool = False,
        timeout: float = 30.0,
    ) -> None:
        await self.lifecycle.start(
            p2p_port=p2p_port, uri=uri, bootstrap=bootstrap, reinit=reinit, timeout=timeout
        )

    async def stop(self) -> None:
        await self.lifecycle.stop()

    # ------------------------------------------------------------------ write side

    async def propose(self, op: ops.Op, timeout: float = DEFAULT_TIMEOUT) -> ProposalResult:
        if self.proposer is None or not self.running:
            raise TransientError("consensus is not running on this peer")
        return await self.proposer.propose(op, timeout)

    async def remove_peer(
        self, peer_id: int, *, force: bool = False, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        await self.members.remove_peer(peer_id, force=force, timeout=timeout)

    # ------------------------------------------------------------------ p2p backend (ClusterServicer)

    def step_down(self, quiet: float) -> bool:
        return self.members.step_down(quiet)

    async def handle_join(self, peer_id: int, uri: str) -> JoinAnswer:
        return await self.members.handle_join(peer_id, uri)

    def open_raft_inbound(self, sender_id: int, sender_uri: str) -> Any:
        return self.members.open_raft_inbound(sender_id, sender_uri)
