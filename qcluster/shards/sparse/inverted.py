"""The inverted index of one sparse vector name in one segment, and exact dot-product scoring.

Layout (CSC of the segment's sparse vectors; all numpy, persisted as ``.npy`` files)::

    terms  uint32 [T]      the distinct indices (dimensions) present, ascending
    ptr    int64  [T + 1]  postings of terms[t] are docs/vals[ptr[t]:ptr[t+1]]
    docs   uint32 [P]      segment offsets, ascending within a posting list
    vals   float32[P]      the stored value of that dimension in that point

Scoring a query: look its indices up in ``terms`` (binary search), gather their postings, weigh
them by the query values and sum per offset (``bincount``). Scores are exact dot products; a point
that shares no dimension with the query is not a match (as in Qdrant). Rows not covered by an
index (an appendable segment's fresh or replaced rows) are scored straight from their CSR form
with ``score_csr``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from qcluster.shards.segment_files import read_array, write_array_atomic
from qcluster.shards.sparse.vector import SparseVector

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]
Arr = npt.NDArray[Any]
FILES = ("terms", "ptr", "docs", "vals")


@dataclass(frozen=True, slots=True)
class InvertedIndex:
    terms: Arr
    ptr: I64
    docs: Arr
    vals: Arr
    size: int  # offsets 0..size-1 are covered

    @classmethod
    def build(cls, indptr: I64, indices: Arr, values: Arr) -> InvertedIndex:
        size = len(indptr) - 1
        rows = np.repeat(np.arange(size, dtype=np.uint32), np.diff(indptr))
        order = np.argsort(indices, kind="stable")  # stable: docs stay ascending per term
        ordered = np.asarray(indices)[order]
        terms, starts = np.unique(ordered, return_index=True)
        ptr = np.empty(len(terms) + 1, dtype=np.int64)
        ptr[:-1] = starts
        ptr[-1] = len(ordered)
        return cls(
            terms.astype(np.uint32),
            ptr,
            rows[order],
            np.asarray(values, dtype=np.float32)[order],
            size,
        )

    def _postings(self, query: SparseVector) -> tuple[Arr, Arr]:
        """(docs, weighted values) of every posting the query touches."""
        if len(query) == 0 or len(self.terms) == 0:
            return np.zeros(0, np.uint32), np.zeros(0, np.float64)
        pos = np.searchsorted(self.terms, query.indices)
        found = pos < len(self.terms)
        found[found] = self.terms[pos[found]] == query.indices[found]
        docs: list[Arr] = []
        weighted: list[Arr] = []
        for p, w in zip(pos[found].tolist(), query.values[found].tolist(), strict=True):
            lo, hi = int(self.ptr[p]), int(self.ptr[p + 1])
            docs.append(self.docs[lo:hi])
            weighted.append(self.vals[lo:hi] * np.float64(w))
        if not docs:
            return np.zeros(0, np.uint32), np.zeros(0, np.float64)
        return np.concatenate(docs), np.concatenate(weighted)

    def score(self, query: SparseVector, size: int) -> tuple[F64, Mask]:
        """Dot products with every covered offset (``size`` >= ``self.size`` long), and which
        offsets share a dimension with the query."""
        docs, weighted = self._postings(query)
        scores: F64 = np.bincount(docs, weights=weighted, minlength=size).astype(np.float64, copy=False)
        hit = np.zeros(size, dtype=np.bool_)
        hit[docs] = True
        return scores, hit

    def doc_freq(self, indices: Arr, counted: Mask) -> I64:
        """For each index, how many offsets with ``counted`` set hold it."""
        out = np.zeros(len(indices), dtype=np.int64)
        if len(self.terms) == 0 or len(indices) == 0:
            return out
        pos = np.searchsorted(self.terms, indices)
        for i, p in enumerate(pos.tolist()):
            if p < len(self.terms) and self.terms[p] == indices[i]:
                docs = self.docs[int(self.ptr[p]) : int(self.ptr[p + 1])]
                out[i] = int(np.count_nonzero(counted[docs]))
        return out

    # ------------------------------------------------------------------ files
    @staticmethod
    def paths(folder: Path, stem: str) -> list[Path]:
        return [folder / f"inverted_{stem}_{name}.npy" for name in FILES]

    def save(self, folder: Path, stem: str) -> None:
        for path, arr in zip(
            self.paths(folder, stem), (self.terms, self.ptr, self.docs, self.vals), strict=True
        ):
            write_array_atomic(path, arr)

    @classmethod
    def load(cls, folder: Path, stem: str, size: int) -> InvertedIndex:
        terms, ptr, docs, vals = (read_array(p, mmap=True) for p in cls.paths(folder, stem))
        return cls(terms, np.asarray(ptr, dtype=np.int64), docs, vals, size)


def score_csr(query: SparseVector, indptr: I64, indices: Arr, values: Arr) -> tuple[F64, Mask]:
    """Dot products of ``query`` with every row of a CSR block, and which rows share a dimension."""
    n = len(indptr) - 1
    if len(query) == 0 or len(indices) == 0:
        return np.zeros(n, np.float64), np.zeros(n, np.bool_)
    pos = np.searchsorted(query.indices, indices)
    np.minimum(pos, len(query) - 1, out=pos)
    match = query.indices[pos] == indices
    rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(indptr))[match]
    contrib = np.asarray(values, dtype=np.float64)[match] * query.values[pos[match]]
    scores: F64 = np.bincount(rows, weights=contrib, minlength=n).astype(np.float64, copy=False)
    hit = np.zeros(n, dtype=np.bool_)
    hit[rows] = True
    return scores, hit


def csr_doc_freq(indices: Arr, indptr: I64, row_indices: Arr, counted: Mask) -> I64:
    """For each of ``indices``, how many rows of a CSR block with ``counted`` set hold it."""
    n = len(indptr) - 1
    rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(indptr))
    keep = counted[rows]
    held = np.asarray(row_indices)[keep]
    if len(held) == 0:
        return np.zeros(len(indices), dtype=np.int64)
    uniq, counts = np.unique(held, return_counts=True)
    pos = np.searchsorted(uniq, indices)
    np.minimum(pos, len(uniq) - 1, out=pos)
    out: I64 = np.where(uniq[pos] == indices, counts[pos], 0).astype(np.int64)
    return out
