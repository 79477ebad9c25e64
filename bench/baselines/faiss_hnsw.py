"""Raw FAISS HNSW: the floor of qcluster's overhead.

``IndexHNSWFlat`` (M=16, efConstruction=100, inner product on unit vectors = cosine), searched one
query per call at a given efSearch, optionally restricted by an ``IDSelectorBitmap`` (the naive
filtered baseline: the graph is walked as usual and disallowed points are skipped, so recall
collapses when few points match or when the allowed points sit away from the query).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from bench.common import percentile, progress, ticker
from bench.datasets import recall_at_k

M, EF_CONSTRUCTION = 16, 100


class FaissHnsw:
    def __init__(self, dim: int, m: int = M, ef_construction: int = EF_CONSTRUCTION) -> None:
        import faiss

        self._faiss = faiss
        self.index = faiss.IndexHNSWFlat(dim, m, faiss.METRIC_INNER_PRODUCT)
        self.index.hnsw.efConstruction = ef_construction
        self._keep: list[Any] = []  # bitmaps referenced by live selectors

    def build(self, base: np.ndarray, threads: int = 2) -> float:
        """Add ``base`` in one call with ``threads`` OpenMP threads; returns seconds. (One call:
        adding in chunks would cost extra OpenMP synchronisation on a busy machine.)"""
        faiss = self._faiss
        faiss.omp_set_num_threads(threads)
        start = time.perf_counter()
        with ticker(f"faiss HNSW build ({len(base):,} vectors)"):
            self.index.add(np.ascontiguousarray(base))
        elapsed = time.perf_counter() - start
        faiss.omp_set_num_threads(1)  # single-query search: one thread, no OpenMP overhead
        return elapsed

    def params(self, ef: int, mask: np.ndarray | None = None) -> Any:
        """Search parameters at ``ef``, restricted to ``mask`` (bool per row) when given."""
        faiss = self._faiss
        params = faiss.SearchParametersHNSW()
        params.efSearch = ef
        if mask is not None:
            bitmap = np.packbits(mask.astype(np.uint8), bitorder="little")
            sel = faiss.IDSelectorBitmap(len(mask), faiss.swig_ptr(bitmap))
            self._keep += [bitmap, sel]
            params.sel = sel
        return params

    def search(self, query: np.ndarray, k: int, params: Any) -> np.ndarray:
        ids = self.index.search(query[None], k, params=params)[1][0]
        return ids[ids >= 0]

    def run_queries(
        self,
        queries: np.ndarray,
        gt: np.ndarray,
        ef: int,
        mask: np.ndarray | None = None,
        k: int = 10,
        label: str = "faiss",
    ) -> dict[str, Any]:
        """Single-query search loop: QPS, p50/p99 ms, recall@k, and how many queries came back
        with fewer than k hits although k points were allowed."""
        params = self.params(ef, mask)
        lat: list[float] = []
        res: list[np.ndarray] = []
        step = max(1, len(queries) // 20)
        start = time.perf_counter()
        for i, q in enumerate(queries):
            t0 = time.perf_counter()
            res.append(self.search(q, k, params))
            lat.append((time.perf_counter() - t0) * 1000)
            if i % step == 0 or i == len(queries) - 1:
                progress(label, i + 1, len(queries))
        elapsed = time.perf_counter() - start
        allowed = int(self.index.ntotal) if mask is None else int(mask.sum())
        return {
            "qps": len(queries) / elapsed,
            "recall_at_10": recall_at_k(res, gt, k),
            "p50_ms": percentile(lat, 50),
            "p99_ms": percentile(lat, 99),
            "short_results": sum(1 for r in res if len(r) < min(k, allowed)),
        }


def memory_per_vector(
    flat: FaissHnsw, base: np.ndarray, pq_compression: int = 16, train_n: int = 10_000
) -> dict[str, float]:
    """Bytes per vector of serialised FAISS HNSW indexes over ``base`` (vectors or codes + graph
    + codebooks): plain float32 (``flat``, already built on ``base``), SQ8, and PQ at
    ``pq_compression`` (x16: 128-dim -> 32 bytes).

    The quantized indexes reuse ``flat``'s graph (copied) with their own trained storage: only
    sizes are measured here, so PQ k-means runs few iterations on a subsample (FAISS k-means on
    4-dim sub-vectors is slow, and code quality does not change the size)."""
    faiss = flat._faiss
    dim, n = base.shape[1], len(base)
    if flat.index.ntotal != n:
        raise ValueError(f"flat index holds {flat.index.ntotal} vectors, base has {n}")
    pq_m = max(1, dim * 4 // pq_compression)
    while dim % pq_m:
        pq_m -= 1
    m = flat.index.hnsw.nb_neighbors(1)
    train = base[:train_n]
    out = {"plain": len(faiss.serialize_index(flat.index)) / n}
    quantized = {
        "sq8": faiss.IndexHNSWSQ(dim, faiss.ScalarQuantizer.QT_8bit, m, faiss.METRIC_INNER_PRODUCT),
        "pq": faiss.IndexHNSWPQ(dim, pq_m, m, 8, faiss.METRIC_INNER_PRODUCT),
    }
    cp = faiss.downcast_index(quantized["pq"].storage).pq.cp
    cp.niter, cp.max_points_per_centroid = 4, 16
    for name, index in quantized.items():
        with ticker(f"faiss memory ({name})"):
            index.train(train)
            index.storage.add(base)
            index.hnsw = flat.index.hnsw  # copies the graph
            index.ntotal = n
            out[name] = len(faiss.serialize_index(index)) / n
    return out
