"""Servicer of ``qcluster.v1.Transfer`` (proto/qcluster/v1/transfer.proto): the target side of shard
transfers, and the progress of the transfers this peer sends.

A call that would change a replica is refused (FAILED_PRECONDITION) unless the agreed state lists
this peer's replica of that shard as the ``Partial`` target of a running transfer from the calling
source, so no stray or late call can wipe or overwrite a replica that serves.
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

import grpc
import grpc.aio

from qcluster.errors import BadInputError, TransientError
from qcluster.logging import get_logger
from qcluster.p2p.status import guarded
from qcluster.proto_gen.v1 import points_internal_pb2 as ppb
from qcluster.proto_gen.v1 import transfer_pb2 as pb
from qcluster.shards import remote_codec as codec
from qcluster.shards.clock import ClockMap
from qcluster.shards.local_shard import LocalShard
from qcluster.shards.operations import decode_record
from qcluster.shards.shard_holder import ShardHolder
from qcluster.transfer.progress import TransferProgress

log = get_logger(__name__)
SERVICE_NAME = "qcluster.v1.Transfer"
MAX_SNAPSHOT_BYTES = 1 << 40


class TransferBackend(Protocol):
    def holder(self, collection: str) -> ShardHolder | None: ...

    def is_transfer_target(self, collection: str, shard_id: int, from_peer: int) -> bool:
        """This peer's replica of the shard is the Partial target of a transfer (from
        ``from_peer``, or from anyone when it is 0)."""
        ...

    def progress(self, collection: str) -> list[TransferProgress]: ...

    def scratch_dir(self) -> Path: ...


def _serialize(message: Any) -> bytes:
    return message.SerializeToString()  # type: ignore[no-any-return]


class TransferServicer:
    def __init__(self, backend: TransferBackend) -> None:
        self._backend = backend

    def register(self, server: grpc.aio.Server) -> None:
        unary: dict[str, tuple[Callable[[Any], Awaitable[Any]], Any]] = {
            "PrepareTarget": (self.PrepareTarget, pb.PrepareTargetRequest),
            "ApplyRecords": (self.ApplyRecords, pb.ApplyRecordsRequest),
            "MergeClocks": (self.MergeClocks, pb.MergeClocksRequest),
            "Progress": (self.Progress, pb.ProgressRequest),
        }
        handlers = {
            name: grpc.unary_unary_rpc_method_handler(
                guarded(fn, "transfer"), request_deserializer=msg.FromString, response_serializer=_serialize
            )
            for name, (fn, msg) in unary.items()
        }
        handlers["ReceiveSnapshot"] = grpc.stream_unary_rpc_method_handler(
            guarded(self.ReceiveSnapshot, "transfer"),
            request_deserializer=pb.SnapshotChunk.FromString,
            response_serializer=_serialize,
        )
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),))

    # ------------------------------------------------------------------ lookup
    def _target(self, ref: ppb.ShardRef, from_peer: int = 0) -> tuple[ShardHolder, int]:
        holder = self._backend.holder(ref.collection)
        if holder is None or ref.shard_id not in holder.sets:
            raise TransientError(f"this peer does not know shard {ref.shard_id} of `{ref.collection}` yet")
        if not self._backend.is_transfer_target(ref.collection, ref.shard_id, from_peer):
            # Transient: this peer may not have applied the transfer's start yet.
            raise TransientError(
                f"this peer's replica of shard {ref.shard_id} of `{ref.collection}` is not the target of a "
                "running transfer (yet)"
            )
        return holder, int(ref.shard_id)

    def _local(self, ref: ppb.ShardRef) -> LocalShard:
        holder, sid = self._target(ref)
        local = holder.sets[sid].local
        if local is None:
            raise TransientError(f"the target replica of shard {sid} is not open yet")
        return local

    # ------------------------------------------------------------------ methods
    async def PrepareTarget(self, request: pb.PrepareTargetRequest) -> pb.PrepareTargetResponse:
        holder, sid = self._target(request.shard, int(request.from_peer_id))
        if request.reset:
            local = await holder.reset_local(sid)
            log.info(
                "transfer target reset to an empty replica", collection=request.shard.collection, shard=sid
            )
        else:
            local = holder.sets[sid].local or await holder.reset_local(sid)
        return pb.PrepareTargetResponse(points_count=(await local.info()).points_count)

    async def ApplyRecords(self, request: pb.ApplyRecordsRequest) -> pb.ApplyRecordsResponse:
        local = self._local(request.shard)
        applied, skipped = await local.apply_records([decode_record(r) for r in request.records])
        return pb.ApplyRecordsResponse(applied=applied, skipped=skipped)

    async def ReceiveSnapshot(self, chunks: AsyncIterator[pb.SnapshotChunk]) -> ppb.ClockMapResponse:
        first: pb.SnapshotChunk | None = None
        received = 0
        with tempfile.TemporaryDirectory(dir=self._backend.scratch_dir(), prefix=".transfer-") as tmp:
            archive = Path(tmp) / "shard.tar"
            with open(archive, "wb") as fh:
                async for chunk in chunks:
                    if first is None:
                        first = chunk
                        self._target(chunk.shard)  # refuse before writing anything
                    received += len(chunk.data)
                    if received > MAX_SNAPSHOT_BYTES:
                        raise BadInputError("snapshot stream exceeds the size limit", "snapshot")
                    fh.write(chunk.data)
            if first is None:
                raise BadInputError("empty snapshot stream", "snapshot")
            if first.total_bytes and received != first.total_bytes:
                raise TransientError(f"snapshot stream ended after {received} of {first.total_bytes} bytes")
            holder, sid = self._target(first.shard)
            local = await holder.reset_local(sid, archive)
        log.info(
            "transfer target restored from a snapshot",
            collection=first.shard.collection,
            shard=sid,
            bytes=received,
            version=local.applied_version,
        )
        return codec.clocks_out(await local.replay.clock_map())

    async def MergeClocks(self, request: pb.MergeClocksRequest) -> ppb.ClockMapResponse:
        local = self._local(request.shard)
        merged = await local.replay.merge_clocks(
            ClockMap.from_json([[c.peer_id, c.clock_id, c.tick] for c in request.clocks])
        )
        await local.flush()
        return codec.clocks_out(merged)

    async def Progress(self, request: pb.ProgressRequest) -> pb.ProgressResponse:
        return pb.ProgressResponse(
            transfers=[
                pb.TransferProgress(
                    shard_id=p.ref.shard_id,
                    from_peer_id=p.ref.from_peer,
                    to_peer_id=p.ref.to_peer,
                    method=p.method,
                    stage=p.stage,
                    done=p.done,
                    total=p.total,
                    unit=p.unit,
                    rate_per_s=p.rate,
                    started_at=p.started_at,
                    comment=p.comment(),
                )
                for p in self._backend.progress(request.collection)
            ]
        )
