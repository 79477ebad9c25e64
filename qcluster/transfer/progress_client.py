"""Asking a source peer for the progress of the transfers it sends (``Transfer.Progress``)."""

from __future__ import annotations

from typing import Any

import grpc
import grpc.aio

from qcluster.consensus.operations import TransferRef
from qcluster.errors import TransientError
from qcluster.p2p.channels import ChannelPool
from qcluster.proto_gen.v1 import transfer_pb2 as pb


def _serialize(message: Any) -> bytes:
    return message.SerializeToString()  # type: ignore[no-any-return]


async def fetch_progress(
    pool: ChannelPool, uri: str, collection: str, timeout: float
) -> dict[TransferRef, str]:
    """Transfer -> progress comment, for the transfers of ``collection`` the peer at ``uri`` sends."""
    if not uri:
        raise TransientError("unknown peer address")
    rpc = pool.channel(uri).unary_unary(
        "/qcluster.v1.Transfer/Progress",
        request_serializer=_serialize,
        response_deserializer=pb.ProgressResponse.FromString,
    )
    try:
        reply = await rpc(
            pb.ProgressRequest(collection=collection), timeout=timeout, metadata=pool.metadata()
        )
    except grpc.aio.AioRpcError as exc:
        raise TransientError(f"progress of {uri}: {exc.code().name}") from exc
    return {
        TransferRef(collection, int(t.shard_id), int(t.from_peer_id), int(t.to_peer_id)): t.comment
        for t in reply.transfers
    }
