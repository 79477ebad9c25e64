"""The public gRPC server (``service.grpc_port``, default 6334): Qdrant's ``qdrant.Qdrant``,
``qdrant.Collections``, ``qdrant.Points`` and ``qdrant.Snapshots`` services on one ``grpc.aio``
server on the node's event loop, beside REST.

Usage (node.py)::

    server = PublicGrpcServer(settings.service, settings.tls, services)
    await server.start()      # after storage is loaded: every call finds its collections
    ...
    await server.stop()

The wire contract is qdrant-client's generated modules (``qdrant_client.grpc``): messages and
servicer base classes. API keys (``auth.py``) and TLS (``service.enable_tls`` with ``tls.cert`` /
``tls.key``) follow the REST settings. Messages above ``service.max_request_size_mb`` are refused
by gRPC itself (RESOURCE_EXHAUSTED) before they are decoded. This is not the p2p server
(``api/grpc``): another port, another auth scheme.
"""

from __future__ import annotations

from typing import Any

import grpc
import grpc.aio

from qcluster.api.public_grpc.auth import ApiKeyInterceptor
from qcluster.api.public_grpc.collections import CollectionsService
from qcluster.api.public_grpc.edge import Services
from qcluster.api.public_grpc.points import PointsService
from qcluster.api.public_grpc.qdrant import QdrantService
from qcluster.api.public_grpc.snapshots import SnapshotsService
from qcluster.api.public_grpc.wire import (
    collections_service_pb2_grpc,
    points_service_pb2_grpc,
    qdrant_pb2_grpc,
    snapshots_service_pb2_grpc,
)
from qcluster.errors import StorageError
from qcluster.logging import get_logger
from qcluster.settings import ServiceSettings, TlsSettings

log = get_logger(__name__)
SEND_LIMIT = 256 * 1024 * 1024  # responses (scrolls with vectors) may be large


class PublicGrpcServer:
    def __init__(self, service: ServiceSettings, tls: TlsSettings, services: Services) -> None:
        interceptors = []
        if service.api_key is not None or service.read_only_api_key is not None:
            interceptors.append(ApiKeyInterceptor(service.api_key, service.read_only_api_key))
        options = (
            ("grpc.max_receive_message_length", service.max_request_size_mb * 1024 * 1024),
            ("grpc.max_send_message_length", SEND_LIMIT),
            ("grpc.so_reuseport", 0),
        )
        self.grpc: grpc.aio.Server = grpc.aio.server(interceptors=interceptors, options=options)
        # The generated registration functions are untyped: one typed loop over them.
        registrations: tuple[tuple[Any, Any], ...] = (
            (qdrant_pb2_grpc.add_QdrantServicer_to_server, QdrantService),
            (collections_service_pb2_grpc.add_CollectionsServicer_to_server, CollectionsService),
            (points_service_pb2_grpc.add_PointsServicer_to_server, PointsService),
            (snapshots_service_pb2_grpc.add_SnapshotsServicer_to_server, SnapshotsService),
        )
        for register, servicer in registrations:
            register(servicer(services), self.grpc)
        self._service = service
        self._tls = tls
        self.port: int | None = None

    def _credentials(self) -> grpc.ServerCredentials:
        cert, key = self._tls.cert, self._tls.key
        if cert is None or key is None:
            raise StorageError("service.enable_tls needs tls.cert and tls.key")
        return grpc.ssl_server_credentials([(key.read_bytes(), cert.read_bytes())])

    async def start(self) -> int:
        """Bind and serve; returns the bound port (useful with port 0). Raises StorageError when
        the port cannot be bound."""
        svc = self._service
        host = f"[{svc.host}]" if ":" in svc.host else svc.host
        address = f"{host}:{svc.grpc_port}"
        try:
            if svc.enable_tls:
                port = self.grpc.add_secure_port(address, self._credentials())
            else:
                port = self.grpc.add_insecure_port(address)
        except RuntimeError as exc:
            raise StorageError(f"cannot bind the gRPC port {address}: {exc}") from exc
        if port == 0:
            raise StorageError(f"cannot bind the gRPC port {address}")
        await self.grpc.start()
        self.port = int(port)
        log.info("public gRPC listening", host=svc.host, port=self.port, tls=svc.enable_tls)
        return self.port

    async def stop(self, grace: float = 1.0) -> None:
        await self.grpc.stop(grace)
