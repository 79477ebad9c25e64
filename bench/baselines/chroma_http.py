"""chromadb served over HTTP (``chroma run``), loaded and searched through its REST API.

REST shape (chromadb 1.5, API v2), as its own Python client calls it:

- ``GET  /api/v2/heartbeat``; ``GET /api/v2/pre-flight-checks`` -> ``{"max_batch_size": n}``
- ``POST /api/v2/tenants/{t}/databases/{d}/collections`` with ``{"name", "configuration":
  {"hnsw": {"space", "ef_construction", "ef_search", "max_neighbors"}}, "get_or_create"}``
  -> the collection, with its ``id`` and the configuration it actually took
- ``POST .../collections/{id}/add`` with ``{"ids": [str], "embeddings": [[float]], ...}``
- ``POST .../collections/{id}/query`` with ``{"query_embeddings": [[float]], "n_results": k,
  "include": ["distances"]}`` -> ``{"ids": [[str]], "distances": [[float]]}``

HNSW is set to the benchmark's shape: max_neighbors=16 (M), ef_construction=100, ef_search=128.
The server always stops at the end (SIGTERM to its process group, SIGKILL after a grace period).
"""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from bench.common import free_port, progress, say, ticker, wait_http
from bench.datasets import recall_at_k
from bench.loadgen import run_load

PREFIX = "/api/v2/tenants/default_tenant/databases/default_database"


class ChromaServer:
    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        exe = Path(sys.executable).with_name("chroma")
        if not exe.exists():
            raise FileNotFoundError(f"chroma CLI not found next to {sys.executable} (pip install chromadb)")
        self.exe = exe

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ChromaServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = open(self.workdir / "chroma.log", "wb")  # handed to the process
        env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
        cmd = [str(self.exe), "run", "--path", str(self.workdir / "data")]
        cmd += ["--port", str(self.port), "--host", "127.0.0.1"]
        self.proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        log.close()
        try:
            with ticker("chroma server start"):
                wait_http(self.url + "/api/v2/heartbeat", 60, alive=lambda: self.proc_alive())
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def proc_alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(15)
        except ProcessLookupError:
            pass


class Api:
    """A tiny JSON-over-HTTP client on one keep-alive connection (used for loading only; the
    search load goes through bench.loadgen)."""

    def __init__(self, url: str) -> None:
        port = int(url.rsplit(":", 1)[1])
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def call(self, method: str, path: str, body: Any = None) -> Any:
        # orjson with numpy support, as chroma's own client serialises
        data = None if body is None else orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
        headers = {"Content-Type": "application/json"} if data is not None else {}
        self.conn.request(method, path, body=data, headers=headers)
        resp = self.conn.getresponse()
        text = resp.read()
        if resp.status >= 300:
            raise RuntimeError(f"chroma {method} {path}: {resp.status} {text[:300]!r}")
        return orjson.loads(text) if text else None

    def close(self) -> None:
        self.conn.close()


def create_collection(api: Api, name: str, m: int, ef_construction: int, ef_search: int) -> dict[str, Any]:
    hnsw = {"space": "cosine", "ef_construction": ef_construction, "ef_search": ef_search, "max_neighbors": m}
    col: dict[str, Any] = api.call(
        "POST",
        f"{PREFIX}/collections",
        {"name": name, "configuration": {"hnsw": hnsw}, "metadata": None, "get_or_create": False},
    )
    took = (col.get("configuration_json") or col.get("configuration") or {}).get("hnsw") or {}
    if took and any(took.get(k) != v for k, v in hnsw.items()):
        say(f"chroma: HNSW configuration not taken as asked: asked {hnsw}, got {took}")
    return col


def ingest(api: Api, col_id: str, base: np.ndarray, batch: int = 500) -> float:
    max_batch = int((api.call("GET", "/api/v2/pre-flight-checks") or {}).get("max_batch_size", batch))
    batch = min(batch, max_batch)
    start = time.perf_counter()
    for lo in range(0, len(base), batch):
        rows = base[lo : lo + batch]
        body = {
            "ids": [str(i) for i in range(lo, lo + len(rows))],
            "embeddings": rows,
            "metadatas": None,
            "documents": None,
            "uris": None,
        }
        api.call("POST", f"{PREFIX}/collections/{col_id}/add", body)
        progress("chroma ingest (REST)", lo + len(rows), len(base))
    elapsed = time.perf_counter() - start
    count = api.call("GET", f"{PREFIX}/collections/{col_id}/count")
    if int(count) != len(base):
        raise RuntimeError(f"chroma holds {count} points after loading {len(base)}")
    return elapsed


def run_chroma(
    base: np.ndarray,
    queries: np.ndarray,
    gt: np.ndarray,
    workdir: Path,
    clients: tuple[int, ...] = (1, 16),
    k: int = 10,
    m: int = 16,
    ef_construction: int = 100,
    ef_search: int = 128,
    deadline_s: float = 60.0,
) -> dict[str, Any]:
    """Start ``chroma run``, load ``base`` over REST, then drive ``queries`` with the lean load
    generator at each client count. Returns ingest rate, per-client-count QPS, p50/p99 and
    recall@k (from the 1-client pass)."""
    out: dict[str, Any] = {}
    with ChromaServer(workdir) as server:
        api = Api(server.url)
        try:
            col = create_collection(api, "bench", m, ef_construction, ef_search)
            out["configuration"] = col.get("configuration_json") or col.get("configuration")
            out["ingest_points_per_s"] = len(base) / ingest(api, col["id"], base)
        finally:
            api.close()
        path = f"{PREFIX}/collections/{col['id']}/query"
        bodies = [
            {"query_embeddings": [q], "n_results": k, "include": ["distances"]} for q in queries.tolist()
        ]
        for c in clients:
            with ticker(f"chroma search, {c} client(s)"):
                load = run_load(server.url, path, bodies, c, repeat=1 if c == 1 else 2, deadline_s=deadline_s)
            if load["errors"]:
                raise RuntimeError(f"chroma query errors: {load['first_errors']}")
            out[f"qps_{c}_client{'s' if c > 1 else ''}"] = load["qps"]
            out[f"p50_ms_{c}"] = load["p50_ms"]
            out[f"p99_ms_{c}"] = load["p99_ms"]
            done = [r for r in load["responses"] if r is not None]
            if len(done) == len(bodies):
                ids = [[int(x) for x in r["ids"][0]] for r in load["responses"]]
                out.setdefault("recall_at_10", recall_at_k(ids, gt, k))
    return out
