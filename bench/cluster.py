"""Cluster benchmark: 3 ``qcluster serve`` peers (6 shards, replication factor 2) next to one peer
with the same collection (6 shards, all local), in the same run, over REST.

Measures, for both:
- upsert points/s (batches of 500 with ``wait=true`` through one peer; the cluster with
  write_consistency_factor 1 and 2);
- search QPS and p50 / p99 (ef 128, limit 10) with 1 client through one peer, and 16 clients
  through one peer; for the cluster also 16 clients spread over all three peers;
- recall@10 against exact ground truth (the cluster answers must be as good as one peer's).

Every figure is the median of ``--repeats`` runs (searches; ingest is measured once per
collection). The lean load generator runs in its own process.

    python bench/cluster.py [--quick] [--json PATH] [--repeats R]

Full: 100k x 128 clustered, 2,000 queries; --quick: 20k, 500 queries.
"""

from __future__ import annotations

import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import bench_args, fmt_row, machine, progress, say, ticker, write_json
from bench.datasets import Dataset, load, recall_at_k
from bench.loadgen import run_load

SHARDS, RF = 6, 2
M, EF_CONSTRUCT, EF = 16, 100, 128
BATCH = 500


def _call(url: str, method: str, path: str, body: Any = None, timeout: float = 300.0) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        url + path, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read())


def _create(url: str, name: str, dim: int, **params: Any) -> None:
    body = {
        "vectors": {"size": dim, "distance": "Cosine"},
        "shard_number": SHARDS,
        "hnsw_config": {"m": M, "ef_construct": EF_CONSTRUCT},
        # each of the 6 shards holds less than the default 10 MB threshold: index everything, so
        # both setups search fully indexed shards (equal work)
        "optimizers_config": {"indexing_threshold": 1},
        **params,
    }
    _call(url, "PUT", f"/collections/{name}?timeout=60", body)


def _ingest(url: str, name: str, ds: Dataset, n: int, label: str) -> float:
    t0 = time.perf_counter()
    for start in range(0, n, BATCH):
        rows = ds.base[start : min(start + BATCH, n)]
        ids = list(range(start, start + len(rows)))
        _call(
            url,
            "PUT",
            f"/collections/{name}/points?wait=true",
            {"batch": {"ids": ids, "vectors": rows.tolist()}},
        )
        progress(label, ids[-1] + 1, n)
    return n / (time.perf_counter() - t0)


def _wait_indexed(urls: list[str], name: str, n: int) -> None:
    deadline = time.monotonic() + 900
    with ticker(f"indexing {name}"):
        while True:
            infos = [_call(u, "GET", f"/collections/{name}")["result"] for u in urls]
            if all(i["status"] == "green" and (i.get("indexed_vectors_count") or 0) >= n for i in infos):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} not fully indexed after 900 s: {infos[0]}")
            time.sleep(0.2)


def _search(urls: list[str], name: str, ds: Dataset, clients: int) -> dict[str, Any]:
    """``clients`` closed-loop clients spread evenly over ``urls`` at the same time."""
    bodies = [{"query": q, "limit": 10, "params": {"hnsw_ef": EF}} for q in ds.queries.tolist()]
    path = f"/collections/{name}/points/query"
    per = [clients // len(urls) + (1 if i < clients % len(urls) else 0) for i in range(len(urls))]
    results: list[dict[str, Any]] = [{} for _ in urls]

    def one(i: int) -> None:
        results[i] = run_load(urls[i], path, bodies, per[i], repeat=1 if clients == 1 else 2)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(urls)) if per[i]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done = [r for r in results if r]
    errors = [e for r in done for e in r.get("first_errors", [])]
    if any(r["errors"] for r in done):
        raise RuntimeError(f"search errors: {errors[:3]}")
    first = done[0]
    ids = [[p["id"] for p in r["result"]["points"]] for r in first["responses"]]
    return {
        "qps": sum(r["qps"] for r in done),
        "p50_ms": statistics.median(r["p50_ms"] for r in done),
        "p99_ms": max(r["p99_ms"] for r in done),
        "recall_at_10": recall_at_k(ids, ds.gt),
    }


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    out["runs"] = len(runs)
    out["qps_runs"] = [r["qps"] for r in runs]
    return out


