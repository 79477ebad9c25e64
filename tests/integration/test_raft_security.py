"""The p2p port refuses strangers: no secret, no service; pickles are never unpickled."""

from __future__ import annotations

import asyncio
import struct
import zlib
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import grpc.aio
import pytest

from qcluster.consensus import operations as ops
from qcluster.consensus.service import ConsensusService
from qcluster.errors import BadInputError, UnauthorizedError
from qcluster.p2p.channels import PEER_ID_HEADER, PEER_URI_HEADER, SECRET_HEADER
from qcluster.proto_gen.v1 import cluster_pb2 as pb
from qcluster.settings import ClusterSettings
from qcluster.testing.consensus_cluster import DEFAULT_SECRET, ConsensusCluster, eventually


def evil_pickle(canary: Path) -> bytes:
    """A protocol-0 pickle that runs ``os.system("touch <canary>")`` when unpickled."""
    return b"cos\nsystem\n(S'touch " + str(canary).encode() + b"'\ntR."


def pysyncobj_frame(payload: bytes) -> bytes:
    """How pysyncobj's own TCP transport frames a message: length + zlib(pickle)."""
    body = zlib.compress(payload)
    return struct.pack("i", len(body)) + body


async def health(port: int, metadata: tuple[tuple[str, str], ...]) -> pb.HealthResponse:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(
            "/qcluster.v1.Cluster/Health",
            request_serializer=pb.HealthRequest.SerializeToString,
            response_deserializer=pb.HealthResponse.FromString,
        )
        return await call(pb.HealthRequest(), metadata=metadata, timeout=5)  # type: ignore[no-any-return]


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[ConsensusCluster]:
    c = ConsensusCluster(tmp_path / "cluster")
    yield c
    await c.close()


async def test_calls_without_the_secret_are_unauthenticated(cluster: ConsensusCluster) -> None:
    (peer,) = await cluster.start(1)
    ok = await health(peer.port, ((SECRET_HEADER, DEFAULT_SECRET),))
    assert ok.peer_id == peer.peer_id and ok.role == "Leader"
    for metadata in ((), ((SECRET_HEADER, "wrong"),), ((SECRET_HEADER, DEFAULT_SECRET + "x"),)):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await health(peer.port, metadata)
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    # the streaming Raft RPC and Join are refused the same way
    async with grpc.aio.insecure_channel(f"127.0.0.1:{peer.port}") as channel:
        stream = channel.stream_stream(
            "/qcluster.v1.Cluster/RaftStream",
            request_serializer=pb.RaftFrame.SerializeToString,
            response_deserializer=pb.RaftHello.FromString,
        )(metadata=((PEER_ID_HEADER, "1"),))
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stream.read()
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        join = channel.unary_unary(
            "/qcluster.v1.Cluster/Join",
            request_serializer=pb.JoinRequest.SerializeToString,
            response_deserializer=pb.JoinResponse.FromString,
        )
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await join(pb.JoinRequest(peer_id=5, uri="http://127.0.0.1:1"), timeout=5)
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert list(peer.service.state.peers) == [peer.peer_id]


async def test_joining_with_a_wrong_secret_fails(cluster: ConsensusCluster, tmp_path: Path) -> None:
    (peer,) = await cluster.start(1)
    stranger = ConsensusService(ClusterSettings(enabled=True, secret="not-it"), tmp_path / "stranger")
    with pytest.raises(UnauthorizedError, match="cluster secret"):
        await stranger.start(p2p_port=1, uri="http://127.0.0.1:1", bootstrap=peer.uri, timeout=5)
    await stranger.stop()
    assert list(peer.service.state.peers) == [peer.peer_id]


async def test_cluster_mode_off_loopback_needs_a_secret_unless_insecure_is_allowed(tmp_path: Path) -> None:
    service = ConsensusService(ClusterSettings(enabled=True), tmp_path / "a")
    for args in (
        {"uri": "http://10.1.2.3:1"},
        {"uri": "http://127.0.0.1:1", "bootstrap": "http://node-0:6335"},
    ):
        with pytest.raises(BadInputError) as info:
            await service.start(p2p_port=1, **args)
        assert info.value.field == "cluster.secret" and "loopback" in info.value.message
    insecure = ConsensusCluster(tmp_path / "b", secret=None)
    try:
        (peer,) = await insecure.start(1)
        await peer.service.propose(ops.set_metadata("open", True))
        assert (await health(peer.port, ())).peer_id == peer.peer_id
    finally:
        await insecure.close()


async def test_raw_pickles_on_the_p2p_port_do_nothing(cluster: ConsensusCluster, tmp_path: Path) -> None:
    peers = await cluster.start(2)
    canary = tmp_path / "pwned"
    payloads = [
        evil_pickle(canary),
        pysyncobj_frame(evil_pickle(canary)),
        # an HTTP/2 preface followed by a pickle where a frame should be
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + evil_pickle(canary),
        b"\x80\x02" + evil_pickle(canary) * 50,
    ]
    for payload in payloads:
        reader, writer = await asyncio.open_connection("127.0.0.1", peers[0].port)
        writer.write(payload)
        await writer.drain()
        await asyncio.wait_for(reader.read(65536), 5)  # gRPC answers with an error / closes
        writer.close()
        await writer.wait_closed()
    # still alive, still a cluster, nothing executed
    assert (await health(peers[0].port, ((SECRET_HEADER, DEFAULT_SECRET),))).peer_id == peers[0].peer_id
    await peers[1].service.propose(ops.set_metadata("after", "raw"))
    await cluster.wait_converged()
    assert not canary.exists()


async def test_pickles_inside_an_authenticated_raft_stream_are_dropped(
    cluster: ConsensusCluster, tmp_path: Path
) -> None:
    a, b = await cluster.start(2)
    canary = tmp_path / "pwned-raft"
    async with grpc.aio.insecure_channel(f"127.0.0.1:{a.port}") as channel:
        # claim to be b (a member), with the right secret: frames reach the Raft decoder
        stream = channel.stream_stream(
            "/qcluster.v1.Cluster/RaftStream",
            request_serializer=pb.RaftFrame.SerializeToString,
            response_deserializer=pb.RaftHello.FromString,
        )(
            metadata=(
                (SECRET_HEADER, DEFAULT_SECRET),
                (PEER_ID_HEADER, str(b.peer_id)),
                (PEER_URI_HEADER, b.uri),
            )
        )
        hello = await stream.read()
        assert hello.peer_id == a.peer_id
        for payload in (
            evil_pickle(canary),
            zlib.compress(evil_pickle(canary)),
            b"Q\x01" + evil_pickle(canary),
        ):
            await stream.write(pb.RaftFrame(payload=payload))
        await stream.done_writing()
    await a.service.propose(ops.set_metadata("still", "working"))
    await cluster.wait_converged()
    await eventually(lambda: a.service.raft_status().has_quorum, 5, "quorum kept")
    assert not canary.exists()
