"""Sparse search scores computed the slow, obvious way, for tests to compare the engine against."""

from __future__ import annotations

import math

import numpy as np

from qcluster.shards.sparse.vector import SparseVector


def brute(docs: dict[int, SparseVector], q: SparseVector, idf: bool) -> dict[int, float]:
    """Point id -> dot product with ``q`` for every document sharing a term with it; with ``idf``
    each query weight is scaled by the term's BM25 IDF over ``docs`` (kept in float32, as the
    engine keeps it)."""
    weights = q.values.astype(np.float64)
    if idf:
        n = len(docs)
        df = [sum(1 for d in docs.values() if t in d.indices) for t in q.indices.tolist()]
        weights = weights * np.array([math.log((n - f + 0.5) / (f + 0.5) + 1.0) for f in df])
        weights = weights.astype(np.float32).astype(np.float64)
    qw = dict(zip(q.indices.tolist(), weights.tolist(), strict=True))
    out = {}
    for pid, d in docs.items():
        shared = [(i, v) for i, v in zip(d.indices.tolist(), d.values.tolist(), strict=True) if i in qw]
        if shared:
            out[pid] = sum(qw[i] * v for i, v in shared)
    return out
