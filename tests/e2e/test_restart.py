"""Acknowledged writes survive kill -9 of the server; API keys and body limits."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from qdrant_client import models

from qcluster.testing.certs import have_openssl, self_signed
from qcluster.testing.server import ServerProcess, free_port

from .http import call, recording_client
from .openapi_check import Recorder


def test_kill9_keeps_acknowledged_points(tmp_path: Path, recorder: Recorder) -> None:
    srv = ServerProcess(tmp_path / "peer").start()
    try:
        # a full snapshot of a peer with no collections is refused, not an empty "ok" archive
        status, body = call(srv.url, "POST", "/snapshots", recorder=recorder)
        assert status == 400 and "no collections" in body["status"]["error"]
        # no background version check: the server is killed while that thread may still run
        client = recording_client(srv.url, recorder, check_compatibility=False)
        client.create_collection(
            "k", vectors_config=models.VectorParams(size=4, distance=models.Distance.EUCLID)
        )
        client.create_collection(
            "multi",
            vectors_config={"a": models.VectorParams(size=2, distance=models.Distance.DOT)},
            shard_number=3,
        )
        client.create_payload_index("k", field_name="i", field_schema=models.PayloadSchemaType.INTEGER)
        client.update_collection_aliases(
            change_aliases_operations=[
                models.CreateAliasOperation(
                    create_alias=models.CreateAlias(collection_name="multi", alias_name="m")
                )
            ]
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
        client.upsert(
            "multi", wait=True, points=[models.PointStruct(id=i, vector={"a": [i, 1]}) for i in range(40)]
        )
        client.create_vector_name(
            "multi",
            "b",
            models.DenseVectorNameConfig(
                dense=models.DenseVectorConfig(size=2, distance=models.Distance.DOT)
            ),
        )
        client.update_vectors("multi", wait=True, points=[models.PointVectors(id=5, vector={"b": [5, 5]})])
        client.close()
        srv.kill9()
        srv.start()
        client = recording_client(srv.url, recorder, check_compatibility=False)
        assert client.count("k").count == 299
        recs = client.retrieve("k", ids=[0, 7, 299], with_vectors=True)
        assert [(r.id, r.payload, r.vector) for r in recs] == [
            (0, {"i": 0}, [0.0, 0.0, 0.0, 1.0]),
            (299, {"i": 299}, [299.0, 0.0, 0.0, 1.0]),
        ]
        assert client.get_collection("k").payload_schema["i"].points == 299
        assert client.count("m").count == 40
        assert client.retrieve("multi", ids=[5], with_vectors=True)[0].vector == {
            "a": [5.0, 1.0],
            "b": [5.0, 5.0],
        }
        client.close()
    finally:
        srv.stop()


def test_api_keys_and_body_limit(tmp_path: Path, recorder: Recorder) -> None:
    env = {
        "QDRANT__SERVICE__API_KEY": "full-secret",
        "QDRANT__SERVICE__READ_ONLY_API_KEY": "ro-secret",
        "QDRANT__SERVICE__MAX_REQUEST_SIZE_MB": "1",
    }
    srv = ServerProcess(tmp_path / "peer", env=env).start()
    try:
        full = {"api-key": "full-secret"}
        ro = {"api-key": "ro-secret"}
        assert call(srv.url, "GET", "/healthz")[0] == 200
        status, body = call(srv.url, "GET", "/collections", recorder=recorder)
        assert status == 401 and "API key" in body["status"]["error"]
        assert call(srv.url, "GET", "/collections", headers={"api-key": "wrong"}, recorder=recorder)[0] == 401
        assert call(srv.url, "GET", "/collections", headers={"Authorization": "Bearer ro-secret"})[0] == 200
        create = {"vectors": {"size": 2, "distance": "Dot"}}
        status, body = call(srv.url, "PUT", "/collections/a", create, headers=ro, recorder=recorder)
        assert status == 403 and "read-only" in body["status"]["error"]
        # the official client with a key (it warns about sending a key over plain http)
        with pytest.warns(UserWarning, match="insecure"):
            client = recording_client(srv.url, recorder, api_key="full-secret", check_compatibility=False)
        client.create_collection(
            "a", vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT)
        )
        client.upsert("a", points=[models.PointStruct(id=1, vector=[1, 0])])
        client.close()
        assert call(srv.url, "POST", "/collections/a/points/count", {}, headers=ro, recorder=recorder)[1][
            "result"
        ] == {"count": 1}
        big = {
            "points": [{"id": i, "vector": [0.5, 0.5], "payload": {"pad": "x" * 1000}} for i in range(2000)]
        }
        status, body = call(srv.url, "PUT", "/collections/a/points", big, headers=full, recorder=recorder)
        assert status == 413 and body["status"]["error"].startswith("Payload too large"), body
        status, body = call(
            srv.url, "POST", "/collections/a/points/count", {}, headers=full, recorder=recorder
        )
        assert status == 200 and body["result"]["count"] == 1
    finally:
        srv.stop()


def test_tls(tmp_path: Path, recorder: Recorder) -> None:
    if not have_openssl():
        pytest.skip("openssl is not installed")
    cert, key = self_signed(tmp_path / "certs")
    env = {
        "QDRANT__SERVICE__ENABLE_TLS": "true",
        "QDRANT__TLS__CERT": str(cert),
        "QDRANT__TLS__KEY": str(key),
    }
    srv = ServerProcess(tmp_path / "peer", env=env, scheme="https").start()
    try:
        trust = ssl.create_default_context(cafile=str(cert))
        status, body = call(srv.url, "GET", "/collections", verify=trust, recorder=recorder)
        assert status == 200 and body["result"] == {"collections": []}
        client = recording_client(srv.url, recorder, verify=trust, check_compatibility=False)
        client.create_collection(
            "t", vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT)
        )
        assert client.collection_exists("t")
        client.close()
        with pytest.raises(httpx.HTTPError):
            httpx.get(srv.url.replace("https", "http") + "/collections", timeout=5)
    finally:
        srv.stop()


def test_cli_config_file_and_flags(tmp_path: Path, recorder: Recorder) -> None:
    """``python -m qcluster [flags]`` with no subcommand reads a Qdrant-style YAML config; unknown
    keys only warn; SIGTERM stops it cleanly (exit 0) and the data stays."""
    port = free_port()
    config = tmp_path / "config.yaml"
    config.write_text(
        f"log_level: INFO\nservice:\n  host: 127.0.0.1\n  http_port: {port}\n  not_a_setting: 1\n"
        f"storage:\n  storage_path: {tmp_path / 'data'}\n"
    )
    cmd = [
        sys.executable,
        "-m",
        "qcluster",
        "--config-path",
        str(config),
        "--uri",
        "http://127.0.0.1:6335",
        "--reinit",
    ]
    log = tmp_path / "log.txt"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "not ready in 60 s"
            time.sleep(0.05)
        status, _ = call(
            url, "PUT", "/collections/cli", {"vectors": {"size": 2, "distance": "Dot"}}, recorder=recorder
        )
        assert status == 200
        assert (tmp_path / "data" / "collections" / "cli" / "config.json").exists()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        code = proc.wait(30)
    text = log.read_text()
    assert code == 0, text
    assert "unknown settings key ignored: service.not_a_setting" in text
