"""Multivectors (late interaction): MaxSim scoring and exact search inside one segment.

A multivector is a ``[rows, dim]`` matrix per point (Cosine rows are unit length). MaxSim of a
query matrix ``Q`` against a stored matrix ``D`` is ``sum over q in Q of max over d in D of
sim(q, d)``, where ``sim`` is the dot product for Cosine / Dot and the negated squared L2 / the
negated L1 distance for Euclid / Manhattan (Qdrant's own similarity values); larger is better.
The score reported is MaxSim for Cosine / Dot, and, as Qdrant reports it, ``sqrt(-MaxSim)`` for
Euclid and ``-MaxSim`` for Manhattan (smaller is better there, as for single vectors).

Search is exact: every candidate's rows are scored (in blocks, so temporaries stay ~16 MB).
MaxSim is the rescoring stage of the usual pattern (a single-vector prefetch finds candidates,
the multivector query reranks them), where the candidate set is small.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from qcluster.models.config import Distance
from qcluster.shards.distance import score_matrix
from qcluster.shards.ragged import Csr

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]
_BUDGET = 1 << 22  # float32 elements per temporary


def pair_similarity(query: F32, rows: F32, distance: Distance) -> F32:
    """``sim(q, d)`` for every query row and stored row: shape ``[len(query), len(rows)]``."""
    s = score_matrix(query, rows, distance)
    if distance == "Euclid":
        out: F32 = -(s * s)
        return out
    if distance == "Manhattan":
        return np.negative(s)
    return s


def max_sim(query: F32, indptr: I64, rows: F32, distance: Distance) -> F64:
    """MaxSim of ``query`` against each point of a CSR block (points without rows score -inf)."""
    n = len(indptr) - 1
    out = np.full(n, -np.inf, dtype=np.float64)
    if n == 0 or len(query) == 0:
        return out
    lengths = np.diff(indptr)
    per_block = max(1, _BUDGET // max(1, len(query)))
    start = 0
    while start < n:
        # as many points as fit the row budget (at least one)
        end = int(np.searchsorted(indptr, indptr[start] + per_block, side="right")) - 1
        end = min(max(end, start + 1), n)
        lo, hi = int(indptr[start]), int(indptr[end])
        if hi > lo:
            sims = pair_similarity(query, np.asarray(rows[lo:hi], dtype=np.float32), distance)
            nonempty = np.flatnonzero(lengths[start:end] > 0)
            starts = (indptr[start:end][nonempty] - lo).astype(np.int64)
            best = np.maximum.reduceat(sims, starts, axis=1)  # [len(query), nonempty points]
            out[start + nonempty] = best.sum(axis=0, dtype=np.float64)
        start = end
    return out


def reported(scores: F64, distance: Distance) -> F64:
    """MaxSim values as Qdrant reports them (distances for Euclid / Manhattan)."""
    if distance == "Euclid":
        out: F64 = np.sqrt(np.maximum(-scores, 0.0))
        return out
    if distance == "Manhattan":
        return np.negative(scores)
    return scores


def search_multi(
    csr: Csr,
    query: F32,
    k: int,
    distance: Distance,
    allowed: Mask,
    threshold: float | None,
) -> tuple[F32, I64]:
    """Best ``k`` (reported scores, offsets) among ``allowed`` offsets, best first; -1 pads."""
    out_s = np.full(k, np.nan, dtype=np.float32)
    out_o = np.full(k, -1, dtype=np.int64)
    cand = np.flatnonzero(allowed[: csr.size])
    if len(cand) == 0 or k <= 0:
        return out_s, out_o
    if len(cand) == csr.size:
        scores = max_sim(query, csr.indptr, csr.parts[0], distance)
    else:
        indptr, (rows,) = csr.rows_of(cand.astype(np.int64))
        scores = max_sim(query, indptr, rows, distance)
    keep = np.isfinite(scores)
    shown = reported(scores, distance)
    if threshold is not None:
        keep &= (shown >= threshold) if distance in ("Cosine", "Dot") else (shown <= threshold)
    cand, scores, shown = cand[keep], scores[keep], shown[keep]
    if len(cand) > k:
        part = np.argpartition(-scores, k - 1)[:k]
        cand, scores, shown = cand[part], scores[part], shown[part]
    order = np.lexsort((cand, -scores))
    out_s[: len(order)] = shown[order]
    out_o[: len(order)] = cand[order]
    return out_s, out_o
