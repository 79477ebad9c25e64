"""Vector math with Qdrant's score semantics (pure numpy; FAISS lives in ``index.py``).

Cosine: rows are normalised to unit length on upsert, score = dot product, higher is better.
Dot: raw dot product, higher is better. Euclid: the euclidean distance, lower is better.
Manhattan: the L1 distance, lower is better. ``score_threshold`` keeps scores at least the
threshold for Cosine/Dot and at most the threshold for Euclid/Manhattan.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from qcluster.models.config import Distance

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]


def preprocess(vectors: npt.ArrayLike, distance: Distance) -> F32:
    arr = np.ascontiguousarray(vectors, dtype=np.float32)
    if distance != "Cosine":
        return arr
    if arr.ndim == 2 and arr.shape[0] == 1:  # the single-query hot path
        norm = float(np.sqrt(np.dot(arr[0], arr[0])))
        return arr / norm if norm > 0 else arr.copy()
    norms = np.sqrt(np.einsum("ij,ij->i", arr, arr))[:, None] if arr.ndim == 2 else np.linalg.norm(arr)
    norms = np.where(norms == 0, 1.0, norms)
    return np.ascontiguousarray(arr / norms, dtype=np.float32)


def higher_is_better(distance: Distance) -> bool:
    return distance in ("Cosine", "Dot")


def passes_threshold(scores: F32, threshold: float | None, distance: Distance) -> Mask:
    if threshold is None:
        return np.isfinite(scores)
    if higher_is_better(distance):
        return scores >= threshold
    return scores <= threshold


def score_matrix(queries: F32, vectors: F32, distance: Distance) -> F32:
    """Qdrant scores, shape [len(queries), len(vectors)]."""
    q = np.asarray(queries, dtype=np.float32)
    v = np.asarray(vectors, dtype=np.float32)
    if distance in ("Cosine", "Dot"):
        dots: F32 = (q @ v.T).astype(np.float32, copy=False)
        return dots
    if distance == "Euclid":
        sq = (q * q).sum(axis=1)[:, None] - 2.0 * (q @ v.T) + (v * v).sum(axis=1)[None, :]
        dist: F32 = np.sqrt(np.maximum(sq, 0.0)).astype(np.float32, copy=False)
        return dist
    out = np.empty((len(q), len(v)), dtype=np.float32)
    step = max(1, 2_000_000 // max(1, v.shape[1] * len(q)))
    for start in range(0, len(v), step):
        chunk = v[start : start + step]
        out[:, start : start + len(chunk)] = np.abs(q[:, None, :] - chunk[None, :, :]).sum(axis=2)
    return out


def exact_top_k(
    queries: F32,
    vectors: F32,
    k: int,
    distance: Distance,
    allowed: Mask | None = None,
    threshold: float | None = None,
) -> tuple[F32, I64]:
    """Best ``k`` rows per query, best first; missing slots have offset -1 and score nan."""
    nq, n = len(queries), len(vectors)
    scores_out = np.full((nq, k), np.nan, dtype=np.float32)
    offs_out = np.full((nq, k), -1, dtype=np.int64)
    if n == 0 or k == 0:
        return scores_out, offs_out
    scores = score_matrix(queries, vectors, distance)
    high = higher_is_better(distance)
    # sort key: smaller is better
    keys = -scores if high else scores.copy()
    bad = ~passes_threshold(scores, threshold, distance)
    if allowed is not None:
        bad |= ~np.asarray(allowed[:n], dtype=np.bool_)[None, :]
    keys[bad] = np.inf
    kk = min(k, n)
    if kk < n:
        part = np.argpartition(keys, kk - 1, axis=1)[:, :kk]
    else:
        part = np.broadcast_to(np.arange(n), (nq, n)).copy()
    part_keys = np.take_along_axis(keys, part, axis=1)
    order = np.argsort(part_keys, axis=1, kind="stable")
    top = np.take_along_axis(part, order, axis=1)
    top_keys = np.take_along_axis(part_keys, order, axis=1)
    valid = np.isfinite(top_keys)
    offs_out[:, :kk] = np.where(valid, top, -1)
    scores_out[:, :kk] = np.where(valid, np.take_along_axis(scores, top, axis=1), np.nan)
    return scores_out, offs_out
