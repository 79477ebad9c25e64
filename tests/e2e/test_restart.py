"""Acknowledged writes survive kill -9 of the server; API keys and body limits."""

from __future__ import annotations

from pathlib import Path

from qdrant_client import QdrantClient, models

from qcluster.testing.server import ServerProcess

from .http import call


def test_kill9_keeps_acknowledged_points(tmp_path: Path) -> None:
    srv = ServerProcess(tmp_path / "peer").start()
    try:
        # a full snapshot of a peer with no collections is refused, not an empty "ok" archive
        status, body = call(srv.url, "POST", "/snapshots")
        assert status == 400 and "no collections" in body["status"]["error"]
        # no background version check: the server is killed while that thread may still run
        client = QdrantClient(url=srv.url, prefer_grpc=False, timeout=30, check_compatibility=False)
        client.create_collection(
            "k", vectors_config=models.VectorParams(size=4, distance=models.Distance.EUCLID)
        )
        for start in range(0, 300, 50):
            client.upsert(
                "k",
                wait=True,
                points=[
                    models.PointStruct(id=i, vector=[float(i), 0, 0, 1], payload={"i": i})
                    for i in range(start, start + 50)
                ],
            )
        client.delete("k", points_selector=models.PointIdsList(points=[7]), wait=True)
        srv.kill9()
        srv.start()
        client = QdrantClient(url=srv.url, prefer_grpc=False, timeout=30, check_compatibility=False)
        assert client.count("k").count == 299
        recs = client.retrieve("k", ids=[0, 7, 299], with_vectors=True)
        assert [(r.id, r.payload, r.vector) for r in recs] == [
            (0, {"i": 0}, [0.0, 0.0, 0.0, 1.0]),
            (299, {"i": 299}, [299.0, 0.0, 0.0, 1.0]),
        ]
    finally:
        srv.stop()


def test_api_keys_and_body_limit(tmp_path: Path) -> None:
    env = {
        "QDRANT__SERVICE__API_KEY": "full-secret",
        "QDRANT__SERVICE__READ_ONLY_API_KEY": "ro-secret",
        "QDRANT__SERVICE__MAX_REQUEST_SIZE_MB": "1",
    }
    srv = ServerProcess(tmp_path / "peer", env=env).start()
    try:
        full = {"api-key": "full-secret"}
        assert call(srv.url, "GET", "/healthz")[0] == 200
        status, body = call(srv.url, "GET", "/collections")
        assert status == 401 and "API key" in body["status"]["error"]
        assert call(srv.url, "GET", "/collections", headers={"api-key": "wrong"})[0] == 401
        assert call(srv.url, "GET", "/collections", headers={"Authorization": "Bearer ro-secret"})[0] == 200
        create = {"vectors": {"size": 2, "distance": "Dot"}}
        assert call(srv.url, "PUT", "/collections/a", create, headers={"api-key": "ro-secret"})[0] == 403
        assert call(srv.url, "PUT", "/collections/a", create, headers=full)[0] == 200
        assert (
            call(srv.url, "POST", "/collections/a/points/count", {}, headers={"api-key": "ro-secret"})[0]
            == 200
        )
        big = {
            "points": [{"id": i, "vector": [0.5, 0.5], "payload": {"pad": "x" * 1000}} for i in range(2000)]
        }
        status, body = call(srv.url, "PUT", "/collections/a/points", big, headers=full)
        assert status == 413, body
        status, body = call(srv.url, "POST", "/collections/a/points/count", {}, headers=full)
        assert status == 200 and body["result"]["count"] == 0
    finally:
        srv.stop()


def test_tls(tmp_path: Path) -> None:
    import shutil
    import subprocess

    import httpx
    import pytest

    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    env = {
        "QDRANT__SERVICE__ENABLE_TLS": "true",
        "QDRANT__TLS__CERT": str(cert),
        "QDRANT__TLS__KEY": str(key),
    }
    srv = ServerProcess(tmp_path / "peer", env=env, scheme="https").start()
    try:
        import ssl

        resp = httpx.get(srv.url + "/collections", verify=ssl.create_default_context(cafile=str(cert)))
        assert resp.status_code == 200 and resp.json()["status"] == "ok"
        with pytest.raises(httpx.HTTPError):
            httpx.get(srv.url.replace("https", "http") + "/collections", timeout=5)
    finally:
        srv.stop()
