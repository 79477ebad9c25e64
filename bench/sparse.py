"""Sparse search benchmark: QPS and recall@10 of qcluster's inverted index against qdrant-edge-py
(Qdrant's own sparse index) on the same BM25-weighted documents.

    python bench/sparse.py [--quick] [--json PATH] [--n N] [--queries Q] [--repeats R] [--no-real]

Data (``bench/sparse_data.py``): a synthetic corpus of Zipf-distributed terms over a vocabulary of
30,000, 50-200 distinct terms per document, BM25 weights; queries of 3-12 terms picked from fresh
documents by their BM25 weight (value 1.0 each). Cases:
- ``dot``: documents hold full BM25 weights (IDF folded in), plain dot product;
- ``idf``: documents hold the BM25 tf part, the vector has ``modifier: idf`` in both engines (the
  engine weighs each query term by its IDF over the shard, Qdrant's BM25 recipe);
- ``real dot`` (when the MiniLM set's ``base_texts.jsonl`` is found, see ``bench/datasets.py``):
  BM25 over 20,000 real sentences, the query sentences as queries.
Ground truth: exact dot products of every document, computed row-wise in float64 (no inverted
index); recall counts documents tied with the 10th exact score as right.

Method (equal work, as ``bench/filtered.py``): each engine holds the documents in one shard with
one sparse vector (no dense vector), built once per case and checked fully indexed (qdrant-edge:
``optimize()`` with ``default_segment_number`` 1, one segment; qcluster: every point in one sealed
segment with its inverted index). Requests are built before timing; the engines take turns by
chunks of 10 queries (``common.interleaved``), an engine's QPS is its query count over the sum of
its latencies; every case runs ``--repeats`` times (default 3), figures are medians (min and max
kept) and the qcluster / qdrant-edge QPS ratio is taken per repeat, its median reported.
Full: 100k documents, 500 queries; --quick: 20k, 200.
"""

from __future__ import annotations

import argparse
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
    Call,
    fmt_row,
    interleaved,
    machine,
    progress,
    say,
    stats,
    ticker,
    unavailable,
    write_json,
)
from bench.datasets import MINILM_DIR
from bench.qcluster_shard import sparse_indexed, wait_fully_indexed
from bench.sparse_data import SparseSet, Truth, ground_truth, recall, sentences, synthetic

K = 10
NAME = "text"
ENGINES = ("qcluster", "qdrant_edge")
BATCH = 1000


def case_list(ds: SparseSet, real: SparseSet | None) -> list[dict[str, Any]]:
    out = [
        {"case": "dot", "data": ds, "idf": False},
        {"case": "idf", "data": ds, "idf": True},
    ]
    if real is not None:
        out.append({"case": "real dot", "data": real, "idf": False})
    return out


