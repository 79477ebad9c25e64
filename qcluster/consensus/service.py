"""ConsensusService: this peer's Raft node, cluster state, proposer and reactor in one object.

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

``start`` decides between three cases from ``storage/raft/``: a restart (``peers.json`` exists:
resume from the journal, ignore ``--bootstrap``, keep the peer id, and if ``--uri`` changed, propose
the new URI through consensus), a join (``--bootstrap``: see :mod:`membership`), or the first peer
of a new cluster (a single-member Raft that elects itself). It refuses to run without
``cluster.secret`` unless ``cluster.allow_insecure_p2p`` is set (then it logs a loud warning).

Reading: ``state`` (the :class:`ClusterState`, applied on the loop; never mutate it), ``peer_id``,
``raft_info()`` and ``cluster_info()`` (Qdrant's ``GET /cluster`` body), ``is_caught_up()`` (for
``/readyz``). ``--reinit`` (``start(reinit=True)``) turns a surviving peer into the sole member of
a new cluster, keeping its state minus the other peers (see :mod:`reinit`). Writing: ``await propose(op, timeout)`` with an operation from
:mod:`operations` (compute placements with :mod:`placement` first); it raises TransientError
without a quorum, TimeoutError_ past the deadline, and NotFound/AlreadyExists/BadInput when the
state rejects the operation. Membership: ``remove_peer(peer_id, force=...)``; joins arrive through
the gRPC servicer (``handle_join``). The listener gets every event in log order (see :mod:`reactor`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import qcluster
from qcluster.consensus import events as ev
from qcluster.consensus import operations as ops
from qcluster.consensus.bridge import ApplyBridge, SnapshotImage, read_dump_file
from qcluster.consensus.identity import (
    PeerIdentity,
    load_identity,
    load_peers,
    new_peer_id,
    save_identity,
    save_peers,
)
from qcluster.consensus.info import JoinAnswer, RaftInfo, RaftStatus, cluster_body
from qcluster.consensus.membership import ensure_raft_member, join_cluster, remove_raft_member
from qcluster.consensus.op_codec import decode_op
from qcluster.consensus.p2p_policy import check_p2p_security
from qcluster.consensus.peer_calls import SyncTarget, ask_step_down, wait_peers_synced
from qcluster.consensus.proposer import ProposalResult, Proposer
from qcluster.consensus.raft import DUMP_FILE, MetadataRaft, RaftTuning
from qcluster.consensus.reactor import ConsensusListener, EventHandlers, Reactor
from qcluster.consensus.reinit import reinit_storage
from qcluster.consensus.state import ClusterState
from qcluster.consensus.transport import RaftLinks
from qcluster.errors import (
    BadInputError,
    CorruptedStorageError,
    NotFoundError,
    QClusterError,
    StorageError,
    TimeoutError_,
    TransientError,
)
from qcluster.logging import get_logger
from qcluster.p2p.channels import ChannelPool, make_uri, parse_uri
from qcluster.settings import ClusterSettings

log = get_logger(__name__)

DEFAULT_TIMEOUT = 10.0
PUBLISH_EVERY = 32
SELF_REGISTER_RETRY = 0.5


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
        self._settings = cluster
        self._raft_dir = Path(storage_path) / "raft"
        self._tuning = tuning or RaftTuning()
        self._own_pool = pool is None
        self._pool = pool if pool is not None else ChannelPool(cluster.secret)
        self._state = ClusterState()
        self._applied_index = 0
        self._published_index = 0
        self._peer_id = 0
        self._uri = ""
        self._raft: MetadataRaft | None = None
        self._links: RaftLinks | None = None
        self._bridge: ApplyBridge | None = None
        self._proposer: Proposer | None = None
        self._reactor = Reactor(listener or EventHandlers(), lambda: self._state)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._running = False
        self._has_collection = has_collection

    # ------------------------------------------------------------------ read side

    @property
    def peer_id(self) -> int:
        return self._peer_id

    @property
    def pool(self) -> ChannelPool:
        return self._pool

    @property
    def uri(self) -> str:
        return self._uri

    @property
    def state(self) -> ClusterState:
        return self._state

    @property
    def applied_index(self) -> int:
        return self._applied_index

    @property
    def running(self) -> bool:
        return self._running

    def raft_status(self) -> RaftStatus:
        return self._raft.status if self._raft is not None else RaftStatus()

    def raft_info(self) -> RaftInfo:
        st = self.raft_status()
        return RaftInfo(
            term=st.term,
            commit=st.commit,
            pending_operations=self._proposer.pending if self._proposer is not None else 0,
            leader=st.leader,
            role=st.role if self._raft is not None else None,
            is_voter=self._raft is not None,
        )

    def is_caught_up(self) -> bool:
        """This peer knows a leader that has committed an entry of its own term (so everything
        before it is known committed), its Raft node has applied up to the leader's commit index,
        and the loop has applied every operation the Raft node handed over (for ``/readyz``)."""
        st = self.raft_status()
        if not self._running or st.leader is None or self._bridge is None or st.commit_term != st.term:
            return False
        target = max(st.commit, st.leader_commit or 0)
        return st.last_applied >= target and self._applied_index >= self._bridge.handed_index

    async def wait_caught_up(self, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.is_caught_up():
            if loop.time() >= deadline:
                raise TransientError(
                    f"peer {self._peer_id} has not caught up with the leader within {timeout:g}s"
                )
            await asyncio.sleep(0.02)

    def live_peers(self) -> set[int]:
        """Peers of the state this one can reach right now (itself included)."""
        reachable = {self._peer_id, *self.raft_status().connected}
        return {p for p in self._state.peers if p in reachable}

    def is_synced(self, index: int) -> bool:
        """This peer has applied the log up to ``index`` and handled the resulting events."""
        return self._applied_index >= index and self._reactor.handled_through(index)

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
                    f"applied {self._applied_index} of {index} log entries within {timeout:g}s"
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
        await wait_peers_synced(self._pool, self._peer_id, self.wait_synced, peers, target, timeout, what)

    def health(self) -> dict[str, Any]:
        """This peer's figures as the ``Health`` call reports them (see ``/cluster/telemetry``)."""
        info = self.raft_info()
        return {
            "peer_id": self._peer_id,
            "term": info.term,
            "commit": info.commit,
            "leader_peer_id": info.leader or 0,
            "role": info.role.value if info.role is not None else "",
            "version": qcluster.QDRANT_COMPAT_VERSION,
            "is_voter": info.is_voter,
            "pending_operations": info.pending_operations,
            "consensus_thread_status": "working" if self._running else "stopped",
            "applied_index": self._applied_index,
        }

    def cluster_info(self) -> dict[str, Any]:
        """Qdrant's ``GET /cluster`` result body."""
        failures = self._links.failures if self._links is not None else {}
        return cluster_body(self._peer_id, self.raft_info(), self._state.peers, failures, self._running)

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
        """Steps: check the secret; load or create the identity; join when new and bootstrapping;
        start Raft; make sure the state lists this peer under its current URI (background).
        Cancellation: stops whatever was started (call ``stop``)."""
        check_p2p_security(self._settings, ("uri", uri), ("bootstrap", bootstrap))
        if uri is not None:
            parse_uri(uri, "uri")
        if bootstrap is not None:
            parse_uri(bootstrap, "bootstrap")
        self._raft_dir.mkdir(parents=True, exist_ok=True)
        identity = load_identity(self._raft_dir)
        members = load_peers(self._raft_dir)
        peer_id = identity.peer_id if identity is not None else new_peer_id()
        if members is not None and identity is None:
            raise CorruptedStorageError(f"{self._raft_dir} has a peer list but no peer identity (peer.json)")
        if members is not None and identity is not None:  # restart
            if bootstrap is not None:
                log.info("restart: stored cluster state found, --bootstrap ignored", bootstrap=bootstrap)
            my_uri = uri or identity.uri
            if reinit:
                reinit_storage(self._raft_dir, peer_id, my_uri)
                members = {peer_id: my_uri}
                save_peers(self._raft_dir, members)
        elif reinit:
            raise BadInputError("--reinit needs the storage of a peer that was part of a cluster", "reinit")
        elif bootstrap is not None:  # join
            save_identity(self._raft_dir, PeerIdentity(peer_id, uri or ""))
            log.info("joining cluster", bootstrap=bootstrap, peer_id=peer_id, uri=uri)
            answer = await join_cluster(self._pool, bootstrap, peer_id, uri, p2p_port, timeout)
            my_uri = answer.uri
            members = answer.peers
            save_peers(self._raft_dir, members)
        else:  # first peer of a new cluster
            if uri is None:
                log.warning(
                    "no --uri given for the first peer; other peers will use 127.0.0.1", port=p2p_port
                )
            my_uri = uri or make_uri("127.0.0.1", p2p_port)
            members = {peer_id: my_uri}
            save_peers(self._raft_dir, members)
        check_p2p_security(self._settings, ("uri", my_uri), warn=False)  # the stored URI, on restart
        save_identity(self._raft_dir, PeerIdentity(peer_id, my_uri))
        if (self._raft_dir / DUMP_FILE).exists():
            read_dump_file(self._raft_dir / DUMP_FILE)  # refuse to start on a damaged snapshot
        self._peer_id, self._uri = peer_id, my_uri
        self._start_raft(members)
        self._running = True
        self._spawn(self._register_self(), "consensus-register-self")
        log.info("consensus started", peer_id=peer_id, uri=my_uri, members=sorted(members))

    def _start_raft(self, members: dict[int, str]) -> None:
        loop = asyncio.get_running_loop()
        self._links = RaftLinks(loop, self._pool, self._peer_id, self._uri)
        for pid, addr in members.items():
            if pid != self._peer_id:
                self._links.set_address(pid, addr)
        self._bridge = ApplyBridge(loop, self._on_apply, self._on_snapshot)
        self._reactor.start()
        self._raft = MetadataRaft(
            self._peer_id,
            [p for p in members if p != self._peer_id],
            self._raft_dir,
            self._tuning,
            self._bridge,
            self._links,
            on_status_change=lambda old, new: self._post(loop, self._log_status_change, old, new),
        )
        raft = self._raft
        self._proposer = Proposer(loop, raft.submit, lambda: raft.status)

    @staticmethod
    def _post(loop: asyncio.AbstractEventLoop, func: Any, *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # loop closed
            loop.call_soon_threadsafe(func, *args)

    async def stop(self) -> None:
        """Stop Raft (its thread is joined off the loop), the links, the reactor; fail waiters."""
        self._running = False
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, QClusterError):
                await task
        if self._proposer is not None:
            self._proposer.close()
        if self._raft is not None:
            await asyncio.to_thread(self._raft.stop_and_join)
        if self._links is not None:
            await self._links.close()
        await self._reactor.stop()
        if self._own_pool:
            await self._pool.close()
        log.info("consensus stopped", peer_id=self._peer_id)

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _register_self(self) -> None:
        """Make the state list this peer with its current URI (first start, restart on a new URI)."""
        while self._running:
            if not self.is_caught_up():
                await asyncio.sleep(0.02)
                continue
            known = self._state.peers.get(self._peer_id)
            if known == self._uri:
                return
            op = (
                ops.add_peer(self._peer_id, self._uri)
                if known is None
                else ops.update_peer_uri(self._peer_id, self._uri)
            )
            try:
                await self.propose(op, DEFAULT_TIMEOUT)
            except QClusterError as exc:
                log.info("registering this peer's uri failed; retrying", error=exc.message)
                await asyncio.sleep(SELF_REGISTER_RETRY)

    # ------------------------------------------------------------------ write side

    async def propose(self, op: ops.Op, timeout: float = DEFAULT_TIMEOUT) -> ProposalResult:
        if self._proposer is None or not self._running:
            raise TransientError("consensus is not running on this peer")
        return await self._proposer.propose(op, timeout)

    async def remove_peer(
        self, peer_id: int, *, force: bool = False, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        """Remove a peer from Raft and from the state. Without ``force`` a peer that still holds
        replicas is refused (BadInputError); with it, its replicas are dropped from the state."""
        if self._raft is None or not self._running:
            raise TransientError("consensus is not running on this peer")
        raft = self._raft
        if peer_id == self._peer_id:
            raise BadInputError("a peer cannot remove itself; send the request to another peer", "peer_id")
        if peer_id not in self._state.peers and peer_id not in raft.status.members:
            raise NotFoundError(f"peer {peer_id} doesn't exist")
        held = self._state.replicas_on_peer(peer_id)
        if held and not force:
            shards = ", ".join(f"{c}/{s}" for c, s, _ in held[:5])
            raise BadInputError(
                f"peer {peer_id} still holds replicas ({shards}); move them first or use force", "force"
            )
        known = self._links.addresses() if self._links is not None else {}
        uri = self._state.peers.get(peer_id) or known.get(peer_id)
        quiet = 3 * self._tuning.election_timeout_max
        pool = self._pool

        async def step_down() -> None:
            if uri:
                await ask_step_down(pool, peer_id, uri, quiet)

        await remove_raft_member(raft, peer_id, timeout, step_down, quiet)
        if peer_id in self._state.peers:
            await self.propose(ops.remove_peer(peer_id), timeout)

    def step_down(self, quiet: float) -> bool:
        """Hand leadership over (see :meth:`RaftLinks.quiet`); False when this peer is not the leader."""
        st = self.raft_status()
        if self._links is None or st.leader != self._peer_id:
            return False
        log.info("stepping down as leader", quiet_s=quiet, term=st.term)
        self._links.quiet(quiet)
        return True

    # ------------------------------------------------------------------ p2p backend (ClusterServicer)

    async def handle_join(self, peer_id: int, uri: str) -> JoinAnswer:
        if self._raft is None or not self._running:
            raise TransientError("consensus is not running on this peer yet")
        if not 1 <= peer_id <= ops.MAX_PEER_ID:
            raise BadInputError(f"peer_id must be in [1, 2^53], got {peer_id}", "peer_id")
        if peer_id == self._peer_id:
            raise BadInputError(f"peer id {peer_id} is this peer's own id", "peer_id")
        parse_uri(uri, "uri")
        raft = self._raft
        known = self._state.peers.get(peer_id)
        if known is None:
            await self.propose(ops.add_peer(peer_id, uri))
        elif known != uri:
            await self.propose(ops.update_peer_uri(peer_id, uri))
        await ensure_raft_member(raft.add_member, lambda: raft.status, peer_id, True, DEFAULT_TIMEOUT)
        log.info("peer joined", peer=peer_id, uri=uri, term=raft.status.term)
        return JoinAnswer(peer_id, uri, dict(self._state.peers), raft.status.leader)

    def open_raft_inbound(self, sender_id: int, sender_uri: str) -> Any:
        if self._links is None or not self._running:
            raise TransientError("this peer's Raft node is not running")
        return self._links.inbound(sender_id, sender_uri)

    # ------------------------------------------------------------------ apply path (loop)

    def _on_apply(self, index: int, term: int, op_bytes: bytes) -> None:
        try:
            op = decode_op(op_bytes)
        except BadInputError as exc:
            log.error("undecodable consensus operation skipped", index=index, term=term, error=exc.message)
            self._applied_index = index
            return
        try:
            events = self._state.apply(op)
        except Exception:  # apply is total by design: this is a bug, and this peer may now diverge
            log.exception(
                "BUG: cluster state apply failed", kind=op.KIND, index=index, request_id=op.request_id
            )
            events = []
        self._applied_index = index
        log.info(
            "consensus operation applied",
            kind=op.KIND,
            index=index,
            term=term,
            request_id=op.request_id,
            events=[type(e).__name__ for e in events],
        )
        self._follow_peers(events)
        if self._proposer is not None:
            self._proposer.on_applied(op.request_id, index, events)
        self._reactor.submit(events, index)
        if self._bridge is not None and index - self._published_index >= PUBLISH_EVERY:
            self._bridge.publish(index, self._state.to_bytes())
            self._published_index = index

    def _on_snapshot(self, image: SnapshotImage) -> None:
        self._state = image.materialise()
        self._applied_index = image.index
        if self._bridge is not None:
            self._bridge.publish(image.index, self._state.to_bytes())
            self._published_index = image.index
        log.info("consensus snapshot loaded", index=image.index, peers=len(self._state.peers))
        self._follow_peers([ev.StateReset(image.index)])
        if self._proposer is not None:
            self._proposer.on_reset(self._state.applied_requests)
        self._reactor.submit([ev.StateReset(image.index)], image.index)

    def _follow_peers(self, events: list[ev.Event]) -> None:
        """Keep the Raft links' address book and ``peers.json`` in step with the state."""
        touched = False
        for e in events:
            if isinstance(e, ev.PeerAdded | ev.PeerUriChanged | ev.PeerRemoved | ev.StateReset):
                touched = True
        if not touched or self._links is None:
            return
        for pid, uri in self._state.peers.items():
            if pid != self._peer_id:
                self._links.set_address(pid, uri)
        for e in events:
            if isinstance(e, ev.PeerRemoved):
                self._links.set_address(e.peer_id, None)
        peers = dict(self._state.peers)
        peers.setdefault(self._peer_id, self._uri)
        save_peers(self._raft_dir, peers)

    def _log_status_change(self, old: RaftStatus, new: RaftStatus) -> None:
        if (old.role, old.leader) != (new.role, new.leader):
            log.info(
                "raft role changed", role=new.role.value, leader=new.leader, term=new.term, was=old.role.value
            )
        if old.members != new.members:
            log.info("raft membership changed", members=list(new.members), term=new.term, commit=new.commit)
