"""Joining a cluster (client side) and making a peer a Raft member (server side).

Join, as seen from the new peer P and the member B it bootstraps from::

    P: id = peer.json or new random id; save peer.json        (a retry keeps the id)
    P ──Join(id, uri | p2p_port)──▶ B   (retried while B is unreachable or has no quorum)
    B: propose AddPeer(id, uri)     ── committed: every member learns P's address first
    B: addNodeToCluster(id)         ── pysyncobj forwards it to the leader; retried until P is
                                       a member (a member already: done)
    B ──JoinResponse(id, uri, peers, leader)──▶ P
    P: save peers.json; start Raft with the members; the leader streams it the log
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import grpc.aio

from qcluster.consensus.info import JoinAnswer, RaftStatus
from qcluster.consensus.raft import FAIL_NAMES, SUCCESS
from qcluster.errors import TimeoutError_, is_transient
from qcluster.logging import get_logger
from qcluster.p2p.channels import ChannelPool
from qcluster.p2p.status import error_from_rpc
from qcluster.proto_gen.v1 import cluster_pb2 as pb

log = get_logger(__name__)

JOIN_METHOD = "/qcluster.v1.Cluster/Join"
JOIN_RPC_TIMEOUT = 10.0
RETRY_DELAY = 0.2


async def join_cluster(
    pool: ChannelPool, bootstrap: str, peer_id: int, uri: str | None, p2p_port: int, timeout: float
) -> JoinAnswer:
    """Ask ``bootstrap`` to admit this peer; retries transient failures until ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    request = pb.JoinRequest(peer_id=peer_id, uri=uri or "", p2p_port=p2p_port)
    last = "no attempt"
    while True:
        method = pool.channel(bootstrap).unary_unary(
            JOIN_METHOD,
            request_serializer=pb.JoinRequest.SerializeToString,
            response_deserializer=pb.JoinResponse.FromString,
        )
        remaining = deadline - loop.time()
        try:
            reply = await method(
                request, metadata=pool.metadata(), timeout=max(min(JOIN_RPC_TIMEOUT, remaining), 0.1)
            )
        except grpc.aio.AioRpcError as exc:
            err = error_from_rpc(exc, f"join via {bootstrap}")
            if not is_transient(err):
                raise err from exc
            last = err.message
        else:
            return JoinAnswer(
                reply.peer_id,
                reply.uri,
                {p.peer_id: p.uri for p in reply.peers},
                reply.leader_peer_id or None,
            )
        if loop.time() + RETRY_DELAY >= deadline:
            raise TimeoutError_(f"could not join the cluster via {bootstrap} within {timeout:g}s: {last}")
        log.info("join attempt failed; retrying", bootstrap=bootstrap, error=last)
        await asyncio.sleep(RETRY_DELAY)


async def ensure_raft_member(
    change: Callable[[int, Callable[[Any, int], None]], None],
    status: Callable[[], RaftStatus],
    peer_id: int,
    present: bool,
    timeout: float,
) -> None:
    """Add (``present``) or remove a Raft member through pysyncobj until this peer sees it so.

    Done as soon as this peer's membership view shows the change (a configuration takes effect
    when appended, as in Raft's single-server changes): adding the second member cannot commit
    before the new peer runs, and it only starts once its join is answered. pysyncobj denies a
    change while another is uncommitted or the leader's first entry of its term is not committed
    yet, so denials are retried."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last = "no attempt"

    def done() -> bool:
        return (peer_id in status().members) == present

    while not done():
        if loop.time() >= deadline:
            what = "add" if present else "remove"
            raise TimeoutError_(f"could not {what} raft member {peer_id} within {timeout:g}s (last: {last})")
        answer: asyncio.Future[int] = loop.create_future()

        def settle(code: int, answer: asyncio.Future[int] = answer) -> None:
            if not answer.done():
                answer.set_result(code)

        def callback(result: Any, error: int, settle: Callable[[int], None] = settle) -> None:  # raft thread
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(settle, int(error))

        change(peer_id, callback)
        retry_at = min(deadline, loop.time() + 1.0)
        while not done() and loop.time() < retry_at:
            if answer.done() and answer.result() != SUCCESS:
                last = FAIL_NAMES.get(answer.result(), f"failure {answer.result()}")
                await asyncio.sleep(RETRY_DELAY)
                break
            await asyncio.sleep(0.01)
        else:
            if not done():
                last = "committed, not yet visible here" if answer.done() else "no answer"


async def remove_raft_member(
    raft: Any, peer_id: int, timeout: float, step_down: Callable[[], Awaitable[None]], quiet: float
) -> None:
    """Remove ``peer_id`` from Raft. pysyncobj's leader refuses to remove itself, so while the
    peer leads it is first asked to hand leadership over (``step_down``: it goes quiet until another
    peer is elected), then removed by the new leader; repeated if it wins the election again."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        remaining = deadline - loop.time()
        if raft.status.leader == peer_id:
            log.info("asking the leader to step down before its removal", peer=peer_id)
            await step_down()
            while raft.status.leader in (peer_id, None) and loop.time() < deadline:
                await asyncio.sleep(0.02)
        try:
            await ensure_raft_member(
                raft.remove_member, lambda: raft.status, peer_id, False, max(0.1, min(remaining, 2 * quiet))
            )
            return
        except TimeoutError_:
            if loop.time() >= deadline:
                raise
