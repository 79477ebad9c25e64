"""Filtered search benchmark: recall@10, QPS and p50/p99 at several selectivities, with filters
random and correlated with the vector clusters, for qcluster, raw FAISS HNSW with an id selector
(the naive baseline) and qdrant-edge-py with payload indexes (Qdrant's own planner).

    python bench/filtered.py [--quick] [--json PATH] [--dataset clustered|minilm] [--n N]

Payloads: ``tenant`` (keyword, 20 values), ``category`` (keyword, the point's vector cluster),
``price`` (integer, uniform 0..99,999) and ``sub`` (integer, uniform 0..999). Filters:
- random: ``price < s * 100,000`` at s = 0.1 %, 1 %, 10 %, 50 %;
- correlated: ``category`` in the first clusters (plus a ``sub`` range when s is below one
  cluster's share), so allowed points sit in a few clusters, away from most queries;
- tenant: ``tenant == t0`` (~5 %), the multi-tenant case.
Ground truth: exact search over the allowed points. Full: 100k x 128, 500 queries; --quick: 20k,
200 queries (< 2 minutes).
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (
    bench_args,
    fmt_row,
    machine,
    percentile,
    progress,
    say,
    ticker,
    unavailable,
    write_json,
)
from bench.datasets import Dataset, ground_truth, load, recall_at_k
from bench.qcluster_shard import shard_config, wait_fully_indexed

M, EF_CONSTRUCT, EF = 16, 100, 128
SELECTIVITIES = (0.001, 0.01, 0.1, 0.5)
INDEXES = (("category", "keyword"), ("price", "integer"), ("sub", "integer"), ("tenant", "keyword"))


def make_columns(labels: np.ndarray, seed: int = 3) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = len(labels)
    return {
        "tenant": rng.integers(0, 20, n),
        "category": labels,  # follows the vector clusters
        "price": rng.integers(0, 100_000, n),
        "sub": rng.integers(0, 1000, n),
    }


def payload(cols: dict[str, np.ndarray], i: int) -> dict[str, Any]:
    return {
        "tenant": f"t{int(cols['tenant'][i])}",
        "category": f"c{int(cols['category'][i])}",
        "price": int(cols["price"][i]),
        "sub": int(cols["sub"][i]),
    }


def cases(cols: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """Each case: kind, target selectivity, correlated flag, the Qdrant filter JSON and the mask."""
    n = len(cols["price"])
    out: list[dict[str, Any]] = []
    for s in SELECTIVITIES:
        limit = round(s * 100_000)
        out.append(
            {
                "kind": "random",
                "selectivity": s,
                "correlated": False,
                "filter": {"must": [{"key": "price", "range": {"lt": limit}}]},
                "mask": cols["price"] < limit,
            }
        )
    counts = np.bincount(cols["category"])
    for s in SELECTIVITIES:
        target = s * n
        if target < counts[0]:  # a slice of one cluster
            sub_limit = max(1, round(1000 * target / counts[0]))
            flt = {
                "must": [
                    {"key": "category", "match": {"any": ["c0"]}},
                    {"key": "sub", "range": {"lt": sub_limit}},
                ]
            }
            mask = (cols["category"] == 0) & (cols["sub"] < sub_limit)
        else:  # whole clusters, in label order, until the target is reached
            k = int(np.searchsorted(np.cumsum(counts), target)) + 1
            flt = {"must": [{"key": "category", "match": {"any": [f"c{c}" for c in range(k)]}}]}
            mask = np.isin(cols["category"], np.arange(k))
        out.append({"kind": "correlated", "selectivity": s, "correlated": True, "filter": flt, "mask": mask})
    out.append(
        {
            "kind": "tenant",
            "selectivity": 0.05,
            "correlated": False,
            "filter": {"must": [{"key": "tenant", "match": {"value": "t0"}}]},
            "mask": cols["tenant"] == 0,
        }
    )
    return out


def run_faiss(ds: Dataset, all_cases: list[dict[str, Any]], gts: list[np.ndarray]) -> dict[str, Any]:
    from bench.baselines.faiss_hnsw import FaissHnsw

    index = FaissHnsw(ds.dim, M, EF_CONSTRUCT)
    index.build(ds.base, threads=2)
    rows = [
        index.run_queries(
            ds.queries, gt, EF, mask=c["mask"], label=f"faiss {c['kind']} {c['selectivity']:.1%}"
        )
        for c, gt in zip(all_cases, gts, strict=True)
    ]
    unfiltered = index.run_queries(ds.queries, ds.gt, EF, label="faiss unfiltered")
    return {"rows": rows, "unfiltered_qps": unfiltered["qps"]}


def run_qdrant_edge(
    ds: Dataset,
    cols: dict[str, np.ndarray],
    all_cases: list[dict[str, Any]],
    gts: list[np.ndarray],
    tmp: Path,
) -> dict[str, Any]:
    from bench.baselines.qdrant_edge import EdgeEngine

    edge = EdgeEngine(tmp / "edge", ds.dim, M, EF_CONSTRUCT)
    try:
        for key, schema in INDEXES:
            edge.create_index(key, schema)
        edge.ingest(ds.base, payload=lambda i: payload(cols, i))
        edge.optimize()
        rows = [
            edge.run_queries(
                ds.queries,
                gt,
                EF,
                flt=c["filter"],
                allowed=int(c["mask"].sum()),
                label=f"qdrant-edge {c['kind']} {c['selectivity']:.1%}",
            )
            for c, gt in zip(all_cases, gts, strict=True)
        ]
        unfiltered = edge.run_queries(ds.queries, ds.gt, EF, label="qdrant-edge unfiltered")
    finally:
        edge.close()
    return {"rows": rows, "unfiltered_qps": unfiltered["qps"]}


# ---------------------------------------------------------------------------------------------
# qcluster: LocalShard with payload indexes (lead-owned). Must return {"rows": [one dict per
# case, in order, with qps, recall_at_10, p50_ms, p99_ms, short_results], "unfiltered_qps"}.
# ---------------------------------------------------------------------------------------------
async def run_qcluster(
    ds: Dataset,
    cols: dict[str, np.ndarray],
    all_cases: list[dict[str, Any]],
    gts: list[np.ndarray],
    tmp: Path,
) -> dict[str, Any]:
    from qcluster.settings import StorageSettings
    from qcluster.shards.base import SearchParams, SearchRequest
    from qcluster.shards.local_shard import LocalShard
    from qcluster.shards.operations import CreateFieldIndex, NamedVectors, PointsBatch, UpsertPoints

    base, queries, n = ds.base, ds.queries, ds.n
    cfg = shard_config(ds.dim, ds.n)
    shard = await LocalShard.load_or_create(tmp / "qcluster", cfg, StorageSettings())
    for key, schema in INDEXES:
        await shard.update(CreateFieldIndex(key, schema))
    for start in range(0, n, 1000):
        ids = tuple(range(start, min(start + 1000, n)))
        payloads = tuple(payload(cols, i) for i in ids)
        await shard.update(
            UpsertPoints(PointsBatch(ids, {"": NamedVectors(base[start : start + len(ids)])}, payloads))
        )
        progress("qcluster ingest", start + len(ids), n)
    await wait_fully_indexed(shard, n)
    params = SearchParams(hnsw_ef=EF)
    rows = []
    for case, gt in zip(all_cases, gts, strict=True):
        lat, res = [], []
        label = f"qcluster {case['kind']} {case['selectivity']:.1%}"
        start_t = time.perf_counter()
        for i, q in enumerate(queries):
            t0 = time.perf_counter()
            (hits,) = await shard.search(
                [SearchRequest(vector=q, limit=10, filter=case["filter"], params=params)]
            )
            lat.append((time.perf_counter() - t0) * 1000)
            res.append([h.id for h in hits])
            if i % 50 == 0 or i == len(queries) - 1:
                progress(label, i + 1, len(queries))
        rows.append(
            {
                "qps": len(queries) / (time.perf_counter() - start_t),
                "recall_at_10": recall_at_k(res, gt),
                "p50_ms": percentile(lat, 50),
                "p99_ms": percentile(lat, 99),
                "short_results": sum(1 for r in res if len(r) < min(10, int(case["mask"].sum()))),
            }
        )
    start_t = time.perf_counter()
    for q in queries:
        await shard.search([SearchRequest(vector=q, limit=10, params=params)])
    unfiltered = len(queries) / (time.perf_counter() - start_t)
    await shard.close()
    return {"rows": rows, "unfiltered_qps": unfiltered}


def summary(result: dict[str, Any]) -> str:
    widths = [10, 7, 6, 8, 8, 7, 8, 8, 8, 8]
    head = ["kind", "sel", "match", "q recall", "q QPS", "q p99", "F recall", "F QPS", "E recall", "E QPS"]
    lines = [fmt_row(head, widths)]
    for r in result["rows"]:
        lines.append(
            fmt_row(
                [
                    r["kind"],
                    f"{r['selectivity']:.1%}",
                    r["matching"],
                    r["recall_at_10"],
                    r["qps"],
                    r["p99_ms"],
                    r["faiss_recall_at_10"],
                    r["faiss_qps"],
                    r["qdrant_edge_recall_at_10"],
                    r["qdrant_edge_qps"],
                ],
                widths,
            )
        )
    lines.append(
        "unfiltered QPS: qcluster {}, faiss {}, qdrant-edge {}".format(
            *(
                f"{v:,.0f}" if v else "n/a"
                for v in (
                    result["unfiltered_qps"],
                    result["faiss_unfiltered_qps"],
                    result["qdrant_edge_unfiltered_qps"],
                )
            )
        )
    )
    lines += [
        f"{k}: {result[k]['error']}" for k in ("qcluster", "faiss", "qdrant_edge") if "error" in result[k]
    ]
    return "\n".join(lines)


def main() -> None:
    args, n, nq = bench_args(__doc__, 200, 500)
    with ticker("data + exact ground truth"):
        ds = load(args.dataset, n, nq)
        cols = make_columns(ds.labels)
        all_cases = cases(cols)
        gts = [ground_truth(ds.base, ds.queries, 10, c["mask"]) for c in all_cases]
    tmp = Path(tempfile.mkdtemp(prefix="qbench-filtered-"))
    started = time.perf_counter()
    try:
        say("== raw FAISS HNSW + IDSelectorBitmap")
        try:
            f_res = run_faiss(ds, all_cases, gts)
        except Exception as exc:
            f_res = unavailable("faiss", exc)
        say("== qdrant-edge-py with payload indexes")
        try:
            e_res = run_qdrant_edge(ds, cols, all_cases, gts, tmp)
        except Exception as exc:
            e_res = unavailable("qdrant-edge", exc)
        say("== qcluster LocalShard with payload indexes")
        if args.skip_qcluster:
            q_res = unavailable("qcluster", RuntimeError("skipped (--skip-qcluster)"))
        else:
            try:
                from qcluster.logging import setup_logging

                setup_logging("WARNING")
                q_res = asyncio.run(run_qcluster(ds, cols, all_cases, gts, tmp))
            except Exception as exc:
                q_res = unavailable("qcluster", exc)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    def row(res: dict[str, Any], i: int) -> dict[str, Any]:
        return res["rows"][i] if "rows" in res else {}

    rows = []
    for i, case in enumerate(all_cases):
        q, f, e = row(q_res, i), row(f_res, i), row(e_res, i)
        matching = int(case["mask"].sum())
        rows.append(
            {
                "kind": case["kind"],
                "selectivity": case["selectivity"],
                "correlated": case["correlated"],
                "matching": matching,
                "actual_selectivity": matching / ds.n,
                "filter": case["filter"],
                "recall_at_10": q.get("recall_at_10"),
                "qps": q.get("qps"),
                "p50_ms": q.get("p50_ms"),
                "p99_ms": q.get("p99_ms"),
                "short_results": q.get("short_results"),
                "faiss_recall_at_10": f.get("recall_at_10"),
                "faiss_qps": f.get("qps"),
                "faiss_p99_ms": f.get("p99_ms"),
                "faiss_short_results": f.get("short_results"),
                "qdrant_edge_recall_at_10": e.get("recall_at_10"),
                "qdrant_edge_qps": e.get("qps"),
                "qdrant_edge_p50_ms": e.get("p50_ms"),
                "qdrant_edge_p99_ms": e.get("p99_ms"),
                "qdrant_edge_short_results": e.get("short_results"),
            }
        )
    result = {
        "benchmark": "filtered",
        "dataset": ds.name,
        "n": ds.n,
        "dim": ds.dim,
        "queries": len(ds.queries),
        "ef": EF,
        "quick": args.quick,
        "machine": machine(),
        "elapsed_s": time.perf_counter() - started,
        "rows": rows,
        "unfiltered_qps": q_res.get("unfiltered_qps"),
        "faiss_unfiltered_qps": f_res.get("unfiltered_qps"),
        "qdrant_edge_unfiltered_qps": e_res.get("unfiltered_qps"),
        "qcluster": {k: v for k, v in q_res.items() if k != "rows"},
        "faiss": {k: v for k, v in f_res.items() if k != "rows"},
        "qdrant_edge": {k: v for k, v in e_res.items() if k != "rows"},
    }
    print(summary(result))
    write_json(args.json, result)


if __name__ == "__main__":
    main()
