"""REST benchmark: a ``qcluster serve`` subprocess loaded through qdrant-client, then searched at
ef 128 by the lean load generator (pre-serialised bodies, keep-alive, separate process) with 1
and 16 concurrent clients; in the same run the same workload on chromadb's HTTP server
(``chroma run``, loaded and driven the same lean way) and on qdrant-edge-py in process (Qdrant's
engine as a library, no HTTP: the ceiling without a network layer).

    python bench/rest.py [--quick] [--json PATH] [--dataset clustered|minilm] [--n N]

Full: 100k x 128 clustered, 2,000 queries; --quick: 20k, 1,000 queries (< 3 minutes).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import bench_args, fmt_row, machine, progress, say, ticker, unavailable, write_json
from bench.datasets import Dataset, load, recall_at_k
from bench.loadgen import run_load

M, EF_CONSTRUCT, EF = 16, 100, 128
CLIENTS = (1, 16)


def run_chroma(ds: Dataset, tmp: Path) -> dict[str, Any]:
    from bench.baselines.chroma_http import run_chroma as drive

    return drive(ds.base, ds.queries, ds.gt, tmp / "chroma", CLIENTS, 10, M, EF_CONSTRUCT, EF)


def run_qdrant_edge(ds: Dataset, tmp: Path) -> dict[str, Any]:
    from bench.baselines.qdrant_edge import EdgeEngine

    edge = EdgeEngine(tmp / "edge", ds.dim, M, EF_CONSTRUCT)
    try:
        ingest_s = edge.ingest(ds.base)
        edge.optimize()
        res = edge.run_queries(ds.queries, ds.gt, EF, label="qdrant-edge in process")
    finally:
        edge.close()
    return {
        "ingest_points_per_s": ds.n / ingest_s,
        "qps_1_client": res["qps"],
        "p50_ms_1": res["p50_ms"],
        "p99_ms_1": res["p99_ms"],
        "recall_at_10": res["recall_at_10"],
    }


# ---------------------------------------------------------------------------------------------
# qcluster: `qcluster serve` over Qdrant's REST API (lead-owned). Must return ingest_points_per_s,
# qps_1_client, p50_ms_1, p99_ms_1, qps_16_clients, p50_ms_16, p99_ms_16, recall_at_10,
# qdrant_client_qps_1_client.
# ---------------------------------------------------------------------------------------------
def run_qcluster(ds: Dataset, tmp: Path) -> dict[str, Any]:
    from qdrant_client import QdrantClient, models

    from qcluster.testing.server import ServerProcess

    base, queries, n = ds.base, ds.queries, ds.n
    with ticker("qcluster serve start"):
        srv = ServerProcess(tmp / "peer").start()
    try:
        client = QdrantClient(url=srv.url, prefer_grpc=False, timeout=60, check_compatibility=False)
        client.create_collection(
            "b", vectors_config=models.VectorParams(size=ds.dim, distance=models.Distance.COSINE)
        )
        t0 = time.perf_counter()
        batch = 500
        for start in range(0, n, batch):
            ids = list(range(start, min(start + batch, n)))
            client.upsert(
                "b", points=models.Batch(ids=ids, vectors=base[start : start + len(ids)].tolist()), wait=True
            )
            progress("qcluster ingest (qdrant-client)", ids[-1] + 1, n)
        ingest = n / (time.perf_counter() - t0)
        deadline = time.monotonic() + 600
        with ticker("qcluster indexing"):
            while True:
                info = client.get_collection("b")
                if (
                    info.indexed_vectors_count
                    and info.indexed_vectors_count >= n
                    and info.status.value == "green"
                ):
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError("collection not green after 600 s")
                time.sleep(0.1)
        bodies = [{"query": q, "limit": 10, "params": {"hnsw_ef": EF}} for q in queries.tolist()]
        path = "/collections/b/points/query"
        out: dict[str, Any] = {"ingest_points_per_s": ingest}
        for c in CLIENTS:
            with ticker(f"qcluster search, {c} client(s)"):
                load = run_load(srv.url, path, bodies, c, repeat=1 if c == 1 else 2)
            if load["errors"]:
                raise RuntimeError(f"qcluster query errors: {load['first_errors']}")
            out[f"qps_{c}_client{'s' if c > 1 else ''}"] = load["qps"]
            out[f"p50_ms_{c}"] = load["p50_ms"]
            out[f"p99_ms_{c}"] = load["p99_ms"]
            if c == 1:
                ids = [[p["id"] for p in r["result"]["points"]] for r in load["responses"]]
                out["recall_at_10"] = recall_at_k(ids, ds.gt)
        n_client = min(len(queries), 300)
        params = models.SearchParams(hnsw_ef=EF)
        t1 = time.perf_counter()
        for i, q in enumerate(queries[:n_client].tolist()):
            client.query_points("b", query=q, limit=10, search_params=params)
            if i % 50 == 0 or i == n_client - 1:
                progress("qcluster via qdrant-client", i + 1, n_client)
        out["qdrant_client_qps_1_client"] = n_client / (time.perf_counter() - t1)
        return out
    finally:
        srv.stop()


def summary(result: dict[str, Any]) -> str:
    widths = [24, 10, 10, 10, 10, 10, 10]
    lines = [fmt_row(["server", "QPS 1", "p50 ms 1", "p99 ms 1", "QPS 16", "recall", "ingest/s"], widths)]
    for name, key in (
        ("qcluster serve", "qcluster"),
        ("chroma run", "chroma"),
        ("qdrant-edge (in process)", "qdrant_edge"),
    ):
        r = result[key]
        if "error" in r:
            lines.append(f"{name:>24}  {r['error']}")
            continue
        lines.append(
            fmt_row(
                [
                    name,
                    r.get("qps_1_client"),
                    r.get("p50_ms_1"),
                    r.get("p99_ms_1"),
                    r.get("qps_16_clients"),
                    r.get("recall_at_10"),
                    r.get("ingest_points_per_s"),
                ],
                widths,
            )
        )
    qc = result.get("qdrant_client_qps_1_client")
    lines.append(f"qdrant-client driving qcluster, 1 client: {qc:,.0f} QPS" if qc else "qdrant-client: n/a")
    return "\n".join(lines)


def main() -> None:
    args, n, nq = bench_args(__doc__, 1000, 2000)
    with ticker("data + exact ground truth"):
        ds = load(args.dataset, n, nq)
    tmp = Path(tempfile.mkdtemp(prefix="qbench-rest-"))
    started = time.perf_counter()
    try:
        say("== chroma run (HTTP)")
        try:
            c = run_chroma(ds, tmp)
        except Exception as exc:
            c = unavailable("chroma", exc)
        say("== qdrant-edge-py (in process)")
        try:
            e = run_qdrant_edge(ds, tmp)
        except Exception as exc:
            e = unavailable("qdrant-edge", exc)
        say("== qcluster serve (HTTP)")
        if args.skip_qcluster:
            q = unavailable("qcluster", RuntimeError("skipped (--skip-qcluster)"))
        else:
            try:
                q = run_qcluster(ds, tmp)
            except Exception as exc:
                q = unavailable("qcluster", exc)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result = {
        "benchmark": "rest",
        "dataset": ds.name,
        "n": ds.n,
        "dim": ds.dim,
        "queries": len(ds.queries),
        "ef": EF,
        "quick": args.quick,
        "machine": machine(),
        "elapsed_s": time.perf_counter() - started,
        # the keys issue #4 asks for
        "qps_1_client": q.get("qps_1_client"),
        "qps_16_clients": q.get("qps_16_clients"),
        "p50_ms_1_client": q.get("p50_ms_1"),
        "p99_ms_1_client": q.get("p99_ms_1"),
        "p99_ms_16_clients": q.get("p99_ms_16"),
        "recall_at_10": q.get("recall_at_10"),
        "ingest_points_per_s": q.get("ingest_points_per_s"),
        "qdrant_client_qps_1_client": q.get("qdrant_client_qps_1_client"),
        "chroma_qps_1_client": c.get("qps_1_client"),
        "chroma_qps_16_clients": c.get("qps_16_clients"),
        "chroma_p99_ms_1_client": c.get("p99_ms_1"),
        "chroma_recall_at_10": c.get("recall_at_10"),
        "chroma_ingest_points_per_s": c.get("ingest_points_per_s"),
        "qdrant_edge_qps_1_client": e.get("qps_1_client"),
        "qdrant_edge_recall_at_10": e.get("recall_at_10"),
        "qcluster": q,
        "chroma": c,
        "qdrant_edge": e,
    }
    print(summary(result))
    write_json(args.json, result)


if __name__ == "__main__":
    main()
