"""Vector math with Qdrant's score semantics (pure numpy; FAISS lives in ``index.py``).

=========  ==========================================  ===============  ==========================
distance   stored vector                               score            better / threshold keeps
=========  ==========================================  ===============  ==========================
Cosine     normalised to unit length on upsert         dot product      higher / score >= t
Dot        as given                                    dot product      higher / score >= t
Euclid     as given                                    L2 distance      lower  / score <= t
Manhattan  as given                                    L1 distance      lower  / score <= t
=========  ==========================================  ===============  ==========================

Result arrays everywhere are ``(scores [q, k] float32, offsets [q, k] int64)``, best first, with
offset ``-1`` and score ``nan`` in the slots nothing filled.

Vectors of fewer than 16 dimensions are scored (and normalised) the way Qdrant's scalar code
does it: float32 products summed one dimension after the other, so scores agree with Qdrant's to
the last bit (BLAS sums in another order and can differ in the last place).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from qcluster.errors import BadInputError
from qcluster.models.config import Distance

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]

DISTANCES: tuple[Distance, ...] = ("Cosine", "Euclid", "Dot", "Manhattan")
# Largest temporary (in float32 elements) a scoring step may allocate: ~16 MB.
_BUDGET = 1 << 22
# Below this dimension sums run in order, dimension by dimension (Qdrant's scalar path).
SEQUENTIAL_DIM = 16


def check_distance(distance: str) -> Distance:
    if distance not in DISTANCES:
        raise BadInputError(f"unknown distance {distance!r}, expected one of {list(DISTANCES)}", "distance")
    return distance


UNIT_TOLERANCE = 1e-6


def _sequential_pairs(q: F32, v: F32, term: str) -> F32:
    """``[len(q), len(v)]`` sums over dimensions of a per-dimension term, accumulated in
    float32 one dimension after another: ``dot`` (q*v), ``sq`` ((q-v)^2) or ``abs`` (|q-v|)."""
    out = np.zeros((len(q), len(v)), dtype=np.float32)
    for j in range(q.shape[1]):
        qj, vj = q[:, j, None], v[None, :, j]
        if term == "dot":
            out += qj * vj
        elif term == "sq":
            d = qj - vj
            out += d * d
        else:
            out += np.abs(qj - vj)
    return out


def preprocess(vectors: npt.ArrayLike, distance: Distance) -> F32:
    """float32, C-contiguous; rows L2-normalised for Cosine (a zero vector stays zero). Rows
    already of unit length (within ``UNIT_TOLERANCE``) are kept bit for bit, so normalising a
    stored vector again (a copy to another replica) changes nothing."""
    arr = np.ascontiguousarray(vectors, dtype=np.float32)
    if distance != "Cosine":
        return arr
    if arr.ndim >= 1 and 0 < arr.shape[-1] < SEQUENTIAL_DIM:
        rows = arr.reshape(-1, arr.shape[-1])
        sq = np.zeros(len(rows), dtype=np.float32)
        for j in range(rows.shape[1]):
            sq += rows[:, j] * rows[:, j]
        norms = np.sqrt(sq)
        norms[(norms == 0) | (np.abs(norms - 1.0) <= UNIT_TOLERANCE)] = 1.0
        scaled: F32 = (rows / norms[:, None]).astype(np.float32).reshape(arr.shape)
        return scaled
    if arr.ndim == 1 or arr.shape[0] == 1:  # one vector: the single-query hot path
        row = arr if arr.ndim == 1 else arr[0]
        norm = float(np.sqrt(np.dot(row, row)))
        if norm == 0 or abs(norm - 1.0) <= UNIT_TOLERANCE:
            return arr.copy()
        return arr / np.float32(norm)
    norms = np.sqrt(np.einsum("ij,ij->i", arr, arr))
    norms[(norms == 0) | (np.abs(norms - 1.0) <= UNIT_TOLERANCE)] = 1.0
    out: F32 = arr / norms[:, None]
    return out


def higher_is_better(distance: Distance) -> bool:
    return distance == "Cosine" or distance == "Dot"


def passes_threshold(scores: F32, threshold: float | None, distance: Distance) -> Mask:
    """Which scores survive ``score_threshold`` (nan never does)."""
    if threshold is None:
        ok: Mask = ~np.isnan(scores)
        return ok
    if higher_is_better(distance):
        return np.greater_equal(scores, threshold)
    return np.less_equal(scores, threshold)


def _sq_norms(x: F32) -> F32:
    out: F32 = np.einsum("ij,ij->i", x, x)
    return out


def _euclid(q: F32, v: F32) -> F32:
    """||q - v|| via the matmul expansion; entries where the expansion cancels badly are recomputed."""
    qn, vn = _sq_norms(q), _sq_norms(v)
    sq = q @ v.T
    sq *= -2.0
    sq += qn[:, None]
    sq += vn[None, :]
    np.maximum(sq, 0.0, out=sq)
    # float32 cancellation: for near-duplicates the expansion's error (~1e-7 * norms) dwarfs the
    # distance itself. Those pairs are few; recompute them from the difference.
    close = np.nonzero(sq < 1e-3 * (qn[:, None] + vn[None, :]))
    if len(close[0]):
        diff = q[close[0]] - v[close[1]]
        sq[close] = np.einsum("ij,ij->i", diff, diff)
    out: F32 = np.sqrt(sq, out=sq)
    return out


def _manhattan(q: F32, v: F32) -> F32:
    nq, n, d = len(q), len(v), q.shape[1]
    out = np.empty((nq, n), dtype=np.float32)
    pairs = max(1, _BUDGET // max(1, d))  # (query, vector) pairs per temporary
    vc = max(1, min(n, pairs))
    qc = max(1, pairs // vc)
    for qs in range(0, nq, qc):
        qb = q[qs : qs + qc, None, :]
        for vs in range(0, n, vc):
            diff = np.abs(qb - v[None, vs : vs + vc, :])
            out[qs : qs + qc, vs : vs + vc] = diff.sum(axis=2)
    return out


def score_matrix(queries: F32, vectors: F32, distance: Distance) -> F32:
    """Qdrant scores, shape ``[len(queries), len(vectors)]`` (inputs already preprocessed)."""
    q = np.ascontiguousarray(queries, dtype=np.float32)
    v = np.asarray(vectors, dtype=np.float32)
    if q.ndim != 2 or v.ndim != 2 or q.shape[1] != v.shape[1]:
        raise BadInputError(
            f"Vector dimension error: expected dim: {v.shape[-1]}, got {q.shape[-1]}", "vector"
        )
    if q.shape[1] < SEQUENTIAL_DIM and len(v):
        check_distance(distance)
        if distance == "Cosine" or distance == "Dot":
            return _sequential_pairs(q, v, "dot")
        if distance == "Euclid":
            out: F32 = np.sqrt(_sequential_pairs(q, v, "sq"))
            return out
        return _sequential_pairs(q, v, "abs")
    if distance == "Cosine" or distance == "Dot":
        dots: F32 = q @ v.T
        return dots
    if distance == "Euclid":
        return _euclid(q, v)
    check_distance(distance)
    return _manhattan(q, v)


def empty_result(nq: int, k: int) -> tuple[F32, I64]:
    return np.full((nq, k), np.nan, dtype=np.float32), np.full((nq, k), -1, dtype=np.int64)


def _select(scores: F32, keys: F32, k: int) -> tuple[F32, I64]:
    """Best ``k`` per row of ``keys`` (smaller is better, inf = excluded), best first."""
    nq, n = keys.shape
    s_out, o_out = empty_result(nq, k)
    kk = min(k, n)
    if kk == 0:
        return s_out, o_out
    if kk < n:
        part = np.argpartition(keys, kk - 1, axis=1)[:, :kk]
        part_keys = np.take_along_axis(keys, part, axis=1)
    else:
        part = np.broadcast_to(np.arange(n, dtype=np.int64), (nq, n))
        part_keys = keys
    order = np.argsort(part_keys, axis=1, kind="stable")
    top = np.take_along_axis(part, order, axis=1)
    valid = np.isfinite(np.take_along_axis(part_keys, order, axis=1))
    o_out[:, :kk] = np.where(valid, top, -1)
    s_out[:, :kk] = np.where(valid, np.take_along_axis(scores, top, axis=1), np.nan)
    return s_out, o_out


def _as_mask(allowed: Mask, n: int) -> Mask:
    mask = np.asarray(allowed, dtype=np.bool_)
    if mask.ndim != 1:
        raise BadInputError("allowed: expected a 1-d boolean mask", "filter")
    if len(mask) >= n:
        return mask[:n]
    out = np.zeros(n, dtype=np.bool_)
    out[: len(mask)] = mask
    return out


def exact_top_k(
    queries: F32,
    vectors: F32,
    k: int,
    distance: Distance,
    allowed: Mask | None = None,
    threshold: float | None = None,
) -> tuple[F32, I64]:
    """Brute-force best ``k`` rows per query (Qdrant scores, row offsets), best first.

    Rows where ``allowed`` is false (or beyond its end) never appear; scores failing
    ``threshold`` never appear. Queries are processed in blocks so temporaries stay ~16 MB.
    """
    if k < 0:
        raise BadInputError(f"limit must be non-negative, got {k}", "limit")
    q = np.ascontiguousarray(queries, dtype=np.float32)
    nq, n = len(q), len(vectors)
    if n == 0 or k == 0 or nq == 0:
        return empty_result(nq, k)
    rows: I64 | None = None
    if allowed is not None:
        mask = _as_mask(allowed, n)
        count = int(np.count_nonzero(mask))
        if count == 0:
            return empty_result(nq, k)
        if count == n:
            allowed = None
        elif count * 8 <= n:  # few rows: score only those
            rows = np.flatnonzero(mask)
            vectors, allowed, n = np.asarray(vectors[rows]), None, count
        else:
            allowed = mask
    high = higher_is_better(distance)
    s_out, o_out = empty_result(nq, k)
    block = max(1, _BUDGET // n)
    for qs in range(0, nq, block):
        scores = score_matrix(q[qs : qs + block], vectors, distance)
        keys = -scores if high else scores.copy()
        if threshold is not None or np.isnan(keys).any():
            keys[~passes_threshold(scores, threshold, distance)] = np.inf
        if allowed is not None:
            keys[:, ~allowed] = np.inf
        s_out[qs : qs + block], o_out[qs : qs + block] = _select(scores, keys, k)
    if rows is not None:
        o_out = np.where(o_out >= 0, rows[np.maximum(o_out, 0)], -1)
    return s_out, o_out


def rescore(
    queries: F32,
    candidates: I64,
    vectors: F32,
    k: int,
    distance: Distance,
    threshold: float | None = None,
) -> tuple[F32, I64]:
    """Exact Qdrant scores for candidate rows (``-1`` = none), re-sorted; the best ``k`` per query.

    Used after a search over quantized codes: ``vectors`` holds the original (preprocessed)
    vectors, possibly memory-mapped; only the candidate rows are read.
    """
    q = np.ascontiguousarray(queries, dtype=np.float32)
    nq, f = candidates.shape
    if nq == 0 or f == 0 or k == 0:
        return empty_result(nq, k)
    s_out, o_out = empty_result(nq, k)
    high = higher_is_better(distance)
    block = max(1, _BUDGET // max(1, f * q.shape[1]))
    for qs in range(0, nq, block):
        cand = candidates[qs : qs + block]
        qb = q[qs : qs + block]
        valid = cand >= 0
        rows = np.asarray(vectors[np.where(valid, cand, 0).ravel()], dtype=np.float32)
        rows = rows.reshape(len(cand), f, -1)
        if distance == "Cosine" or distance == "Dot":
            scores = np.matmul(rows, qb[:, :, None])[:, :, 0]
        elif distance == "Euclid":
            rows -= qb[:, None, :]
            scores = np.sqrt(np.einsum("qfd,qfd->qf", rows, rows))
        else:
            scores = np.abs(rows - qb[:, None, :]).sum(axis=2)
        keys = -scores if high else scores.copy()
        keys[~valid] = np.inf
        if threshold is not None:
            keys[~passes_threshold(scores, threshold, distance)] = np.inf
        s, o = _select(scores, keys, k)
        s_out[qs : qs + block] = s
        o_out[qs : qs + block] = np.where(o >= 0, np.take_along_axis(cand, np.maximum(o, 0), axis=1), -1)
    return s_out, o_out
