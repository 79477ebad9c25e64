"""The inverted index of one sparse vector name in one segment, and exact dot-product scoring.

Layout (CSC of the segment's sparse vectors; all numpy, persisted as ``.npy`` files)::

    terms  uint32 [T]      the distinct indices (dimensions) present, ascending
    ptr    int64  [T + 1]  postings of terms[t] are docs/vals[ptr[t]:ptr[t+1]]
    docs   uint32 [P]      segment offsets, ascending within a posting list
    vals   float32[P]      the stored value of that dimension in that point

Scoring a query: look its indices up in ``terms`` (binary search), gather their postings, weigh
them by the query values and sum per offset (``bincount``, float64). Scores are exact dot
products; a point that shares no dimension with the query is not a match (as in Qdrant). Rows not
covered by an index (an appendable segment's fresh or replaced rows) are scored straight from
their CSR form with ``score_csr``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from operator import sub
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from qcluster.shards.segment_files import read_array, write_array_atomic
from qcluster.shards.sparse.vector import SparseVector

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]
Arr = npt.NDArray[Any]
FILES = ("terms", "ptr", "docs", "vals")
SLOT_TABLE_MIN = 1 << 16  # a table of up to 4 entries per term plus this many is kept


class Terms(NamedTuple):
    """A query's indices found in an index: their weights (Python floats: float64), where each
    one's postings start and end, and how many postings that is."""

    w: list[float]
    lo: list[int]
    hi: list[int]
    postings: int


class _Found(NamedTuple):
    """Where a query's indices are in an index (what ``Terms`` holds but the weights)."""

    indices: Arr  # the query's indices array this answers (kept: identity is the key)
    found: Mask | None  # which of them the index holds; None: all of them
    lo: list[int]
    hi: list[int]
    lengths: list[int]  # hi - lo, one per index (0: not in the index)
    postings: int


@dataclass(frozen=True, slots=True)
class InvertedIndex:
    terms: Arr
    ptr: I64
    docs: Arr
    vals: Arr
    size: int  # offsets 0..size-1 are covered
    # the last lookup, by the identity of the query's indices array (an IDF-weighted query shares
    # it with the query it was made from); one slot, replaced whole, so concurrent readers are safe
    _last: list[_Found | None] = field(default_factory=lambda: [None], compare=False, repr=False)
    # index -> (start, end) of its postings ((0, 0): absent) when the indices are dense enough for
    # a table (a vocabulary of word pieces): one memory access per query index instead of a
    # binary search and two reads of ``ptr``
    _spans: I64 | None = field(init=False, default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if len(self.terms) and int(self.terms[-1]) < 4 * len(self.terms) + SLOT_TABLE_MIN:
            spans = np.zeros((int(self.terms[-1]) + 1, 2), dtype=np.int64)
            spans[self.terms, 0] = self.ptr[:-1]
            spans[self.terms, 1] = self.ptr[1:]
            object.__setattr__(self, "_spans", spans)

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

    def lookup(self, query: SparseVector) -> Terms:
        """The query's indices present in the index: their weights and posting spans. Where the
        indices are is kept for the last query (by the identity of its indices array): deciding
        where a search runs, weighing it by IDF and running it look the same indices up."""
        where = self._where(query.indices)
        values = query.values if where.found is None else query.values[where.found]
        return Terms(values.tolist(), where.lo, where.hi, where.postings)

    def _where(self, indices: Arr) -> _Found:
        last = self._last[0]
        if last is not None and last.indices is indices:
            return last
        lo, hi = self._spans_of(indices).T.tolist()
        lengths = list(map(sub, hi, lo))
        found: Mask | None = None
        if 0 in lengths:  # a term in the index holds at least one posting
            found = np.array([n > 0 for n in lengths], dtype=np.bool_)
            lo = [a for a, n in zip(lo, lengths, strict=True) if n]
            hi = [b for b, n in zip(hi, lengths, strict=True) if n]
        where = _Found(indices, found, lo, hi, lengths, sum(lengths))
        self._last[0] = where
        return where

    def _spans_of(self, indices: Arr) -> I64:
        """(start, end) of the postings of each of ``indices`` (ascending), (0, 0) if absent."""
        spans = self._spans
        if len(indices) == 0 or len(self.terms) == 0:
            return np.zeros((len(indices), 2), dtype=np.int64)
        if spans is not None:
            if int(indices[-1]) < len(spans):
                out: I64 = spans.take(indices, 0)  # (the method: no dispatch layer)
                return out
            out = np.zeros((len(indices), 2), dtype=np.int64)
            inside = indices < len(spans)
            out[inside] = spans[indices[inside]]
            return out
        terms = self.terms
        pos = terms.searchsorted(indices)
        if int(pos[-1]) >= len(terms):  # indices ascend: only the last can fall past the end
            np.minimum(pos, len(terms) - 1, out=pos)
        out = np.stack((self.ptr[pos], self.ptr[pos + 1]), axis=1)
        out[terms[pos] != indices] = 0
        return out

    def postings_read(self, query: SparseVector) -> int:
        """How many postings scoring ``query`` reads."""
        return self._where(query.indices).postings

    def gather(self, lo: list[int], hi: list[int], w: list[float]) -> tuple[Arr, F64]:
        """(docs, values times their term's weight) of the posting lists ``lo[i]:hi[i]``, one
        after another: docs as ``intp`` and values as float64, what ``bincount`` reads without a
        conversion of its own (a single list keeps its stored docs dtype)."""
        if len(lo) == 1:
            a, b = lo[0], hi[0]
            return self.docs[a:b], np.multiply(self.vals[a:b], w[0], dtype=np.float64)
        if not lo:
            return np.zeros(0, np.intp), np.zeros(0, np.float64)
        spans = list(map(slice, lo, hi))
        docs = np.concatenate(list(map(self.docs.__getitem__, spans)), dtype=np.intp)
        vals: F64 = np.concatenate(list(map(self.vals.__getitem__, spans)), dtype=np.float64)
        if min(w) != 1.0 or max(w) != 1.0:
            vals *= np.repeat(np.array(w), list(map(sub, hi, lo)))
        return docs, vals

    def score(self, query: SparseVector, size: int) -> tuple[F64, Mask]:
        """Dot products with every covered offset (``size`` >= ``self.size`` long), and which
        offsets share a dimension with the query."""
        found = self.lookup(query)
        docs, weighted = self.gather(found.lo, found.hi, found.w)
        scores: F64 = np.bincount(docs, weights=weighted, minlength=size).astype(np.float64, copy=False)
        hit = np.zeros(size, dtype=np.bool_)
        hit[docs] = True
        return scores, hit

    def posting_lengths(self, indices: Arr) -> I64:
        """For each index (ascending, unique: a query's), how many offsets hold it (0 for an index
        not in the index)."""
        return np.array(self._where(indices).lengths, dtype=np.int64)

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
        terms, ptr, docs, vals = (np.asarray(read_array(p, mmap=True)) for p in cls.paths(folder, stem))
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
