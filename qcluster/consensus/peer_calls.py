"""Client side of the ``Cluster`` calls one peer makes to the others after a metadata change:
``WaitApplied`` (has every peer concerned carried the change out?) and ``Health`` (for
``/cluster/telemetry``).

``wait_peers_synced`` is what makes a collection creation return only once every peer that must
hold a replica has created it: the proposer knows the Raft index the operation was applied at and
asks each of those peers, in parallel, to answer once it has applied that index and handled its
events. It raises one error naming every peer that did not confirm and why.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import grpc
import grpc.aio

from qcluster.errors import QClusterError, TimeoutError_
from qcluster.p2p.channels import ChannelPool
from qcluster.p2p.status import error_from_rpc
from qcluster.proto_gen.v1 import cluster_pb2 as pb

WAIT_METHOD = "/qcluster.v1.Cluster/WaitApplied"
HEALTH_METHOD = "/qcluster.v1.Cluster/Health"
STEP_DOWN_METHOD = "/qcluster.v1.Cluster/StepDown"
RPC_SLACK = 1.0  # the RPC deadline exceeds the server-side wait so the server's answer wins

LocalWait = Callable[[int, float, str, bool], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class SyncTarget:
    index: int
    collection: str = ""
    expect_absent: bool = False


async def wait_peers_synced(
    pool: ChannelPool,
    self_id: int,
    local_wait: LocalWait,
    peers: Mapping[int, str],
    target: SyncTarget,
    timeout: float,
    what: str,
) -> None:
    """Wait until every peer in ``peers`` (id -> p2p URI; this peer included or not) has applied
    ``target.index``; raise TimeoutError_ naming the laggards (the change itself is committed)."""

    async def one(pid: int, uri: str) -> None:
        if pid == self_id:
            await local_wait(target.index, timeout, target.collection, target.expect_absent)
            return
        method = pool.channel(uri).unary_unary(
            WAIT_METHOD,
            request_serializer=pb.WaitAppliedRequest.SerializeToString,
            response_deserializer=pb.WaitAppliedResponse.FromString,
        )
        request = pb.WaitAppliedRequest(
            index=target.index,
            timeout_ms=max(1, int(timeout * 1000)),
            collection=target.collection,
            expect_absent=target.expect_absent,
        )
        try:
            await method(request, metadata=pool.metadata(), timeout=timeout + RPC_SLACK)
        except grpc.aio.AioRpcError as exc:
            raise error_from_rpc(exc, f"peer {pid} ({uri})") from exc

    results = await asyncio.gather(*(one(p, u) for p, u in sorted(peers.items())), return_exceptions=True)
    failed = []
    for (pid, _uri), res in zip(sorted(peers.items()), results, strict=True):
        if isinstance(res, QClusterError):
            failed.append(f"peer {pid}: {res.message}")
        elif isinstance(res, BaseException):
            failed.append(f"peer {pid}: {res!r}")
    if failed:
        raise TimeoutError_(
            f"{what} was committed through consensus, but {len(failed)} of {len(peers)} peers did not "
            f"confirm it within {timeout:g}s: " + "; ".join(failed)
        )


HEALTH_FIELDS = (
    "peer_id",
    "term",
    "commit",
    "leader_peer_id",
    "role",
    "version",
    "is_voter",
    "pending_operations",
    "consensus_thread_status",
    "applied_index",
)


async def peer_health(pool: ChannelPool, uri: str, timeout: float) -> dict[str, Any] | None:
    """The peer's ``Health`` answer (the fields of ``HealthResponse``), or None when it does not
    answer within ``timeout``."""
    method = pool.channel(uri).unary_unary(
        HEALTH_METHOD,
        request_serializer=pb.HealthRequest.SerializeToString,
        response_deserializer=pb.HealthResponse.FromString,
    )
    try:
        reply: pb.HealthResponse = await method(pb.HealthRequest(), metadata=pool.metadata(), timeout=timeout)
    except grpc.aio.AioRpcError:
        return None
    return {name: getattr(reply, name) for name in HEALTH_FIELDS}


async def ask_step_down(pool: ChannelPool, peer_id: int, uri: str, quiet: float) -> bool:
    """Ask the leader at ``uri`` to hand leadership over; True when it was the leader."""
    method = pool.channel(uri).unary_unary(
        STEP_DOWN_METHOD,
        request_serializer=pb.StepDownRequest.SerializeToString,
        response_deserializer=pb.StepDownResponse.FromString,
    )
    try:
        reply: pb.StepDownResponse = await method(
            pb.StepDownRequest(quiet_ms=int(quiet * 1000)), metadata=pool.metadata(), timeout=5.0
        )
    except grpc.aio.AioRpcError as exc:
        raise error_from_rpc(exc, f"step down of peer {peer_id} ({uri})") from exc
    return bool(reply.was_leader)
