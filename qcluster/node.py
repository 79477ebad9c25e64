"""Composition root: builds the services of one peer from Settings and runs them.

Start order: REST listener (answers /healthz at once; /readyz turns 200 once storage is loaded)
-> storage (TOC loads collections, replaying WALs) -> public gRPC listener (``service.grpc_port``;
null disables it) -> consensus in cluster mode. Stop order is the reverse; SIGTERM / SIGINT
stop the peer cleanly (shards flush), and ``kill -9`` loses nothing acknowledged (WAL replay).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from qcluster.api.rest.app import CONSENSUS_KEY, METRICS_KEY, STATE_KEY, create_app
from qcluster.api.rest.quotas import QUOTAS_KEY
from qcluster.api.rest.snapshots import SNAPSHOTS_KEY
from qcluster.errors import StorageError
from qcluster.logging import get_logger
from qcluster.settings import Settings
from qcluster.toc import TableOfContents

log = get_logger(__name__)


# A send to a replica that has not landed after this long is refused at its deadline or goes to a
# replica slow enough to be worth rebuilding: the replica audit acts on a disagreement this old
# (plus one interval), so a coordinator killed mid-write is repaired within a chaos campaign's
# 30 s convergence window (quick seed 2126).
AUDIT_SEND_BOUND = 10.0


@dataclass(frozen=True)
class ClusterArgs:
    """The cluster flags of the command line (``--uri``, ``--bootstrap``, ``--reinit``)."""

    uri: str | None = None
    bootstrap: str | None = None
    reinit: bool = False


class Node:
    def __init__(self, settings: Settings, cluster_args: ClusterArgs | None = None):
        self.settings = settings
        self.cluster_args = cluster_args or ClusterArgs()
        self.toc = TableOfContents(settings.storage)
        self.app = create_app(self.toc, settings)
        self._runner: web.AppRunner | None = None
        self._stop = asyncio.Event()
        self.consensus: Any = None
        self._p2p: Any = None
        self._pool: Any = None
        self._sync: Any = None
        self._data_plane: Any = None
        self._transfers: Any = None
        self._watchdog: Any = None
        self._audit: Any = None
        self._transfer_targets: Any = None
        self._tls: Any = None
        self.public_grpc: Any = None

    @property
    def cluster_mode(self) -> bool:
        return self.settings.cluster.enabled or self.cluster_args.bootstrap is not None

    def _build_consensus(self) -> None:
        """Create (not start) the consensus service, so ``/cluster`` answers from the first
        moment the HTTP port is open (``consensus_thread_status: stopped`` until it runs)."""
        from qcluster.cluster.data_plane import ClusterDataPlane
        from qcluster.cluster.metadata_sync import MetadataSync
        from qcluster.cluster.replica_audit import ReplicaAudit
        from qcluster.cluster.transfer_target import TransferTargets
        from qcluster.consensus.service import ConsensusService
        from qcluster.p2p.channels import ChannelPool
        from qcluster.p2p.tls import P2pTls
        from qcluster.transfer.driver import TransferDriver
        from qcluster.transfer.recovery import RecoveryWatchdog

        cluster = self.settings.cluster
        self._tls = P2pTls.from_settings(self.settings)
        self._pool = ChannelPool(cluster.secret, self._tls)
        self._sync = MetadataSync(self.toc)
        self.consensus = ConsensusService(
            cluster,
            Path(self.settings.storage.storage_path),
            pool=self._pool,
            listener=self._sync,
            has_collection=self.toc.collections.__contains__,
        )
        self._sync.consensus = self.consensus
        timeout = cluster.grpc_timeout_ms / 1000
        self._data_plane = ClusterDataPlane(self.consensus, self._pool, timeout, cluster.write_persist_sec)
        self.toc.env = self._data_plane
        scratch = Path(self.settings.storage.storage_path) / "transfer-tmp"
        self._transfers = TransferDriver(self.toc, self.consensus, self._pool, timeout, scratch)
        perf = self.settings.storage.performance
        self._watchdog = RecoveryWatchdog(
            self.consensus, perf.incoming_shard_transfers_limit, perf.outgoing_shard_transfers_limit
        )
        self._sync.transfers = self._transfers
        self._transfers.after_transfer = self._sync.reconcile
        self._sync.watchdog = self._watchdog
        self._audit = ReplicaAudit(
            self.toc,
            lambda: self.consensus.peer_id,
            lambda: self.consensus.running and self.consensus.is_caught_up(),
            cluster.replica_audit_interval_sec,
            settle_after=min(timeout, AUDIT_SEND_BOUND) + cluster.replica_audit_interval_sec,
        )
        self._transfer_targets = TransferTargets(self.toc, self.consensus, self._transfers, scratch)
        self.app[CONSENSUS_KEY]["transfers"] = self._transfers
        # From the first request on, collection changes go through consensus (and fail with 503
        # until it runs), never to this peer alone.
        self.toc.metadata = self._sync
        self.app[CONSENSUS_KEY]["service"] = self.consensus
        self.app[CONSENSUS_KEY]["sync"] = self._sync

    async def _start_consensus(self) -> None:
        """p2p gRPC port first (Raft rides it), then the Raft node: restart, join or first peer.
        Without ``cluster.secret`` (and without ``allow_insecure_p2p``) the p2p port listens on
        127.0.0.1 only, so a local test cluster runs as Qdrant's harness starts it, and nothing
        off this machine can reach an unauthenticated peer port."""
        from qcluster.api.grpc.cluster import ClusterServicer
        from qcluster.api.grpc.points_internal import PointsInternalServicer
        from qcluster.api.grpc.server import P2pServer
        from qcluster.api.grpc.transfer import TransferServicer

        cluster = self.settings.cluster
        host = self.settings.service.host
        if not cluster.secret and not cluster.allow_insecure_p2p:
            host = "127.0.0.1"
        self._p2p = P2pServer(host, cluster.p2p.port, cluster.secret, self._tls)
        ClusterServicer(self.consensus).register(self._p2p.grpc)
        PointsInternalServicer(self.toc, lambda: self.consensus.peer_id).register(self._p2p.grpc)
        TransferServicer(self._transfer_targets).register(self._p2p.grpc)
        port = await self._p2p.start()
        args = self.cluster_args
        await self.consensus.start(p2p_port=port, uri=args.uri, bootstrap=args.bootstrap, reinit=args.reinit)
        log.info("cluster mode: consensus started", p2p_port=port, peer_id=self.consensus.peer_id)

    def _ssl(self) -> ssl.SSLContext | None:
        if not self.settings.service.enable_tls:
            return None
        tls = self.settings.tls
        if tls.cert is None or tls.key is None:
            raise SystemExit("service.enable_tls needs tls.cert and tls.key")
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(tls.cert), str(tls.key))
        return ctx

    async def _start_public_grpc(self) -> None:
        """Qdrant's gRPC services on ``service.grpc_port``. A port that cannot be bound is logged
        as an error and the peer serves REST alone (an operator sees it in the log and in
        ``grpc_port`` missing from the listening sockets), rather than not starting at all."""
        from qcluster.api.public_grpc.edge import Services
        from qcluster.api.public_grpc.server import PublicGrpcServer

        svc = self.settings.service
        if svc.grpc_port is None:
            log.info("public gRPC disabled (service.grpc_port is null)")
            return
        services = Services(
            toc=self.toc,
            metrics=self.app[METRICS_KEY],
            quotas=self.app[QUOTAS_KEY],
            snapshots=self.app[SNAPSHOTS_KEY],
            consensus=lambda: self.consensus,
            limits=svc.limits,
        )
        server = PublicGrpcServer(svc, self.settings.tls, services)
        try:
            await server.start()
        except StorageError as exc:
            log.error("public gRPC not started; serving REST only", error=exc.message, port=svc.grpc_port)
            await server.stop(0)
            return
        self.public_grpc = server

    async def start(self) -> None:
        svc = self.settings.service
        if self.cluster_mode:
            self._build_consensus()
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, svc.host, svc.http_port, ssl_context=self._ssl(), reuse_address=True)
        await site.start()
        log.info("REST listening", host=svc.host, port=svc.http_port, tls=svc.enable_tls)
        await self.toc.load()
        await self._start_public_grpc()
        if self.cluster_mode:
            await self._start_consensus()
            await self._sync.reconcile()
            if self.settings.cluster.auto_recovery:
                self._watchdog.start()
                self._audit.start()
        self.app[STATE_KEY]["ready"] = True
        log.info("peer ready", storage=str(self.settings.storage.storage_path))

    async def stop(self) -> None:
        if self.public_grpc is not None:
            await self.public_grpc.stop()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._watchdog is not None:
            await self._watchdog.close()
        if self._audit is not None:
            await self._audit.close()
        if self._transfers is not None:
            await self._transfers.close()
        if self._sync is not None:
            await self._sync.close()
        if self._data_plane is not None:
            await self._data_plane.close()
        if self.consensus is not None:
            await self.consensus.stop()
        if self._p2p is not None:
            await self._p2p.stop()
        if self._pool is not None:
            await self._pool.close()
        await self.toc.close()
        log.info("peer stopped")

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        # SIGTERM while starting (loading collections, joining a cluster that does not answer)
        # stops the peer at once instead of after the start completes.
        starting = asyncio.ensure_future(self.start())
        stopping = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if starting.done():
                starting.result()  # a failed start raises here
                await stopping
            else:
                log.info("stop requested while starting")
                starting.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await starting
        finally:
            stopping.cancel()
            await self.stop()