def run_single(ds: Dataset, tmp: Path, repeats: int) -> dict[str, Any]:
    from qcluster.testing.server import ServerProcess

    with ticker("single peer start"):
        srv = ServerProcess(tmp / "single").start()
    try:
        _create(srv.url, "b", ds.dim)
        out: dict[str, Any] = {"upsert_points_per_s": _ingest(srv.url, "b", ds, ds.n, "single peer ingest")}
        _wait_indexed([srv.url], "b", ds.n)
        for label, clients in (("1_client", 1), ("16_clients", 16)):
            runs = []
            for r in range(repeats):
                with ticker(f"single peer search, {clients} client(s), run {r + 1}/{repeats}"):
                    runs.append(_search([srv.url], "b", ds, clients))
            out[label] = _median(runs)
        return out
    finally:
        srv.stop()


def run_cluster(ds: Dataset, tmp: Path, repeats: int) -> dict[str, Any]:
    from qcluster.testing.peer_cluster import PeerCluster

    cluster = PeerCluster(tmp / "cluster")
    try:
        with ticker("3-peer cluster start"):
            peers = cluster.start(3)
        urls = [p.url for p in peers]
        _create(urls[0], "b", ds.dim, replication_factor=RF, write_consistency_factor=1)
        out: dict[str, Any] = {
            "upsert_points_per_s_wcf1": _ingest(urls[0], "b", ds, ds.n, "cluster ingest, wcf 1")
        }
        part = max(BATCH, ds.n // 5)
        _create(urls[0], "w2", ds.dim, replication_factor=RF, write_consistency_factor=2)
        out["upsert_points_per_s_wcf2"] = _ingest(urls[0], "w2", ds, part, "cluster ingest, wcf 2")
        _call(urls[0], "DELETE", "/collections/w2")
        _wait_indexed(urls, "b", ds.n)
        for label, targets, clients in (
            ("1_client", urls[:1], 1),
            ("16_clients", urls[:1], 16),
            ("16_clients_spread", urls, 16),
        ):
            runs = []
            for r in range(repeats):
                with ticker(f"cluster search, {label}, run {r + 1}/{repeats}"):
                    runs.append(_search(targets, "b", ds, clients))
            out[label] = _median(runs)
        return out
    finally:
        cluster.stop()


def main() -> None:
    repeats = 3
    if "--repeats" in sys.argv:  # ours; the shared options are parsed by bench_args
        at = sys.argv.index("--repeats")
        repeats = max(1, int(sys.argv[at + 1]))
        del sys.argv[at : at + 2]
    args, n, nq = bench_args(__doc__, 500, 2000)
    with ticker("data + exact ground truth"):
        ds = load(args.dataset, n, nq)
    tmp = Path(tempfile.mkdtemp(prefix="qbench-cluster-"))
    started = time.perf_counter()
    try:
        say("== one peer, 6 local shards")
        single = run_single(ds, tmp, repeats)
        say("== three peers, 6 shards, replication factor 2")
        cluster = run_cluster(ds, tmp, repeats)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    s1, c1 = single["1_client"], cluster["1_client"]
    result = {
        "benchmark": "cluster",
        "dataset": ds.name,
        "n": ds.n,
        "dim": ds.dim,
        "queries": len(ds.queries),
        "shards": SHARDS,
        "replication_factor": RF,
        "repeats": repeats,
        "quick": args.quick,
        "machine": machine(),
        "elapsed_s": time.perf_counter() - started,
        # the keys the data-plane issue asks for
        "cluster_search_qps": c1["qps"],
        "single_search_qps": s1["qps"],
        "cluster_p50_ms": c1["p50_ms"],
        "single_p50_ms": s1["p50_ms"],
        "cluster_upsert_points_per_s": cluster["upsert_points_per_s_wcf1"],
        "single_upsert_points_per_s": single["upsert_points_per_s"],
        "single": single,
        "cluster": cluster,
    }
    widths = [34, 10, 10, 10, 10]
    lines = [fmt_row(["", "QPS", "p50 ms", "p99 ms", "recall"], widths)]
    for label, d in (
        ("one peer, 1 client", s1),
        ("cluster via one peer, 1 client", c1),
        ("one peer, 16 clients", single["16_clients"]),
        ("cluster via one peer, 16 clients", cluster["16_clients"]),
        ("cluster spread over 3, 16 clients", cluster["16_clients_spread"]),
    ):
        lines.append(fmt_row([label, d["qps"], d["p50_ms"], d["p99_ms"], d["recall_at_10"]], widths))
    lines.append(
        f"upsert points/s: one peer {single['upsert_points_per_s']:,.0f}; cluster wcf 1 "
        f"{cluster['upsert_points_per_s_wcf1']:,.0f}, wcf 2 {cluster['upsert_points_per_s_wcf2']:,.0f}"
    )
    print("\n".join(lines))
    write_json(args.json, result)


if __name__ == "__main__":
    main()
