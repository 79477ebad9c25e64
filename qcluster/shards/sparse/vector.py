"""Sparse vectors: ``(indices, values)`` pairs, and the columnar (CSR) form a batch carries them in.

A stored or queried sparse vector has unique ``uint32`` indices in ascending order (Qdrant sorts
them too, so retrieval returns them sorted) and finite ``float32`` values of the same length.
The score of two sparse vectors is their dot product over the indices they share.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from qcluster.errors import BadInputError, UnprocessableInputError

U32 = npt.NDArray[np.uint32]
F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]
MAX_INDEX = 2**32 - 1


@dataclass(frozen=True, slots=True, eq=False)
class SparseVector:
    indices: U32
    values: F32

    def __len__(self) -> int:
        return len(self.indices)

    def to_json(self) -> dict[str, Any]:
        return {"indices": self.indices.tolist(), "values": self.values.tolist()}

    def same_as(self, other: SparseVector) -> bool:
        return bool(np.array_equal(self.indices, other.indices) and np.array_equal(self.values, other.values))

    @classmethod
    def empty(cls) -> SparseVector:
        return cls(np.zeros(0, dtype=np.uint32), np.zeros(0, dtype=np.float32))


def _invalid(field: str, part: str, reason: str) -> UnprocessableInputError:
    return UnprocessableInputError(f"[{field}.{part}: Validation error: {reason} [{{}}]]", f"{field}.{part}")


def sparse_vector(indices: Any, values: Any, field: str) -> SparseVector:
    """A checked, sorted sparse vector from JSON lists (Qdrant's validation and messages)."""
    if not isinstance(indices, list) or not isinstance(values, list):
        raise BadInputError(f"{field}: expected {{indices: [int], values: [float]}}", field)
    if len(indices) != len(values):
        raise _invalid(field, "values", "must be the same length as indices")
    if not all(type(i) is int and 0 <= i <= MAX_INDEX for i in indices):
        raise BadInputError(f"{field}.indices: expected unsigned 32-bit integers", f"{field}.indices")
    if not all(type(v) is float or type(v) is int for v in values):
        raise BadInputError(f"{field}.values: expected a list of numbers", f"{field}.values")
    vals = np.asarray(values, dtype=np.float32)
    idx = np.asarray(indices, dtype=np.uint32)
    if not np.isfinite(vals).all():
        raise BadInputError(f"{field}.values: values must be finite numbers", f"{field}.values")
    return sorted_unique(idx, vals, field)


def sorted_unique(idx: U32, vals: F32, field: str) -> SparseVector:
    order = np.argsort(idx, kind="stable")
    idx, vals = idx[order], vals[order]
    if len(idx) > 1 and bool((idx[1:] == idx[:-1]).any()):
        raise _invalid(field, "indices", "must be unique")
    return SparseVector(np.ascontiguousarray(idx), np.ascontiguousarray(vals))


def dot(a: SparseVector, b: SparseVector) -> float:
    _, ia, ib = np.intersect1d(a.indices, b.indices, assume_unique=True, return_indices=True)
    return float(np.dot(a.values[ia].astype(np.float64), b.values[ib].astype(np.float64)))


@dataclass(frozen=True, slots=True, eq=False)
class SparseColumn:
    """Sparse vectors of one name for a batch in CSR form: the i-th point's vector is
    ``indices[indptr[i]:indptr[i+1]]`` / ``values[...]``, present when ``present`` is None or
    ``present[i]``."""

    indptr: I64
    indices: U32
    values: F32
    present: Mask | None = None

    def __len__(self) -> int:
        return len(self.indptr) - 1

    def has(self, i: int) -> bool:
        return self.present is None or bool(self.present[i])

    def row(self, i: int) -> SparseVector | None:
        if not self.has(i):
            return None
        lo, hi = int(self.indptr[i]), int(self.indptr[i + 1])
        return SparseVector(self.indices[lo:hi], self.values[lo:hi])

    def take(self, rows: npt.NDArray[np.int64]) -> SparseColumn:
        """The column restricted to ``rows`` (in that order)."""
        return SparseColumn.from_rows(
            [self.row(int(i)) for i in rows],
        )

    @classmethod
    def from_rows(cls, rows: Sequence[SparseVector | None]) -> SparseColumn:
        lengths = np.array([0 if r is None else len(r) for r in rows], dtype=np.int64)
        indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        present = np.array([r is not None for r in rows], dtype=np.bool_)
        kept = [r for r in rows if r is not None]
        indices = np.concatenate([r.indices for r in kept]) if kept else np.zeros(0, np.uint32)
        values = np.concatenate([r.values for r in kept]) if kept else np.zeros(0, np.float32)
        return cls(
            indptr,
            indices.astype(np.uint32, copy=False),
            values.astype(np.float32, copy=False),
            None if bool(present.all()) else present,
        )
