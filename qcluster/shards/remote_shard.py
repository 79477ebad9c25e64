"""A replica of a shard on another peer, reached over the p2p port (``PointsInternal`` service).

It implements the same shard protocol as :class:`LocalShard` (``ShardOperation``): callers never
know which kind they hold. Every call goes through the peer channel pool (one channel per peer,
with the cluster secret in its metadata), carries a deadline, and turns a failed call into the
error tree (:func:`qcluster.p2p.status.error_from_rpc`): a peer that is down or slow is a
``TransientError``; a request the peer refused as wrong keeps its kind (bad input, not found).
The peer's address is looked up per call, so a peer that moved to a new URI is followed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import grpc
import grpc.aio
import orjson

from qcluster import deadline
from qcluster.errors import AlreadyExistsError, BadInputError, NotFoundError, QClusterError
from qcluster.p2p.channels import ChannelPool
from qcluster.p2p.status import error_from_rpc
from qcluster.proto_gen.v1 import points_internal_pb2 as pb
from qcluster.shards import remote_codec as codec
from qcluster.shards.base import (
    CountRequest,
    PayloadSelector,
    Record,
    ScoredPoint,
    ScrollRequest,
    ScrollResult,
    SearchRequest,
    ShardInfo,
    UpdateResult,
    VectorSelector,
)
from qcluster.shards.clock import ClockMap, ClockTag
from qcluster.shards.operations import UpdateOperation, encode_operation
from qcluster.types import PointId

R = TypeVar("R")
DEFAULT_TIMEOUT = 30.0
SERVICE = "qcluster.v1.PointsInternal"
_REPLIES: dict[str, Any] = {
    "Update": pb.UpdateShardResponse,
    "Search": pb.SearchShardResponse,
    "Scroll": pb.ScrollShardResponse,
    "Count": pb.CountShardResponse,
    "Retrieve": pb.RetrieveShardResponse,
    "Facet": pb.FacetShardResponse,
    "Info": pb.ShardInfoResponse,
    "ClockMap": pb.ClockMapResponse,
}
_REFUSALS: dict[grpc.StatusCode, type[QClusterError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: BadInputError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExistsError,
}


_READS = frozenset({"Search", "Scroll", "Count", "Retrieve", "Facet"})


class RemoteShard:
    def __init__(
        self,
        collection: str,
        shard_id: int,
        peer_id: int,
        address: Callable[[], str],
        pool: ChannelPool,
        timeout: float = DEFAULT_TIMEOUT,
    ):
        self.collection = collection
        self.shard_id = shard_id
        self.peer_id = peer_id
        self._address = address
        self._pool = pool
        self._timeout = timeout
        self._ref = pb.ShardRef(collection=collection, shard_id=shard_id)

    async def _call(self, method: str, request: Any, what: str) -> Any:
        reply_type = _REPLIES[method]
        try:
            rpc = self._pool.channel(self._address()).unary_unary(
                f"/{SERVICE}/{method}",
                request_serializer=_serialize,
                response_deserializer=reply_type.FromString,
            )
            timeout = self._timeout
            left = deadline.remaining() if method in _READS else None
            if left is not None:  # a read carries its request's deadline to the peer
                timeout = max(0.001, min(timeout, left))
            return await rpc(request, timeout=timeout, metadata=self._pool.metadata())
        except grpc.aio.AioRpcError as exc:
            if exc.code() in _REFUSALS:  # the request itself was wrong: the peer's words are the user's
                raise _REFUSALS[exc.code()](exc.details() or exc.code().name) from exc
            where = f"{what} on peer {self.peer_id} (shard {self.shard_id} of `{self.collection}`)"
            raise error_from_rpc(exc, where) from exc

    # ------------------------------------------------------------------ writes
    async def update(
        self, op: UpdateOperation, wait: bool = True, tag: ClockTag | None = None, *, forwarded: bool = False
    ) -> UpdateResult:
        """``forwarded``: sent by a transfer's source to its target (see the proto)."""
        request = pb.UpdateShardRequest(
            shard=self._ref, operation=encode_operation(op), wait=wait, forwarded=forwarded
        )
        clock = codec.tag_out(tag)
        if clock is not None:
            request.clock.CopyFrom(clock)
        reply = await self._call("Update", request, "update")
        return _update_result(reply)

    async def coordinate(self, op: UpdateOperation, wait: bool, ordering: str) -> UpdateResult:
        """Have this peer coordinate the write over every replica (it leads the shard)."""
        request = pb.UpdateShardRequest(
            shard=self._ref, operation=encode_operation(op), wait=wait, coordinate=True, ordering=ordering
        )
        return _update_result(await self._call("Update", request, "coordinated update"))

    # ------------------------------------------------------------------ reads
    async def search(self, requests: Sequence[SearchRequest]) -> list[list[ScoredPoint]]:
        request = pb.SearchShardRequest(shard=self._ref, queries=[codec.search_out(r) for r in requests])
        reply = await self._call("Search", request, "search")
        return [codec.scored_in(r) for r in reply.results]

    async def scroll(self, request: ScrollRequest) -> ScrollResult:
        reply = await self._call("Scroll", codec.scroll_out(self._ref, request), "scroll")
        return codec.scroll_result_in(reply)

    async def count(self, request: CountRequest) -> int:
        msg = pb.CountShardRequest(
            shard=self._ref, filter_json=codec.filter_out(request.filter), exact=request.exact
        )
        reply = await self._call("Count", msg, "count")
        return int(reply.count)

    async def retrieve(
        self, ids: Sequence[PointId], with_payload: PayloadSelector, with_vector: VectorSelector
    ) -> list[Record]:
        msg = pb.RetrieveShardRequest(
            shard=self._ref,
            ids=[codec.point_id_out(i) for i in ids],
            with_payload=codec.payload_selector_out(with_payload),
            with_vector=codec.vector_selector_out(with_vector),
        )
        reply = await self._call("Retrieve", msg, "retrieve")
        return codec.records_in(reply.points)

    async def facet(self, key: str, filter: Any, limit: int, exact: bool) -> list[tuple[Any, int]]:
        msg = pb.FacetShardRequest(
            shard=self._ref,
            key=key,
            filter_json=codec.filter_out(filter),
            limit=min(limit, 2**32 - 1),
            exact=exact,
        )
        reply = await self._call("Facet", msg, "facet")
        return [(value, int(count)) for value, count in orjson.loads(reply.hits_json)]

    async def info(self) -> ShardInfo:
        reply = await self._call("Info", pb.ShardInfoRequest(shard=self._ref), "info")
        return codec.info_in(reply)

    async def clock_map(self) -> ClockMap:
        reply = await self._call("ClockMap", pb.ShardInfoRequest(shard=self._ref), "clock map")
        return codec.clocks_in(reply)

    async def close(self) -> None:
        return None


def _serialize(message: Any) -> bytes:
    return message.SerializeToString()  # type: ignore[no-any-return]


def _update_result(reply: pb.UpdateShardResponse) -> UpdateResult:
    return UpdateResult(
        int(reply.operation_id), "completed" if reply.status == "completed" else "acknowledged"
    )
