"""REST benchmark: a `qcluster serve` subprocess loaded through qdrant-client, then searched at
ef 128 by a lean HTTP load generator (1 and 16 clients, separate process); in the same run the
same workload on chromadb's HTTP server and on qdrant-edge-py in process.

    python bench/rest.py [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import clustered, ground_truth, machine, progress, queries_for, recall_at_k, write_json
from bench.loadgen import run_load

EF = 128


def _wait_http(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(url)


def run_qcluster(base: np.ndarray, queries: np.ndarray, gt: np.ndarray, tmp: Path) -> dict[str, Any]:
    from qdrant_client import QdrantClient, models

    from qcluster.testing.server import ServerProcess

    srv = ServerProcess(tmp / "peer").start()
    try:
        client = QdrantClient(url=srv.url, prefer_grpc=False, timeout=60, check_compatibility=False)
        client.create_collection(
            "b", vectors_config=models.VectorParams(size=base.shape[1], distance=models.Distance.COSINE)
        )
        t0 = time.perf_counter()
        batch = 500
        for start in range(0, len(base), batch):
            ids = list(range(start, min(start + batch, len(base))))
            client.upsert(
                "b", points=models.Batch(ids=ids, vectors=base[start : start + len(ids)].tolist()), wait=True
            )
            progress("qcluster ingest (qdrant-client)", ids[-1] + 1, len(base))
        ingest = len(base) / (time.perf_counter() - t0)
        while True:
            info = client.get_collection("b")
            if (
                info.indexed_vectors_count
                and info.indexed_vectors_count >= len(base)
                and info.status.value == "green"
            ):
                break
            time.sleep(0.1)
        bodies = [{"query": q.tolist(), "limit": 10, "params": {"hnsw_ef": EF}} for q in queries]
        path = "/collections/b/points/query"
        run_load(srv.url, path, bodies[:50], 1)  # warm-up
        one = run_load(srv.url, path, bodies, 1)
        many = run_load(srv.url, path, bodies * 2, 16)
        ids = [[p["id"] for p in r["result"]["points"]] for r in one["responses"]]
        t1 = time.perf_counter()
        n_client = min(len(queries), 300)
        for q in queries[:n_client]:
            client.query_points(
                "b", query=q.tolist(), limit=10, search_params=models.SearchParams(hnsw_ef=EF)
            )
        client_qps = n_client / (time.perf_counter() - t1)
        return {
            "ingest_points_per_s": ingest,
            "qps_1_client": one["qps"],
            "p50_ms_1_client": one["p50_ms"],
            "p99_ms_1_client": one["p99_ms"],
            "qps_16_clients": many["qps"],
            "p99_ms_16_clients": many["p99_ms"],
            "recall_at_10": recall_at_k(ids, gt),
            "qdrant_client_qps_1_client": client_qps,
        }
    finally:
        srv.stop()


def run_chroma(base: np.ndarray, queries: np.ndarray, gt: np.ndarray, tmp: Path) -> dict[str, Any]:
    chroma = Path(sys.executable).with_name("chroma")
    if not chroma.exists():
        return {"error": "chromadb not installed in this environment"}
    import chromadb

    from qcluster.testing.server import free_port

    port = free_port()
    log = open(tmp / "chroma.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [str(chroma), "run", "--path", str(tmp / "chroma"), "--port", str(port), "--host", "127.0.0.1"],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_http(url + "/api/v2/heartbeat")
        client = chromadb.HttpClient(host="127.0.0.1", port=port)
        col = client.create_collection(
            "bench",
            configuration={
                "hnsw": {"space": "cosine", "ef_construction": 100, "ef_search": EF, "max_neighbors": 16}
            },
        )
        t0 = time.perf_counter()
        for start in range(0, len(base), 500):
            ids = [str(i) for i in range(start, min(start + 500, len(base)))]
            col.add(ids=ids, embeddings=base[start : start + len(ids)].tolist())
            progress("chroma ingest", start + len(ids), len(base))
        ingest = len(base) / (time.perf_counter() - t0)
        path = f"/api/v2/tenants/default_tenant/databases/default_database/collections/{col.id}/query"
        bodies = [
            {"query_embeddings": [q.tolist()], "n_results": 10, "include": ["distances"]} for q in queries
        ]
        run_load(url, path, bodies[:50], 1)
        one = run_load(url, path, bodies, 1)
        many = run_load(url, path, bodies * 2, 16)
        ids = [[int(x) for x in r["ids"][0]] for r in one["responses"]]
        return {
            "ingest_points_per_s": ingest,
            "qps_1_client": one["qps"],
            "p99_ms_1_client": one["p99_ms"],
            "qps_16_clients": many["qps"],
            "recall_at_10": recall_at_k(ids, gt),
        }
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def run_edge(base: np.ndarray, queries: np.ndarray, gt: np.ndarray, tmp: Path) -> dict[str, Any]:
    try:
        import qdrant_edge as qe
    except ImportError as exc:
        return {"error": str(exc)}
    cfg = qe.EdgeConfig(
        vectors=qe.EdgeVectorParams(size=base.shape[1], distance=qe.Distance.Cosine),
        hnsw_config=qe.HnswIndexConfig(m=16, ef_construct=100, full_scan_threshold=10000),
    )
    shard = qe.EdgeShard.create(str(tmp / "edge"), cfg)
    for start in range(0, len(base), 1000):
        pts = [qe.Point(id=i, vector=base[i].tolist()) for i in range(start, min(start + 1000, len(base)))]
        shard.update(qe.UpdateOperation.upsert_points(pts))
    shard.optimize()
    params = qe.SearchParams(hnsw_ef=EF)
    t0 = time.perf_counter()
    res = []
    for q in queries:
        req = qe.QueryRequest(limit=10, query=qe.Query.Nearest(q.tolist()), params=params)
        res.append([int(p.id) for p in shard.query(req)])
    qps = len(queries) / (time.perf_counter() - t0)
    shard.close()
    return {"qps_1_client": qps, "recall_at_10": recall_at_k(res, gt)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    n = 20_000 if args.quick else 100_000
    base, _ = clustered(n, 128)
    queries = queries_for(1000 if args.quick else 2000, 128, seed=5)
    gt = ground_truth(base, queries)
    tmp = Path(tempfile.mkdtemp(prefix="qbench-r-"))
    try:
        q = run_qcluster(base, queries, gt, tmp)
        try:
            c = run_chroma(base, queries, gt, tmp)
        except Exception as exc:
            c = {"error": f"chroma failed: {exc}"}
        e = run_edge(base, queries, gt, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    write_json(
        args.json,
        {
            "benchmark": "rest",
            "n": n,
            "machine": machine(),
            **q,
            "chroma_qps_1_client": c.get("qps_1_client"),
            "chroma_qps_16_clients": c.get("qps_16_clients"),
            "chroma_recall_at_10": c.get("recall_at_10"),
            "chroma_ingest_points_per_s": c.get("ingest_points_per_s"),
            "qdrant_edge_qps_1_client": e.get("qps_1_client"),
            "chroma": c,
            "qdrant_edge": e,
        },
    )


if __name__ == "__main__":
    main()
