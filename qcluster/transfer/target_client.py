"""The source's calls to the target of a transfer (``qcluster.v1.Transfer`` on the target peer)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import grpc
import grpc.aio

from qcluster.consensus.operations import TransferRef
from qcluster.errors import StorageError
from qcluster.p2p.channels import ChannelPool
from qcluster.p2p.status import error_from_rpc
from qcluster.proto_gen.v1 import points_internal_pb2 as ppb
from qcluster.proto_gen.v1 import transfer_pb2 as pb
from qcluster.shards import remote_codec as codec
from qcluster.shards.clock import ClockMap
from qcluster.shards.remote_shard import RemoteShard

SERVICE = "qcluster.v1.Transfer"
CHUNK = 1 << 20


def _serialize(message: Any) -> bytes:
    return message.SerializeToString()  # type: ignore[no-any-return]


class TargetClient:
    def __init__(self, ref: TransferRef, address: Callable[[], str], pool: ChannelPool, timeout: float):
        self.ref = ref
        self._address = address
        self._pool = pool
        self._timeout = timeout
        self._shard = ppb.ShardRef(collection=ref.collection, shard_id=ref.shard_id)
        self.replica = RemoteShard(ref.collection, ref.shard_id, ref.to_peer, address, pool, timeout)

    async def _unary(self, method: str, request: Any, reply: Any) -> Any:
        rpc = self._pool.channel(self._address()).unary_unary(
            f"/{SERVICE}/{method}", request_serializer=_serialize, response_deserializer=reply.FromString
        )
        try:
            return await rpc(request, timeout=self._timeout, metadata=self._pool.metadata())
        except grpc.aio.AioRpcError as exc:
            if exc.code() is grpc.StatusCode.FAILED_PRECONDITION:
                raise StorageError(f"target peer {self.ref.to_peer} refused: {exc.details()}") from exc
            raise error_from_rpc(exc, f"{method} on target peer {self.ref.to_peer}") from exc

    async def prepare(self, reset: bool) -> int:
        request = pb.PrepareTargetRequest(shard=self._shard, reset=reset, from_peer_id=self.ref.from_peer)
        reply = await self._unary("PrepareTarget", request, pb.PrepareTargetResponse)
        return int(reply.points_count)

    async def apply(self, records: Sequence[bytes]) -> tuple[int, int]:
        """Apply records (WAL record encoding, tags inside) in order; (applied, skipped)."""
        request = pb.ApplyRecordsRequest(shard=self._shard, records=list(records))
        reply = await self._unary("ApplyRecords", request, pb.ApplyRecordsResponse)
        return int(reply.applied), int(reply.skipped)

    async def merge_clocks(self, clocks: ClockMap) -> ClockMap:
        request = pb.MergeClocksRequest(
            shard=self._shard,
            clocks=[ppb.ClockTag(peer_id=t.peer_id, clock_id=t.clock_id, tick=t.tick) for t in clocks],
        )
        return codec.clocks_in(await self._unary("MergeClocks", request, ppb.ClockMapResponse))

    async def clock_map(self) -> ClockMap:
        return await self.replica.clock_map()

    async def send_snapshot(self, archive: Path, on_chunk: Callable[[int], None]) -> ClockMap:
        """Stream ``archive`` in 1 MiB chunks; the target restores it and answers its clock map."""
        total = archive.stat().st_size
        shard = self._shard

        async def chunks() -> AsyncIterator[pb.SnapshotChunk]:
            with open(archive, "rb") as fh:
                first = True
                while True:
                    data = fh.read(CHUNK)
                    if not data and not first:
                        return
                    msg = pb.SnapshotChunk(data=data, total_bytes=total)
                    if first:
                        msg.shard.CopyFrom(shard)
                        first = False
                    yield msg
                    on_chunk(len(data))
                    if not data:
                        return

        rpc = self._pool.channel(self._address()).stream_unary(
            f"/{SERVICE}/ReceiveSnapshot",
            request_serializer=_serialize,
            response_deserializer=ppb.ClockMapResponse.FromString,
        )
        try:
            reply = await rpc(chunks(), timeout=max(self._timeout, 600.0), metadata=self._pool.metadata())
        except grpc.aio.AioRpcError as exc:
            if exc.code() is grpc.StatusCode.FAILED_PRECONDITION:
                raise StorageError(f"target peer {self.ref.to_peer} refused: {exc.details()}") from exc
            raise error_from_rpc(exc, f"snapshot to target peer {self.ref.to_peer}") from exc
        return codec.clocks_in(reply)
