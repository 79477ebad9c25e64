"""Query vectors of the three kinds a ``using`` name can have, and scoring stored vectors of
candidate points against them.

=========  ===========================  ==============================  =======================
kind       query value                  similarity (larger is better)   average (recommend)
=========  ===========================  ==============================  =======================
dense      float32 ``[dim]``             the distance's score (negated   mean of the rows
                                        for Euclid / Manhattan)
multi      float32 ``[rows, dim]``       MaxSim                          rows concatenated
sparse     ``SparseVector``             dot product                     mean per index
=========  ===========================  ==============================  =======================
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from qcluster.errors import BadInputError
from qcluster.models.config import Distance
from qcluster.shards.distance import higher_is_better, preprocess, score_matrix
from qcluster.shards.multivector import max_sim
from qcluster.shards.sparse.vector import SparseVector, dot, sparse_vector

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
Kind = Literal["dense", "multi", "sparse"]
QueryVector = F32 | SparseVector


def parse_inline(kind: Kind, dim: int, raw: Any, field: str) -> QueryVector:
    """An inline example or query vector for a name of ``kind``."""
    if isinstance(raw, Mapping):
        if "indices" not in raw:
            raise BadInputError(
                f"{field}: inference objects (document, image, object) are not supported by qcluster", field
            )
        if kind != "sparse":
            raise BadInputError(f"{field}: Conversion between sparse and regular vectors failed", field)
        return sparse_vector(raw.get("indices"), raw.get("values"), field)
    if kind == "sparse":
        raise BadInputError(f"{field}: Conversion between sparse and regular vectors failed", field)
    if isinstance(raw, np.ndarray):  # gRPC: decoded from packed floats
        return _inline_array(kind, dim, raw, field)
    if not isinstance(raw, list):
        raise BadInputError(f"{field}: expected a list of numbers", field)
    nested = bool(raw) and isinstance(raw[0], list)
    if nested and kind == "dense":
        raise BadInputError(f"{field}: Conversion between multi and regular vectors failed", field)
    rows = raw if nested else [raw]
    if not raw or any(not isinstance(r, list) or not r for r in rows):
        raise BadInputError(f"{field}: vectors must be non-empty", field)
    try:
        vec = np.asarray(rows, dtype=np.float32)
    except (TypeError, ValueError):
        raise BadInputError(f"{field}: expected a list of numbers", field) from None
    if vec.ndim != 2 or vec.shape[1] != dim:
        got = len(rows[0]) if rows and isinstance(rows[0], list) else 0
        raise BadInputError(f"Vector dimension error: expected dim: {dim}, got {got}", field)
    if not np.isfinite(vec).all():
        raise BadInputError(f"{field}: values must be finite numbers", field)
    return vec if kind == "multi" else vec[0]


def _inline_array(kind: Kind, dim: int, raw: npt.NDArray[Any], field: str) -> QueryVector:
    if raw.ndim == 2 and kind == "dense":
        raise BadInputError(f"{field}: Conversion between multi and regular vectors failed", field)
    vec = np.asarray(raw, dtype=np.float32)
    rows = vec.reshape(1, -1) if vec.ndim == 1 else vec
    if rows.ndim != 2 or rows.size == 0:
        raise BadInputError(f"{field}: vectors must be non-empty", field)
    if rows.shape[1] != dim:
        raise BadInputError(f"Vector dimension error: expected dim: {dim}, got {rows.shape[1]}", field)
    if not np.isfinite(rows).all():
        raise BadInputError(f"{field}: values must be finite numbers", field)
    return rows if kind == "multi" else rows[0]


def check_stored(kind: Kind, value: Any, field: str) -> QueryVector:
    """A stored vector read back as an example: check it is of the kind the query needs."""
    if (kind == "sparse") != isinstance(value, SparseVector):
        raise BadInputError(f"{field}: Conversion between sparse and regular vectors failed", field)
    out: QueryVector = value
    return out


# ---------------------------------------------------------------------------------- averages
def _sparse_sum(vectors: Sequence[SparseVector], weights: Sequence[float]) -> SparseVector:
    if not vectors:
        return SparseVector.empty()
    idx = np.concatenate([v.indices for v in vectors])
    vals = np.concatenate([v.values.astype(np.float64) * w for v, w in zip(vectors, weights, strict=True)])
    uniq, inverse = np.unique(idx, return_inverse=True)
    summed = np.bincount(inverse, weights=vals, minlength=len(uniq))
    return SparseVector(uniq.astype(np.uint32), summed.astype(np.float32))


def average(kind: Kind, vectors: Sequence[QueryVector]) -> QueryVector:
    if kind == "sparse":
        sv = [v for v in vectors if isinstance(v, SparseVector)]
        return _sparse_sum(sv, [1.0 / len(sv)] * len(sv))
    dense = [v for v in vectors if not isinstance(v, SparseVector)]
    if kind == "multi":
        out: F32 = np.concatenate(dense).astype(np.float32)
        return out
    mean: F32 = np.mean(np.stack(dense), axis=0).astype(np.float32)
    return mean


def pos_minus_neg(kind: Kind, pos: QueryVector, neg: QueryVector) -> QueryVector:
    """``pos + (pos - neg)`` (multivectors: the negative rows, negated, appended)."""
    if isinstance(pos, SparseVector) and isinstance(neg, SparseVector):
        return _sparse_sum([pos, neg], [2.0, -1.0])
    assert not isinstance(pos, SparseVector) and not isinstance(neg, SparseVector)
    if kind == "multi":
        out: F32 = np.concatenate([pos, -neg]).astype(np.float32)
        return out
    merged: F32 = (pos + (pos - neg)).astype(np.float32)
    return merged


def direction(
    kind: Kind, distance: Distance, pos: Sequence[QueryVector], neg: Sequence[QueryVector]
) -> QueryVector | None:
    """``sum(pos) - sum(neg)``, where a point's summed similarity is linear in its vector (dense
    Cosine / Dot, sparse): a good place to look for candidates. None otherwise."""
    if kind == "sparse":
        sv = [v for v in (*pos, *neg) if isinstance(v, SparseVector)]
        out = _sparse_sum(sv, [1.0] * len(pos) + [-1.0] * len(neg))
        return out if len(out) else None
    if kind == "multi" or not higher_is_better(distance):
        return None
    dense_pos = [v for v in pos if not isinstance(v, SparseVector)]
    dense_neg = [v for v in neg if not isinstance(v, SparseVector)]
    p = preprocess(np.stack(dense_pos), distance).sum(axis=0) if dense_pos else 0.0
    n = preprocess(np.stack(dense_neg), distance).sum(axis=0) if dense_neg else 0.0
    vec = np.asarray(p - n, dtype=np.float32)
    return vec if vec.ndim == 1 and bool(np.any(vec)) else None


# ---------------------------------------------------------------------------------- scoring
@dataclass(slots=True)
class Stored:
    """Stored vectors of candidate points (one name), scored against query vectors; larger is
    better (distances are negated)."""

    kind: Kind
    distance: Distance
    values: list[QueryVector]
    matrix: F32 | None = None  # dense: the rows stacked

    @classmethod
    def of(cls, kind: Kind, distance: Distance, values: list[QueryVector]) -> Stored:
        matrix = None
        if kind == "dense" and values:
            matrix = np.stack(
                [np.asarray(v, dtype=np.float32) for v in values if not isinstance(v, SparseVector)]
            )
        return cls(kind, distance, values, matrix)

    def __len__(self) -> int:
        return len(self.values)

    def sims(self, query: QueryVector) -> F64:
        if self.kind == "sparse":
            assert isinstance(query, SparseVector)
            return np.array([dot(v, query) for v in self.values if isinstance(v, SparseVector)], np.float64)
        assert not isinstance(query, SparseVector)
        if self.kind == "multi":
            q = preprocess(query, self.distance)
            rows = [np.asarray(v, dtype=np.float32) for v in self.values]
            indptr = np.zeros(len(rows) + 1, dtype=np.int64)
            np.cumsum([len(r) for r in rows], out=indptr[1:])
            return max_sim(q, indptr, np.concatenate(rows), self.distance)
        assert self.matrix is not None
        q = preprocess(query.reshape(1, -1), self.distance)
        s: F64 = score_matrix(q, self.matrix, self.distance)[0].astype(np.float64)
        return s if higher_is_better(self.distance) else np.negative(s)

    def sims_to(self, i: int) -> F64:
        """Similarity of every candidate to candidate ``i`` (for MMR)."""
        return self.sims(self.values[i])
