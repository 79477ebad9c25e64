"""TLS on the p2p port: three subprocess peers with certificates from one test CA form a cluster
and agree on a collection; plaintext and certificate-less clients get nowhere."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import grpc.aio
import pytest

from qcluster.proto_gen.v1 import cluster_pb2 as pb
from qcluster.testing.certs import ca_signed, have_openssl
from qcluster.testing.peer_cluster import PeerCluster, rest

SECRET = "tls-secret"


async def _health(target: str, creds: grpc.ChannelCredentials | None) -> grpc.StatusCode | None:
    channel = (
        grpc.aio.secure_channel(target, creds) if creds is not None else grpc.aio.insecure_channel(target)
    )
    try:
        call = channel.unary_unary(
            "/qcluster.v1.Cluster/Health",
            request_serializer=pb.HealthRequest.SerializeToString,
            response_deserializer=pb.HealthResponse.FromString,
        )
        await call(pb.HealthRequest(), metadata=(("x-qcluster-secret", SECRET),), timeout=3)
        return None
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    finally:
        await channel.close()


def test_peers_talk_tls_and_refuse_plaintext(tmp_path: Path) -> None:
    if not have_openssl():
        pytest.skip("openssl is not installed")
    ca, cert, key = ca_signed(tmp_path / "certs")
    cluster = PeerCluster(tmp_path, secret=SECRET)
    cluster.env.update(
        {
            "QDRANT__CLUSTER__P2P__ENABLE_TLS": "true",
            "QDRANT__TLS__CERT": str(cert),
            "QDRANT__TLS__KEY": str(key),
            "QDRANT__TLS__CA_CERT": str(ca),
        }
    )
    try:
        peers = cluster.start(3)
        status, body = rest(
            peers[2].url, "PUT", "/collections/secure", {"vectors": {"size": 2, "distance": "Dot"}}
        )
        assert status == 200, body
        for p in peers:
            assert rest(p.url, "GET", "/collections/secure")[0] == 200
        target = f"127.0.0.1:{peers[0].p2p_port}"
        ca_bytes, cert_bytes, key_bytes = ca.read_bytes(), cert.read_bytes(), key.read_bytes()
        full = grpc.ssl_channel_credentials(ca_bytes, key_bytes, cert_bytes)
        no_client_cert = grpc.ssl_channel_credentials(ca_bytes)
        assert asyncio.run(_health(target, full)) is None
        assert asyncio.run(_health(target, None)) == grpc.StatusCode.UNAVAILABLE
        assert asyncio.run(_health(target, no_client_cert)) == grpc.StatusCode.UNAVAILABLE
    finally:
        cluster.stop()


def test_tls_without_a_certificate_refuses_to_start(tmp_path: Path) -> None:
    cluster = PeerCluster(tmp_path, secret=SECRET)
    cluster.env["QDRANT__CLUSTER__P2P__ENABLE_TLS"] = "true"
    peer = cluster.new_peer()
    peer.spawn()
    assert peer.proc is not None
    assert peer.proc.wait(timeout=60) == 2
    assert "tls.cert" in peer.log_tail()