def rows_of(ds: SparseSet, lo: int, hi: int, idf: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR block of documents ``lo..hi-1`` (indptr rebased to 0)."""
    a, b = int(ds.indptr[lo]), int(ds.indptr[hi])
    vals = ds.tf_values if idf else ds.values
    return ds.indptr[lo : hi + 1] - a, ds.indices[a:b], vals[a:b]


# ---------------------------------------------------------------------------------------------
# engines: one shard per case, built once
# ---------------------------------------------------------------------------------------------
class EdgeRun:
    """qdrant-edge-py with one sparse vector, optimized into one segment."""

    def __init__(self, case: dict[str, Any], path: Path) -> None:
        import qdrant_edge as qe

        self.qe = qe
        ds: SparseSet = case["data"]
        params = qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf if case["idf"] else None)
        # indexing_threshold 1 KB: optimize() turns every segment, however small, into one
        # immutable indexed segment (qcluster indexes its tail the same way)
        config = qe.EdgeConfig(
            sparse_vectors={NAME: params},
            optimizers=qe.EdgeOptimizersConfig(default_segment_number=1, indexing_threshold=1),
        )
        self.shard = qe.EdgeShard.create(str(path), config)
        start = time.perf_counter()
        for lo in range(0, ds.n, BATCH):
            hi = min(lo + BATCH, ds.n)
            indptr, idx, vals = rows_of(ds, lo, hi, case["idf"])
            idx_l, vals_l, ptr = idx.tolist(), vals.tolist(), indptr.tolist()
            pts = [
                qe.Point(
                    id=lo + j,
                    vector={NAME: qe.SparseVector(idx_l[ptr[j] : ptr[j + 1]], vals_l[ptr[j] : ptr[j + 1]])},
                )
                for j in range(hi - lo)
            ]
            self.shard.update(qe.UpdateOperation.upsert_points(pts))
            progress(f"qdrant-edge ingest ({case['case']})", hi, ds.n)
        self.ingest_s = time.perf_counter() - start
        start = time.perf_counter()
        with ticker("qdrant-edge optimize"):
            self.shard.optimize()
        info = self.shard.info()
        self.info = {
            "points": int(info.points_count),
            "segments": int(info.segments_count),
            "indexed_vectors": int(info.indexed_vectors_count),
            "ingest_s": self.ingest_s,
            "optimize_s": time.perf_counter() - start,
        }
        # one optimized segment, plus the empty appendable segment Qdrant keeps for new points
        if self.info["points"] != ds.n or self.info["segments"] > 2 or self.info["indexed_vectors"] < ds.n:
            raise RuntimeError(f"qdrant-edge: expected {ds.n} points in one segment, got {self.info}")

    def calls(self, case: dict[str, Any]) -> list[Call]:
        qe = self.qe
        reqs = [
            qe.QueryRequest(
                limit=K, query=qe.Query.Nearest(qe.SparseVector(q.tolist(), [1.0] * len(q)), using=NAME)
            )
            for q in case["data"].queries
        ]
        query = self.shard.query
        return [lambda r=r: [int(p.id) for p in query(r)] for r in reqs]

    def close(self) -> None:
        self.shard.close()


class QclusterRun:
    """qcluster's LocalShard with one sparse vector, driven in process like qdrant-edge."""

    def __init__(self) -> None:
        self.shard: Any = None
        self.info: dict[str, Any] = {}

    async def build(self, case: dict[str, Any], path: Path) -> None:
        from qcluster.models.config import OptimizersConfig, ShardConfig, SparseVectorParams
        from qcluster.settings import StorageSettings
        from qcluster.shards.local_shard import LocalShard
        from qcluster.shards.operations import PointsBatch, UpsertPoints
        from qcluster.shards.sparse.vector import SparseColumn

        ds: SparseSet = case["data"]
        config = ShardConfig(
            vectors={},
            sparse_vectors={NAME: SparseVectorParams(modifier="idf" if case["idf"] else None)},
            optimizer_config=OptimizersConfig(),  # Qdrant's defaults: one segment in the end
        )
        self.shard = await LocalShard.load_or_create(path, config, StorageSettings())
        start = time.perf_counter()
        for lo in range(0, ds.n, BATCH):
            hi = min(lo + BATCH, ds.n)
            indptr, idx, vals = rows_of(ds, lo, hi, case["idf"])
            column = SparseColumn(indptr.astype(np.int64), idx.astype(np.uint32), vals.astype(np.float32))
            await self.shard.update(UpsertPoints(PointsBatch(tuple(range(lo, hi)), {NAME: column})))
            progress(f"qcluster ingest ({case['case']})", hi, ds.n)
        ingest_s = time.perf_counter() - start
        start = time.perf_counter()
        info = await wait_fully_indexed(self.shard, ds.n, indexed=sparse_indexed)
        sealed = [s for s in self.shard.set.segments if s.live_count]
        self.info = {
            "points": int(info.points_count),
            "segments": len(sealed),
            "indexed_vectors": sparse_indexed(self.shard),
            "ingest_s": ingest_s,
            "optimize_s": time.perf_counter() - start,
        }
        if self.info["points"] != ds.n or len(sealed) != 1:
            raise RuntimeError(f"qcluster: expected {ds.n} points in one segment, got {self.info}")

    def calls(self, case: dict[str, Any]) -> list[Call]:
        from qcluster.shards.base import SearchRequest
        from qcluster.shards.sparse.vector import SparseVector

        reqs = [
            SearchRequest(
                vector=SparseVector(q.astype(np.uint32), np.ones(len(q), np.float32)), using=NAME, limit=K
            )
            for q in case["data"].queries
        ]
        search = self.shard.search

        async def one(req: Any) -> list[int]:
            (hits,) = await search([req])
            return [int(h.id) for h in hits]

        return [lambda r=r: one(r) for r in reqs]

    async def close(self) -> None:
        if self.shard is not None:
            await self.shard.close()


# ---------------------------------------------------------------------------------------------
# the run: build, repeat interleaved, summarise
# ---------------------------------------------------------------------------------------------
async def build(case: dict[str, Any], tmp: Path, args: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    engines: dict[str, Any] = {}
    errors: dict[str, Any] = {}
    folder = tmp / case["case"].replace(" ", "-")
    say(f"== {case['case']}: qdrant-edge-py, one sparse vector")
    try:
        engines["qdrant_edge"] = EdgeRun(case, folder / "edge")
    except Exception as exc:
        errors["qdrant_edge"] = unavailable("qdrant-edge", exc)
    say(f"== {case['case']}: qcluster LocalShard, one sparse vector")
    if args.skip_qcluster:
        errors["qcluster"] = unavailable("qcluster", RuntimeError("skipped (--skip-qcluster)"))
    else:
        try:
            q = QclusterRun()
            engines["qcluster"] = q
            await q.build(case, folder / "qcluster")
        except Exception as exc:
            errors["qcluster"] = unavailable("qcluster", exc)
            await engines.pop("qcluster").close()
    return engines, errors


async def run_all(cases: list[dict[str, Any]], tmp: Path, args: Any) -> dict[str, Any]:
    from qcluster.logging import setup_logging

    setup_logging("WARNING")
    built = []
    try:
        for case in cases:
            built.append(await build(case, tmp, args))
        runs: list[dict[str, list[dict[str, Any]]]] = [{n: [] for n in engines} for engines, _ in built]
        for rep in range(args.repeats):
            say(f"== repeat {rep + 1} of {args.repeats}")
            for ci, case in enumerate(cases):
                engines = built[ci][0]
                if not engines:
                    continue
                truth: Truth = case["truth"]
                gt = np.full((len(truth.top), K), -1, dtype=np.int64)
                for i, t in enumerate(truth.top):
                    gt[i, : len(t)] = t
                allowed = [min(K, int(m)) for m in truth.matching]
                calls = {n: engines[n].calls(case) for n in ENGINES if n in engines}
                rows = await interleaved(
                    calls, gt, allowed, case["case"], K, recall=lambda res, t=truth: recall(res, t, K)
                )
                for name, row in rows.items():
                    runs[ci][name].append(row)
    finally:
        for engines, _ in built:
            for name, eng in engines.items():
                if name == "qcluster":
                    await eng.close()
                else:
                    eng.close()
    return {
        "runs": runs,
        "errors": [errs for _, errs in built],
        "info": [{n: e.info for n, e in engines.items()} for engines, _ in built],
    }


def summarise(
    case: dict[str, Any], runs: dict[str, list[dict[str, Any]]], info: Any, errs: Any
) -> dict[str, Any]:
    ds: SparseSet = case["data"]
    truth: Truth = case["truth"]
    row: dict[str, Any] = {
        "case": case["case"],
        "dataset": ds.name,
        "n": ds.n,
        "queries": len(ds.queries),
        "nnz_per_doc": ds.nnz / max(1, ds.n),
        "terms_per_query": float(np.mean([len(q) for q in ds.queries])),
        "matching_median": float(np.median(truth.matching)),
        "modifier": "idf" if case["idf"] else "none",
        "engines_info": info,
        "errors": errs,
    }
    for engine in ENGINES:
        reps = runs.get(engine) or []
        if not reps:
            continue
        prefix = "" if engine == "qcluster" else f"{engine}_"
        qps = stats([r["qps"] for r in reps])
        row[f"{prefix}qps"], row[f"{prefix}qps_min"], row[f"{prefix}qps_max"] = (
            qps["median"],
            qps["min"],
            qps["max"],
        )
        for key in ("recall_at_10", "recall_at_10_ids", "p50_ms", "p99_ms"):
            row[f"{prefix}{key}"] = stats([r[key] for r in reps])["median"]
        row[f"{prefix}recall_at_10_min"] = min(r["recall_at_10"] for r in reps)
        row[f"{prefix}short_results"] = max(r["short_results"] for r in reps)
        row[f"{prefix}runs"] = reps
    q, e = runs.get("qcluster") or [], runs.get("qdrant_edge") or []
    spread = stats([a["qps"] / b["qps"] for a, b in zip(q, e, strict=False)])
    row["ratio_vs_edge"], row["ratio_vs_edge_min"], row["ratio_vs_edge_max"] = (
        spread["median"],
        spread["min"],
        spread["max"],
    )
    return row


def summary(result: dict[str, Any]) -> str:
    widths = [9, 8, 8, 9, 8, 9, 16]
    head = ["case", "q recall", "q QPS", "E recall", "E QPS", "q p50 ms", "q/E (min-max)"]
    lines = [fmt_row(head, widths)]
    for r in result["rows"]:
        ratio = None
        if r.get("ratio_vs_edge") is not None:
            ratio = f"{r['ratio_vs_edge']:.2f} ({r['ratio_vs_edge_min']:.2f}-{r['ratio_vs_edge_max']:.2f})"
        lines.append(
            fmt_row(
                [
                    r["case"],
                    r.get("recall_at_10"),
                    r.get("qps"),
                    r.get("qdrant_edge_recall_at_10"),
                    r.get("qdrant_edge_qps"),
                    r.get("p50_ms"),
                    ratio,
                ],
                widths,
            )
        )
    lines.append(f"medians of {result['repeats']} repeats")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="20k documents, 200 queries")
    ap.add_argument("--json", default=None, help="write the results here")
    ap.add_argument("--n", type=int, default=None, help="number of documents (synthetic)")
    ap.add_argument("--queries", type=int, default=None, help="number of queries")
    ap.add_argument("--repeats", type=int, default=3, help="timed repeats per figure (median kept)")
    ap.add_argument("--no-real", action="store_true", help="leave out the real-sentence case")
    ap.add_argument("--skip-qcluster", action="store_true", help="reference engine only")
    args = ap.parse_args()
    n = args.n or (20_000 if args.quick else 100_000)
    nq = args.queries or (200 if args.quick else 500)
    started = time.perf_counter()
    say("== data + exact ground truth")
    ds = synthetic(n, nq)
    real = None
    if not args.no_real and (MINILM_DIR / "base_texts.jsonl").exists():
        real = sentences(MINILM_DIR, nq)
    else:
        say(f"real sentences: not used ({MINILM_DIR / 'base_texts.jsonl'} not found or --no-real)")
    cases = case_list(ds, real)
    for case in cases:
        case["truth"] = ground_truth(case["data"], K, case["idf"], f"exact ground truth ({case['case']})")
    tmp = Path(tempfile.mkdtemp(prefix="qbench-sparse-"))
    try:
        out = asyncio.run(run_all(cases, tmp, args))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    rows = [summarise(case, out["runs"][i], out["info"][i], out["errors"][i]) for i, case in enumerate(cases)]
    result = {
        "benchmark": "sparse",
        "dataset": ds.name,
        "n": ds.n,
        "queries": nq,
        "vocabulary": 30_000,
        "k": K,
        "quick": args.quick,
        "repeats": args.repeats,
        "machine": machine(),
        "elapsed_s": time.perf_counter() - started,
        "rows": rows,
        "errors": {f"{i}:{k}": v for i, errs in enumerate(out["errors"]) for k, v in errs.items()},
    }
    print(summary(result))
    write_json(args.json, result)


if __name__ == "__main__":
    main()
