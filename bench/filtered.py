"""Filtered search benchmark: recall@10, QPS and p50/p99 latency at several selectivities, random
and correlated with the vector clusters, for qcluster, raw FAISS HNSW with an id selector (the
naive baseline) and qdrant-edge-py with payload indexes.

    python bench/filtered.py [--quick] [--json PATH]
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
    clustered,
    ground_truth,
    machine,
    percentile,
    progress,
    queries_for,
    recall_at_k,
    wait_indexed,
    write_json,
)

M, EF_CONSTRUCT, EF = 16, 100, 128
SELECTIVITIES = (0.001, 0.01, 0.1, 0.5)


def make_payloads(n: int, labels: np.ndarray, seed: int = 3) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "tenant": rng.integers(0, 20, n),
        "category": labels,  # follows the vector clusters
        "price": rng.integers(0, 100_000, n),
        "sub": rng.integers(0, 1000, n),
    }


def filters(cols: dict[str, np.ndarray], n_clusters: int) -> list[dict[str, Any]]:
    """Each case: selectivity, correlated flag, a qcluster/Qdrant filter JSON, and the mask."""
    cases = []
    for s in SELECTIVITIES:
        limit = int(s * 100_000)
        cases.append(
            {
                "selectivity": s,
                "correlated": False,
                "filter": {"must": [{"key": "price", "range": {"lt": limit}}]},
                "mask": cols["price"] < limit,
            }
        )
    share = 1.0 / n_clusters
    for s in SELECTIVITIES:
        k = max(1, round(s / share))
        cats = list(range(k))
        cond: list[dict[str, Any]] = [{"key": "category", "match": {"any": [f"c{c}" for c in cats]}}]
        mask = np.isin(cols["category"], cats)
        if s < share:
            sub_limit = int(1000 * s / share)
            cond.append({"key": "sub", "range": {"lt": sub_limit}})
            mask &= cols["sub"] < sub_limit
        cases.append({"selectivity": s, "correlated": True, "filter": {"must": cond}, "mask": mask})
    return cases


def run_faiss(
    base: np.ndarray, queries: np.ndarray, cases: list[dict[str, Any]], gts: list[np.ndarray]
) -> list[dict[str, Any]]:
    import faiss

    faiss.omp_set_num_threads(2)
    index = faiss.IndexHNSWFlat(base.shape[1], M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = EF_CONSTRUCT
    index.add(base)
    faiss.omp_set_num_threads(1)
    out = []
    for case, gt in zip(cases, gts, strict=True):
        bitmap = np.packbits(case["mask"].astype(np.uint8), bitorder="little")
        sel = faiss.IDSelectorBitmap(len(base), faiss.swig_ptr(bitmap))
        params = faiss.SearchParametersHNSW()
        params.efSearch = EF
        params.sel = sel
        lat, res = [], []
        start = time.perf_counter()
        for q in queries:
            t0 = time.perf_counter()
            res.append(index.search(q[None], 10, params=params)[1][0])
            lat.append((time.perf_counter() - t0) * 1000)
        out.append(
            {"qps": len(queries) / (time.perf_counter() - start), "recall_at_10": recall_at_k(res, gt)}
        )
    return out


def run_edge(
    base: np.ndarray,
    cols: dict[str, np.ndarray],
    queries: np.ndarray,
    cases: list[dict[str, Any]],
    gts: list[np.ndarray],
    tmp: Path,
) -> tuple[list[dict[str, Any]], float | None]:
    try:
        import qdrant_edge as qe
    except ImportError:
        return [{} for _ in cases], None
    cfg = qe.EdgeConfig(
        vectors=qe.EdgeVectorParams(size=base.shape[1], distance=qe.Distance.Cosine),
        hnsw_config=qe.HnswIndexConfig(m=M, ef_construct=EF_CONSTRUCT, full_scan_threshold=10000),
    )
    shard = qe.EdgeShard.create(str(tmp / "edge"), cfg)
    for key, kind in (
        ("category", qe.PayloadSchemaType.Keyword),
        ("price", qe.PayloadSchemaType.Integer),
        ("sub", qe.PayloadSchemaType.Integer),
        ("tenant", qe.PayloadSchemaType.Keyword),
    ):
        shard.update(qe.UpdateOperation.create_field_index(key, kind))
    for start in range(0, len(base), 1000):
        pts = [
            qe.Point(id=i, vector=base[i].tolist(), payload=_payload(cols, i))
            for i in range(start, min(start + 1000, len(base)))
        ]
        shard.update(qe.UpdateOperation.upsert_points(pts))
        progress("qdrant-edge ingest", min(start + 1000, len(base)), len(base))
    shard.optimize()

    def to_edge(flt: dict[str, Any]) -> Any:
        conds = []
        for c in flt["must"]:
            if "match" in c:
                conds.append(qe.FieldCondition(key=c["key"], match=qe.MatchAny(any=c["match"]["any"])))
            else:
                conds.append(qe.FieldCondition(key=c["key"], range=qe.RangeFloat(lt=float(c["range"]["lt"]))))
        return qe.Filter(must=conds)

    params = qe.SearchParams(hnsw_ef=EF)

    def query(q: np.ndarray, flt: Any) -> list[int]:
        req = qe.QueryRequest(limit=10, query=qe.Query.Nearest(q.tolist()), params=params, filter=flt)
        return [int(p.id) for p in shard.query(req)]

    out = []
    for case, gt in zip(cases, gts, strict=True):
        flt = to_edge(case["filter"])
        lat, res = [], []
        start = time.perf_counter()
        for q in queries:
            t0 = time.perf_counter()
            res.append(query(q, flt))
            lat.append((time.perf_counter() - t0) * 1000)
        out.append(
            {"qps": len(queries) / (time.perf_counter() - start), "recall_at_10": recall_at_k(res, gt)}
        )
    start = time.perf_counter()
    for q in queries:
        query(q, None)
    unfiltered = len(queries) / (time.perf_counter() - start)
    shard.close()
    return out, unfiltered


def _payload(cols: dict[str, np.ndarray], i: int) -> dict[str, Any]:
    return {
        "tenant": f"t{int(cols['tenant'][i])}",
        "category": f"c{int(cols['category'][i])}",
        "price": int(cols["price"][i]),
        "sub": int(cols["sub"][i]),
    }


async def run_qcluster(
    base: np.ndarray,
    cols: dict[str, np.ndarray],
    queries: np.ndarray,
    cases: list[dict[str, Any]],
    gts: list[np.ndarray],
    tmp: Path,
) -> tuple[list[dict[str, Any]], float]:
    from qcluster.models.config import HnswConfig, ShardConfig, VectorParams
    from qcluster.settings import StorageSettings
    from qcluster.shards.base import SearchParams, SearchRequest
    from qcluster.shards.local_shard import LocalShard
    from qcluster.shards.operations import CreateFieldIndex, NamedVectors, PointsBatch, UpsertPoints

    cfg = ShardConfig(
        vectors={"": VectorParams(size=base.shape[1], distance="Cosine")},
        hnsw_config=HnswConfig(m=M, ef_construct=EF_CONSTRUCT),
    )
    shard = await LocalShard.load_or_create(tmp / "qcluster", cfg, StorageSettings())
    for key, schema in (
        ("category", "keyword"),
        ("price", "integer"),
        ("sub", "integer"),
        ("tenant", "keyword"),
    ):
        await shard.update(CreateFieldIndex(key, schema))
    for start in range(0, len(base), 1000):
        ids = tuple(range(start, min(start + 1000, len(base))))
        payloads = tuple(_payload(cols, i) for i in ids)
        await shard.update(
            UpsertPoints(PointsBatch(ids, {"": NamedVectors(base[start : start + len(ids)])}, payloads))
        )
        progress("qcluster ingest", start + len(ids), len(base))
    await wait_indexed(shard, len(base))
    params = SearchParams(hnsw_ef=EF)
    out = []
    for case, gt in zip(cases, gts, strict=True):
        lat, res = [], []
        start = time.perf_counter()
        for q in queries:
            t0 = time.perf_counter()
            (hits,) = await shard.search(
                [SearchRequest(vector=q, limit=10, filter=case["filter"], params=params)]
            )
            lat.append((time.perf_counter() - t0) * 1000)
            res.append([h.id for h in hits])
        out.append(
            {
                "qps": len(queries) / (time.perf_counter() - start),
                "recall_at_10": recall_at_k(res, gt),
                "p50_ms": percentile(lat, 50),
                "p99_ms": percentile(lat, 99),
                "short_results": sum(1 for r in res if len(r) < min(10, int(case["mask"].sum()))),
            }
        )
    start = time.perf_counter()
    for q in queries:
        await shard.search([SearchRequest(vector=q, limit=10, params=params)])
    unfiltered = len(queries) / (time.perf_counter() - start)
    await shard.close()
    return out, unfiltered


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    from qcluster.logging import setup_logging

    setup_logging("WARNING")
    n = 20_000 if args.quick else 100_000
    n_clusters = 100
    base, labels = clustered(n, 128, clusters=n_clusters)
    queries = queries_for(200 if args.quick else 500, 128, seed=9)
    cols = make_payloads(n, labels)
    cases = filters(cols, n_clusters)
    gts = [ground_truth(base, queries, 10, c["mask"]) for c in cases]
    tmp = Path(tempfile.mkdtemp(prefix="qbench-f-"))
    try:
        faiss_rows = run_faiss(base, queries, cases, gts)
        edge_rows, edge_unf = run_edge(base, cols, queries, cases, gts, tmp)
        q_rows, q_unf = asyncio.run(run_qcluster(base, cols, queries, cases, gts, tmp))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    rows = []
    for case, q, f, e in zip(cases, q_rows, faiss_rows, edge_rows, strict=True):
        rows.append(
            {
                "selectivity": case["selectivity"],
                "correlated": case["correlated"],
                "matching": int(case["mask"].sum()),
                "recall_at_10": q["recall_at_10"],
                "qps": q["qps"],
                "p50_ms": q["p50_ms"],
                "p99_ms": q["p99_ms"],
                "short_results": q["short_results"],
                "faiss_recall_at_10": f["recall_at_10"],
                "faiss_qps": f["qps"],
                "qdrant_edge_recall_at_10": e.get("recall_at_10"),
                "qdrant_edge_qps": e.get("qps"),
            }
        )
    write_json(
        args.json,
        {
            "benchmark": "filtered",
            "n": n,
            "machine": machine(),
            "rows": rows,
            "unfiltered_qps": q_unf,
            "qdrant_edge_unfiltered_qps": edge_unf,
        },
    )


if __name__ == "__main__":
    main()
