"""Shard engine benchmark: qcluster's LocalShard next to raw FAISS HNSW and qdrant-edge-py.

    python bench/engine.py [--quick] [--json PATH]

Same data, same HNSW parameters (M=16, ef_construct=100, cosine), single query per call.
Prints and writes: ingest rate to searchable, time to fully indexed, search QPS / recall@10 at
ef 64/128/256, memory per vector (plain / SQ8 / PQ), reopen time.
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
    progress,
    queries_for,
    recall_at_k,
    timed_loop,
    wait_indexed,
    write_json,
)

EFS = (64, 128, 256)
M, EF_CONSTRUCT = 16, 100


def run_faiss(base: np.ndarray, queries: np.ndarray, gt: np.ndarray) -> dict[str, Any]:
    import faiss

    faiss.omp_set_num_threads(2)
    t0 = time.perf_counter()
    index = faiss.IndexHNSWFlat(base.shape[1], M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = EF_CONSTRUCT
    index.add(base)
    build = time.perf_counter() - t0
    faiss.omp_set_num_threads(1)
    out: dict[str, Any] = {"index_build_s": build}
    for ef in EFS:
        params = faiss.SearchParametersHNSW()
        params.efSearch = ef
        qps, _, res = timed_loop(
            lambda i, params=params: index.search(queries[i : i + 1], 10, params=params)[1][0],
            len(queries),
            f"faiss ef={ef}",
        )
        out[f"ef{ef}"] = {"qps": qps, "recall_at_10": recall_at_k(res, gt)}
    return out


def run_qdrant_edge(base: np.ndarray, queries: np.ndarray, gt: np.ndarray, tmp: Path) -> dict[str, Any]:
    try:
        import qdrant_edge as qe
    except ImportError as exc:
        return {"error": f"qdrant-edge-py not available ({exc})"}
    path = tmp / "edge"
    cfg = qe.EdgeConfig(
        vectors=qe.EdgeVectorParams(size=base.shape[1], distance=qe.Distance.Cosine),
        hnsw_config=qe.HnswIndexConfig(m=M, ef_construct=EF_CONSTRUCT, full_scan_threshold=10000),
    )
    shard = qe.EdgeShard.create(str(path), cfg)
    t0 = time.perf_counter()
    batch = 1000
    for start in range(0, len(base), batch):
        pts = [
            qe.Point(id=start + j, vector=base[start + j].tolist(), payload=None)
            for j in range(min(batch, len(base) - start))
        ]
        shard.update(qe.UpdateOperation.upsert_points(pts))
        progress("qdrant-edge ingest", min(start + batch, len(base)), len(base))
    ingest = time.perf_counter() - t0
    shard.optimize()
    indexed = time.perf_counter() - t0
    info = shard.info()
    out: dict[str, Any] = {
        "ingest_points_per_s": len(base) / ingest,
        "index_build_s": indexed,
        "indexed_vectors": info.indexed_vectors_count,
        "segments": info.segments_count,
    }
    for ef in EFS:
        params = qe.SearchParams(hnsw_ef=ef)

        def one(i: int, params: Any = params) -> list[int]:
            req = qe.QueryRequest(limit=10, query=qe.Query.Nearest(queries[i].tolist()), params=params)
            return [int(p.id) for p in shard.query(req)]

        qps, _, res = timed_loop(one, len(queries), f"qdrant-edge ef={ef}")
        out[f"ef{ef}"] = {"qps": qps, "recall_at_10": recall_at_k(res, gt)}
    shard.close()
    return out


async def run_qcluster(base: np.ndarray, queries: np.ndarray, gt: np.ndarray, tmp: Path) -> dict[str, Any]:
    from qcluster.models.config import (
        HnswConfig,
        ProductQuantization,
        ProductQuantizationConfig,
        ScalarQuantization,
        ScalarQuantizationConfig,
        ShardConfig,
        VectorParams,
    )
    from qcluster.settings import StorageSettings, WalSettings
    from qcluster.shards.base import SearchParams, SearchRequest
    from qcluster.shards.index import VectorIndex
    from qcluster.shards.local_shard import LocalShard
    from qcluster.shards.operations import NamedVectors, PointsBatch, UpsertPoints

    cfg = ShardConfig(
        vectors={"": VectorParams(size=base.shape[1], distance="Cosine")},
        hnsw_config=HnswConfig(m=M, ef_construct=EF_CONSTRUCT),
    )
    storage = StorageSettings(wal=WalSettings(durability="group"))
    path = tmp / "qcluster"
    shard = await LocalShard.load_or_create(path, cfg, storage)
    t0 = time.perf_counter()
    batch = 1000
    for start in range(0, len(base), batch):
        ids = tuple(range(start, min(start + batch, len(base))))
        await shard.update(UpsertPoints(PointsBatch(ids, {"": NamedVectors(base[start : start + len(ids)])})))
        progress("qcluster ingest", start + len(ids), len(base))
    ingest = time.perf_counter() - t0
    info = await wait_indexed(shard, len(base))
    indexed = time.perf_counter() - t0
    out: dict[str, Any] = {
        "ingest_points_per_s": len(base) / ingest,
        "index_build_s": indexed,
        "segments": info.segments_count,
    }
    loop = asyncio.get_running_loop()
    for ef in EFS:
        params = SearchParams(hnsw_ef=ef)
        reqs = [SearchRequest(vector=q, limit=10, params=params) for q in queries]
        lat: list[float] = []
        res = []
        start = time.perf_counter()
        for i, req in enumerate(reqs):
            t1 = time.perf_counter()
            (hits,) = await shard.search([req])
            lat.append(time.perf_counter() - t1)
            res.append([h.id for h in hits])
            if i % 100 == 0 or i == len(reqs) - 1:
                progress(f"qcluster ef={ef}", i + 1, len(reqs))
        qps = len(reqs) / (time.perf_counter() - start)
        out[f"ef{ef}"] = {"qps": qps, "recall_at_10": recall_at_k(res, gt)}
    del loop
    await shard.close()
    t1 = time.perf_counter()
    shard = await LocalShard.load_or_create(path, cfg, storage)
    out["reopen_s"] = time.perf_counter() - t1
    assert (await shard.info()).points_count == len(base)
    await shard.close()
    # memory per vector: the index's own RAM (codes + graph); originals stay memory-mapped on disk
    sample = base[: min(len(base), 20000)]
    mem = {}
    for name, quant in (
        ("plain", None),
        ("sq8", ScalarQuantization(scalar=ScalarQuantizationConfig(quantile=0.99))),
        ("pq", ProductQuantization(product=ProductQuantizationConfig(compression="x16"))),
    ):
        idx = VectorIndex.build(
            sample, "Cosine", HnswConfig(m=M, ef_construct=EF_CONSTRUCT), quant, threads=2
        )
        mem[name] = idx.memory_bytes() / len(sample)
    out["memory_bytes_per_vector"] = mem
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", default=None)
    ap.add_argument("--n", type=int, default=None)
    args = ap.parse_args()
    from qcluster.logging import setup_logging

    setup_logging("WARNING")
    n = args.n or (20_000 if args.quick else 100_000)
    dim = 128
    nq = 500 if args.quick else 1000
    base, _ = clustered(n, dim)
    queries = queries_for(nq, dim)
    gt = ground_truth(base, queries)
    tmp = Path(tempfile.mkdtemp(prefix="qbench-"))
    try:
        faiss_res = run_faiss(base, queries, gt)
        edge_res = run_qdrant_edge(base, queries, gt, tmp)
        try:
            q_res = asyncio.run(run_qcluster(base, queries, gt, tmp))
        except Exception as exc:  # the reference numbers still get reported
            q_res = {"error": f"qcluster: not available ({exc})"}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    def at(res: dict[str, Any], key: str, ef: int = 128) -> Any:
        return res.get(f"ef{ef}", {}).get(key)

    result = {
        "benchmark": "engine",
        "n": n,
        "dim": dim,
        "queries": nq,
        "machine": machine(),
        "recall_at_10": at(q_res, "recall_at_10"),
        "search_qps": at(q_res, "qps"),
        "faiss_search_qps": at(faiss_res, "qps"),
        "faiss_recall_at_10": at(faiss_res, "recall_at_10"),
        "qdrant_edge_search_qps": at(edge_res, "qps"),
        "qdrant_edge_recall_at_10": at(edge_res, "recall_at_10"),
        "ingest_points_per_s": q_res.get("ingest_points_per_s"),
        "index_build_s": q_res.get("index_build_s"),
        "qdrant_edge_index_build_s": edge_res.get("index_build_s"),
        "qdrant_edge_ingest_points_per_s": edge_res.get("ingest_points_per_s"),
        "faiss_index_build_s": faiss_res.get("index_build_s"),
        "reopen_s": q_res.get("reopen_s"),
        "memory_bytes_per_vector": q_res.get("memory_bytes_per_vector"),
        "qcluster": q_res,
        "faiss": faiss_res,
        "qdrant_edge": edge_res,
    }
    write_json(args.json, result)


if __name__ == "__main__":
    main()
