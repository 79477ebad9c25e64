"""Servicer of ``qcluster.v1.Cluster`` (proto/qcluster/v1/cluster.proto): join, Raft stream, health,
wait-applied.

It only translates between protobuf and the :class:`ClusterBackend` it is given (the consensus
service), and between the error tree and gRPC status codes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

import grpc
import grpc.aio

from qcluster.consensus.info import JoinAnswer, RaftStatus
from qcluster.errors import BadInputError, QClusterError
from qcluster.logging import get_logger
from qcluster.p2p.channels import PEER_ID_HEADER, PEER_URI_HEADER, make_uri
from qcluster.p2p.status import status_for
from qcluster.proto_gen.v1 import cluster_pb2 as pb

log = get_logger(__name__)

SERVICE_NAME = "qcluster.v1.Cluster"
MAX_WAIT_MS = 600_000
MAX_QUIET_MS = 10_000


def _serialize(message: Any) -> bytes:
    return message.SerializeToString()  # type: ignore[no-any-return]


class ClusterBackend(Protocol):
    @property
    def peer_id(self) -> int: ...

    def raft_status(self) -> RaftStatus: ...

    def health(self) -> dict[str, Any]:
        """The ``HealthResponse`` fields."""
        ...

    async def wait_synced(self, index: int, timeout: float, collection: str, expect_absent: bool) -> None: ...

    def step_down(self, quiet: float) -> bool:
        """Hand leadership over when this peer leads; True when it did."""
        ...

    async def handle_join(self, peer_id: int, uri: str) -> JoinAnswer: ...

    def open_raft_inbound(self, sender_id: int, sender_uri: str) -> Callable[[bytes], None]:
        """Accept a Raft stream from ``sender_id``; the returned callable takes each payload.
        Raises a :class:`TransientError` while this peer cannot take Raft traffic."""
        ...


def _peer_host(context: grpc.aio.ServicerContext) -> str:
    """The caller's address from ``context.peer()`` (``ipv4:1.2.3.4:567`` / ``ipv6:[::1]:567``)."""
    peer = str(context.peer())
    kind, _, rest = peer.partition(":")
    if kind not in ("ipv4", "ipv6") or ":" not in rest:
        raise BadInputError(f"cannot infer the joining peer's address from {peer!r}; pass --uri", "uri")
    host = rest.rsplit(":", 1)[0]
    return host.strip("[]")


class ClusterServicer:
    def __init__(self, backend: ClusterBackend) -> None:
        self._backend = backend

    def register(self, server: grpc.aio.Server) -> None:
        """Add the ``qcluster.v1.Cluster`` methods to ``server`` (same wiring as the generated
        ``add_ClusterServicer_to_server``, spelled out so it is typed)."""
        handlers = {
            "Join": grpc.unary_unary_rpc_method_handler(
                self.Join, request_deserializer=pb.JoinRequest.FromString, response_serializer=_serialize
            ),
            "RaftStream": grpc.stream_stream_rpc_method_handler(
                self.RaftStream, request_deserializer=pb.RaftFrame.FromString, response_serializer=_serialize
            ),
            "Health": grpc.unary_unary_rpc_method_handler(
                self.Health, request_deserializer=pb.HealthRequest.FromString, response_serializer=_serialize
            ),
            "StepDown": grpc.unary_unary_rpc_method_handler(
                self.StepDown,
                request_deserializer=pb.StepDownRequest.FromString,
                response_serializer=_serialize,
            ),
            "WaitApplied": grpc.unary_unary_rpc_method_handler(
                self.WaitApplied,
                request_deserializer=pb.WaitAppliedRequest.FromString,
                response_serializer=_serialize,
            ),
        }
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),))

    async def Join(self, request: pb.JoinRequest, context: grpc.aio.ServicerContext) -> pb.JoinResponse:
        try:
            uri = request.uri
            if not uri:
                if not request.p2p_port:
                    raise BadInputError("either uri or p2p_port must be given", "uri")
                uri = make_uri(_peer_host(context), request.p2p_port)
            answer = await self._backend.handle_join(request.peer_id, uri)
        except QClusterError as exc:
            await context.abort(status_for(exc), exc.message)
            raise  # pragma: no cover - abort raises
        return pb.JoinResponse(
            peer_id=answer.peer_id,
            uri=answer.uri,
            peers=[pb.PeerInfo(peer_id=p, uri=u) for p, u in sorted(answer.peers.items())],
            leader_peer_id=answer.leader or 0,
        )

    async def RaftStream(
        self, request_iterator: AsyncIterator[pb.RaftFrame], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.RaftHello]:
        metadata = dict(context.invocation_metadata() or ())
        try:
            raw_id = metadata.get(PEER_ID_HEADER, "")
            if not (isinstance(raw_id, str) and raw_id.isdigit()):
                raise BadInputError(f"{PEER_ID_HEADER} metadata must be a peer id", PEER_ID_HEADER)
            uri = metadata.get(PEER_URI_HEADER, "")
            deliver = self._backend.open_raft_inbound(int(raw_id), uri if isinstance(uri, str) else "")
        except QClusterError as exc:
            await context.abort(status_for(exc), exc.message)
            raise  # pragma: no cover - abort raises
        yield pb.RaftHello(peer_id=self._backend.peer_id)
        async for frame in request_iterator:
            deliver(frame.payload)

    async def Health(self, request: pb.HealthRequest, context: Any) -> pb.HealthResponse:
        return pb.HealthResponse(**self._backend.health())

    async def WaitApplied(
        self, request: pb.WaitAppliedRequest, context: grpc.aio.ServicerContext
    ) -> pb.WaitAppliedResponse:
        timeout = min(max(request.timeout_ms, 1), MAX_WAIT_MS) / 1000
        try:
            await self._backend.wait_synced(request.index, timeout, request.collection, request.expect_absent)
        except QClusterError as exc:
            await context.abort(status_for(exc), exc.message)
            raise  # pragma: no cover - abort raises
        return pb.WaitAppliedResponse(peer_id=self._backend.peer_id, applied_index=request.index)

    async def StepDown(self, request: pb.StepDownRequest, context: Any) -> pb.StepDownResponse:
        quiet = min(max(request.quiet_ms, 100), MAX_QUIET_MS) / 1000
        return pb.StepDownResponse(was_leader=self._backend.step_down(quiet))
