"""The p2p gRPC server (port 6335): one ``grpc.aio`` server on the node's loop for every peer API.

Usage (node.py)::

    server = P2pServer(host, settings.cluster.p2p.port, secret=settings.cluster.secret)
    ClusterServicer(consensus).register(server.grpc)   # and later points_internal, transfer
    await server.start()        # before consensus.start(): Raft traffic arrives on this port
    ...
    await server.stop()

With a secret, every call goes through :class:`SecretAuthInterceptor`; without one (only with
``cluster.allow_insecure_p2p``) anyone who reaches the port is a peer. Raw bytes that are not
HTTP/2 gRPC are dropped by gRPC's transport before any of our code runs.
"""

from __future__ import annotations

import grpc
import grpc.aio

from qcluster.api.grpc.auth import SecretAuthInterceptor
from qcluster.errors import StorageError
from qcluster.logging import get_logger
from qcluster.p2p.channels import MAX_MESSAGE_BYTES
from qcluster.p2p.tls import P2pTls

log = get_logger(__name__)

SERVER_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
    ("grpc.http2.max_ping_strikes", 0),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.so_reuseport", 0),
)


class P2pServer:
    def __init__(self, host: str, port: int, secret: str | None, tls: P2pTls | None = None) -> None:
        interceptors = [SecretAuthInterceptor(secret)] if secret is not None else []
        self.grpc: grpc.aio.Server = grpc.aio.server(interceptors=interceptors, options=SERVER_OPTIONS)
        self._host = host
        self._requested_port = port
        self._tls = tls
        self.port: int | None = None

    async def start(self) -> int:
        """Bind and serve; returns the bound port (useful with port 0)."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        try:
            address = f"{host}:{self._requested_port}"
            if self._tls is not None:
                port = self.grpc.add_secure_port(address, self._tls.server_credentials())
            else:
                port = self.grpc.add_insecure_port(address)
        except RuntimeError as exc:
            raise StorageError(f"cannot bind the p2p port {host}:{self._requested_port}: {exc}") from exc
        if port == 0:
            raise StorageError(f"cannot bind the p2p port {host}:{self._requested_port}")
        await self.grpc.start()
        self.port = port
        log.info("p2p server listening", host=self._host, port=port, tls=self._tls is not None)
        return int(port)

    async def stop(self, grace: float = 0.5) -> None:
        await self.grpc.stop(grace)
