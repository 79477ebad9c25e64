"""Servicer of ``qcluster.v1.PointsInternal`` (proto/qcluster/v1/points_internal.proto): operations
on this peer's replica of one shard, and coordinated writes for the shards this peer leads.

It only translates between protobuf and the shard layer (:mod:`qcluster.shards.remote_codec`), and
between the error tree and gRPC status codes. A call for a shard this peer holds no replica of is
UNAVAILABLE (the caller's replica set treats it as a failed replica, not as a wrong request).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import grpc
import grpc.aio
import orjson

from qcluster import deadline
from qcluster.errors import ShardUnknownError, TransientError
from qcluster.logging import get_logger
from qcluster.p2p.status import guarded
from qcluster.proto_gen.v1 import points_internal_pb2 as pb
from qcluster.shards import remote_codec as codec
from qcluster.shards.base import CountRequest, ShardOperation
from qcluster.shards.operations import decode_operation
from qcluster.shards.replica_env import Ordering
from qcluster.shards.replica_set import ReplicaSet
from qcluster.types import ReplicaState

log = get_logger(__name__)

SERVICE_NAME = "qcluster.v1.PointsInternal"
ORDERINGS: dict[str, Ordering] = {"weak": "weak", "medium": "medium", "strong": "strong"}
REFUSING = frozenset({ReplicaState.PARTIAL, ReplicaState.DEAD})


class ShardBackend(Protocol):
    def replica_set(self, collection: str, shard_id: int) -> ReplicaSet | None:
        """The replica set of ``shard_id``, None when this peer does not know the shard."""
        ...


def _serialize(message: Any) -> bytes:
    return message.SerializeToString()  # type: ignore[no-any-return]


class PointsInternalServicer:
    def __init__(self, backend: ShardBackend, peer_id: Callable[[], int]) -> None:
        self._backend = backend
        self._peer_id = peer_id

    def register(self, server: grpc.aio.Server) -> None:
        methods: dict[str, tuple[Callable[..., Awaitable[Any]], Any]] = {
            "Update": (self.Update, pb.UpdateShardRequest),
            "Search": (self.Search, pb.SearchShardRequest),
            "Scroll": (self.Scroll, pb.ScrollShardRequest),
            "Count": (self.Count, pb.CountShardRequest),
            "Retrieve": (self.Retrieve, pb.RetrieveShardRequest),
            "Facet": (self.Facet, pb.FacetShardRequest),
            "Info": (self.Info, pb.ShardInfoRequest),
            "ClockMap": (self.ClockMap, pb.ShardInfoRequest),
        }
        handlers = {
            name: grpc.unary_unary_rpc_method_handler(
                guarded(fn, "points_internal", caller_deadline=True),
                request_deserializer=msg.FromString,
                response_serializer=_serialize,
            )
            for name, (fn, msg) in methods.items()
        }
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),))

    # ------------------------------------------------------------------ lookup
    def _set(self, ref: pb.ShardRef) -> ReplicaSet:
        rs = self._backend.replica_set(ref.collection, ref.shard_id)
        if rs is None:
            raise ShardUnknownError(
                f"peer {self._peer_id()} does not know shard {ref.shard_id} of collection `{ref.collection}`"
            )
        return rs

    def _local(self, ref: pb.ShardRef) -> ShardOperation:
        rs = self._set(ref)
        if rs.local is None:
            raise TransientError(
                f"peer {self._peer_id()} holds no replica of shard {ref.shard_id} of `{ref.collection}`"
            )
        return rs.local

    # ------------------------------------------------------------------ methods
    async def Update(self, request: pb.UpdateShardRequest) -> pb.UpdateShardResponse:
        op = decode_operation(request.operation)
        if request.coordinate:
            ordering = ORDERINGS.get(request.ordering, "weak")
            result = await self._set(request.shard).update(op, request.wait, ordering, forwarded=True)
        else:
            # A send that arrives after its coordinator gave up on it (a paused peer, a slow
            # link) is refused: the coordinator settles such writes by reading which replicas
            # applied them (qcluster/shards/unsettled.py), and a late apply would undo that.
            deadline.check()
            self._local(request.shard)  # this peer must hold a replica
            rs = self._set(request.shard)
            mine = rs.states.get(self._peer_id())
            if not request.forwarded and mine in REFUSING:
                # A coordinator with a stale view: this replica is fed by its transfer (or will
                # be recovered); a direct write could land out of the source's order.
                raise TransientError(
                    f"the replica of shard {request.shard.shard_id} on peer {self._peer_id()} is {mine}; "
                    "it takes writes only through its transfer"
                )
            writer = rs.local_writer()
            result = await writer.update(op, request.wait, codec.tag_in(request))
        return pb.UpdateShardResponse(operation_id=result.operation_id, status=result.status)

    async def Search(self, request: pb.SearchShardRequest) -> pb.SearchShardResponse:
        shard = self._local(request.shard)
        results = await shard.search([codec.search_in(q) for q in request.queries])
        return pb.SearchShardResponse(results=[codec.scored_out(r) for r in results])

    async def Scroll(self, request: pb.ScrollShardRequest) -> pb.ScrollShardResponse:
        result = await self._local(request.shard).scroll(codec.scroll_in(request))
        return codec.scroll_result_out(result)

    async def Count(self, request: pb.CountShardRequest) -> pb.CountShardResponse:
        req = CountRequest(filter=codec.filter_in(request.filter_json), exact=request.exact)
        return pb.CountShardResponse(count=await self._local(request.shard).count(req))

    async def Retrieve(self, request: pb.RetrieveShardRequest) -> pb.RetrieveShardResponse:
        records = await self._local(request.shard).retrieve(
            [codec.point_id_in(i) for i in request.ids],
            codec.payload_selector_in(request.with_payload),
            codec.vector_selector_in(request.with_vector),
        )
        return pb.RetrieveShardResponse(points=codec.records_out(records))

    async def Facet(self, request: pb.FacetShardRequest) -> pb.FacetShardResponse:
        hits = await self._local(request.shard).facet(
            request.key, codec.filter_in(request.filter_json), int(request.limit), request.exact
        )
        return pb.FacetShardResponse(hits_json=orjson.dumps([[v, c] for v, c in hits]))

    async def Info(self, request: pb.ShardInfoRequest) -> pb.ShardInfoResponse:
        return codec.info_out(await self._local(request.shard).info())

    async def ClockMap(self, request: pb.ShardInfoRequest) -> pb.ClockMapResponse:
        rs = self._set(request.shard)
        if rs.local is None:
            raise TransientError(f"peer {self._peer_id()} holds no replica of shard {request.shard.shard_id}")
        return codec.clocks_out(await rs.local.replay.clock_map())
