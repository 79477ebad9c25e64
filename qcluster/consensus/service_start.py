"""Starting and stopping a ConsensusService: restart, join or first peer; Raft's wiring; shutdown.

``start`` decides between three cases from ``storage/raft/``: a restart (``peers.json`` exists:
resume from the journal, ignore ``--bootstrap``, keep the peer id, and if ``--uri`` changed, propose
the new URI through consensus; with ``--reinit``, become the sole member of a new cluster), a join
(``--bootstrap``: see :mod:`membership`), or the first peer of a new cluster (a single-member Raft
that elects itself). Then it wires the Raft node: its links on the p2p port, the apply bridge to
the loop (``service_apply.py``), the reactor and the proposer; and starts the background task that
lists this peer in the state under its current URI (``service_members.py``).

Threads: pysyncobj runs on its own thread; its status-change hook is posted to the loop, and
``stop`` joins that thread off the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from qcluster.consensus.bridge import ApplyBridge, read_dump_file
from qcluster.consensus.identity import (
    PeerIdentity,
    load_identity,
    load_peers,
    new_peer_id,
    save_identity,
    save_peers,
)
from qcluster.consensus.membership import join_cluster
from qcluster.consensus.p2p_policy import check_p2p_security
from qcluster.consensus.proposer import Proposer
from qcluster.consensus.raft import DUMP_FILE, MetadataRaft
from qcluster.consensus.reinit import reinit_storage
from qcluster.consensus.service_status import log_status_change
from qcluster.consensus.transport import RaftLinks
from qcluster.errors import BadInputError, CorruptedStorageError, QClusterError
from qcluster.logging import get_logger
from qcluster.p2p.channels import make_uri, parse_uri

if TYPE_CHECKING:
    from qcluster.consensus.service import ConsensusService

log = get_logger(__name__)


class Lifecycle:
    def __init__(self, service: ConsensusService) -> None:
        self.service = service
        self._tasks: set[asyncio.Task[Any]] = set()

    async def start(
        self, *, p2p_port: int, uri: str | None, bootstrap: str | None, reinit: bool, timeout: float
    ) -> None:
        """Steps: check the secret; load or create the identity; join when new and bootstrapping;
        start Raft; make sure the state lists this peer under its current URI (background).
        Cancellation: stops whatever was started (call ``stop``)."""
        svc = self.service
        raft_dir = svc.raft_dir
        check_p2p_security(svc.settings, ("uri", uri), ("bootstrap", bootstrap))
        if uri is not None:
            parse_uri(uri, "uri")
        if bootstrap is not None:
            parse_uri(bootstrap, "bootstrap")
        raft_dir.mkdir(parents=True, exist_ok=True)
        identity = load_identity(raft_dir)
        members = load_peers(raft_dir)
        peer_id = identity.peer_id if identity is not None else new_peer_id()
        if members is not None and identity is None:
            raise CorruptedStorageError(f"{raft_dir} has a peer list but no peer identity (peer.json)")
        if members is not None and identity is not None:  # restart
            if bootstrap is not None:
                log.info("restart: stored cluster state found, --bootstrap ignored", bootstrap=bootstrap)
            my_uri = uri or identity.uri
            if reinit:
                reinit_storage(raft_dir, peer_id, my_uri)
                members = {peer_id: my_uri}
                save_peers(raft_dir, members)
        elif reinit:
            raise BadInputError("--reinit needs the storage of a peer that was part of a cluster", "reinit")
        elif bootstrap is not None:  # join
            save_identity(raft_dir, PeerIdentity(peer_id, uri or ""))
            log.info("joining cluster", bootstrap=bootstrap, peer_id=peer_id, uri=uri)
            answer = await join_cluster(svc.pool, bootstrap, peer_id, uri, p2p_port, timeout)
            my_uri = answer.uri
            members = answer.peers
            save_peers(raft_dir, members)
        else:  # first peer of a new cluster
            if uri is None:
                log.warning(
                    "no --uri given for the first peer; other peers will use 127.0.0.1", port=p2p_port
                )
            my_uri = uri or make_uri("127.0.0.1", p2p_port)
            members = {peer_id: my_uri}
            save_peers(raft_dir, members)
        check_p2p_security(svc.settings, ("uri", my_uri), warn=False)  # the stored URI, on restart
        save_identity(raft_dir, PeerIdentity(peer_id, my_uri))
        if (raft_dir / DUMP_FILE).exists():
            read_dump_file(raft_dir / DUMP_FILE)  # refuse to start on a damaged snapshot
        svc.peer_id, svc.uri = peer_id, my_uri
        self._start_raft(members)
        svc.running = True
        self._spawn(svc.members.register_self(), "consensus-register-self")
        log.info("consensus started", peer_id=peer_id, uri=my_uri, members=sorted(members))

    def _start_raft(self, members: dict[int, str]) -> None:
        svc = self.service
        loop = asyncio.get_running_loop()
        links = svc.links = RaftLinks(loop, svc.pool, svc.peer_id, svc.uri)
        for pid, addr in members.items():
            if pid != svc.peer_id:
                links.set_address(pid, addr)
        svc.bridge = ApplyBridge(loop, svc.applier.on_apply, svc.applier.on_snapshot)
        svc.reactor.start()
        raft = svc.raft = MetadataRaft(
            svc.peer_id,
            [p for p in members if p != svc.peer_id],
            svc.raft_dir,
            svc.tuning,
            svc.bridge,
            links,
            on_status_change=lambda old, new: self._post(loop, log_status_change, old, new),
        )
        svc.proposer = Proposer(loop, raft.submit, lambda: raft.status)

    @staticmethod
    def _post(loop: asyncio.AbstractEventLoop, func: Any, *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # loop closed
            loop.call_soon_threadsafe(func, *args)

    async def stop(self) -> None:
        """Stop Raft (its thread is joined off the loop), the links, the reactor; fail waiters."""
        svc = self.service
        svc.running = False
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, QClusterError):
                await task
        if svc.proposer is not None:
            svc.proposer.close()
        if svc.raft is not None:
            await asyncio.to_thread(svc.raft.stop_and_join)
        if svc.links is not None:
            await svc.links.close()
        await svc.reactor.stop()
        if svc.own_pool:
            await svc.pool.close()
        log.info("consensus stopped", peer_id=svc.peer_id)

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
