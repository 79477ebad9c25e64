"""Exact search over chosen rows of a segment's float vectors, with FAISS's SIMD kernels.

``exact_rows(queries, vectors, rows, k, distance)`` scores only ``rows`` (sorted offsets) of
``vectors`` (the segment's float32 array, often memory-mapped) and keeps the best ``k`` per
query in a C heap: no gathered copy of the rows, no score matrix, no BLAS. One query runs on the
calling thread only (FAISS's ``*_by_idx`` kernels parallelise over queries, never within one),
so a single-query search does not wake a thread team that a busy machine may not schedule.

Manhattan has no FAISS kernel: those rows are gathered and scored by numpy (``distance.py``).
Results follow ``distance.py``: (Qdrant scores [q, k] best first, offsets [q, k]; -1 / nan in
empty slots), ``threshold`` applied.
"""

from __future__ import annotations

import threading

import numpy as np

from qcluster.models.config import Distance
from qcluster.shards.distance import empty_result, exact_top_k, higher_is_better
from qcluster.shards.index.plan import F32, I64, faiss, swig_ptr

_local = threading.local()
_ARANGE: list[I64] = [np.arange(0, dtype=np.int64)]


def single_thread() -> None:
    """Make FAISS calls from this thread use one OpenMP thread (set once per thread).

    Search threads (the event loop's inline path and the shard's search pool) run one query at a
    time; parallelism comes from running several of them. A team of OpenMP threads per query only
    adds wake-ups and barriers, which cost milliseconds when the cores are shared."""
    if not getattr(_local, "single", False):
        faiss.omp_set_num_threads(1)
        _local.single = True


def all_rows(size: int) -> I64:
    """``arange(size)`` as int64, shared (read-only: never write into the result)."""
    arr = _ARANGE[0]
    if len(arr) < size:
        arr = np.arange(max(size, 2 * len(arr)), dtype=np.int64)
        arr.flags.writeable = False
        _ARANGE[0] = arr
    return arr[:size]


def exact_rows(
    queries: F32,
    vectors: F32,
    rows: I64,
    k: int,
    distance: Distance,
    threshold: float | None = None,
) -> tuple[F32, I64]:
    """Best ``k`` of ``rows`` for each query (``rows`` sorted or not; offsets into ``vectors``)."""
    nq, n = len(queries), len(rows)
    if nq == 0 or k <= 0 or n == 0:
        return empty_result(nq, max(k, 0))
    if distance == "Manhattan" or not vectors.flags.c_contiguous:
        s, o = exact_top_k(queries, np.asarray(vectors[rows]), k, distance, None, threshold)
        return s, np.where(o >= 0, rows[np.maximum(o, 0)], -1).astype(np.int64)
    q = queries
    if q.dtype != np.float32 or not q.flags.c_contiguous:
        q = np.ascontiguousarray(q, dtype=np.float32)
    if rows.dtype != np.int64 or not rows.flags.c_contiguous:
        rows = np.ascontiguousarray(rows, dtype=np.int64)
    kk = k if k < n else n
    vals = np.empty((nq, kk), np.float32)
    labels = np.empty((nq, kk), np.int64)
    single_thread()
    knn = faiss.knn_L2sqr_by_idx if distance == "Euclid" else faiss.knn_inner_products_by_idx
    knn(
        swig_ptr(q),
        swig_ptr(vectors),
        swig_ptr(rows),
        q.shape[1],
        nq,
        len(vectors),
        n,
        kk,
        swig_ptr(vals),
        swig_ptr(labels),
        0,
    )
    if distance == "Euclid":
        np.sqrt(np.maximum(vals, 0.0, out=vals), out=vals)
    if threshold is not None:  # (with kk <= n rows every slot is filled: no -1 to mark)
        missing = (vals < threshold) if higher_is_better(distance) else (vals > threshold)
        if missing.any():
            labels[missing] = -1
            vals[missing] = np.nan
    if kk < k:
        labels = np.pad(labels, ((0, 0), (0, k - kk)), constant_values=-1)
        vals = np.pad(vals, ((0, 0), (0, k - kk)), constant_values=np.nan)
    return vals, labels
