"""``qdrant.Qdrant``: the health check qdrant-client calls for ``info()`` (open without a key)."""

from __future__ import annotations

import qcluster
from qcluster.api.public_grpc.edge import Services, rpc
from qcluster.api.public_grpc.wire import pb, qdrant_pb2_grpc

TITLE = "qdrant - vector search engine"


class QdrantService(qdrant_pb2_grpc.QdrantServicer):
    def __init__(self, services: Services) -> None:
        self.services = services

    @rpc("Qdrant")
    async def HealthCheck(self, request: pb.HealthCheckRequest) -> pb.HealthCheckReply:
        return pb.HealthCheckReply(title=TITLE, version=qcluster.QDRANT_COMPAT_VERSION)
