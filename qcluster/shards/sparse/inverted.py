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
    """A query's indices found in an index: term positions, query weights (float64), and where
    each one's postings start and end."""

    pos: I64
    w: F64
    lo: list[int]
    hi: list[int]


@dataclass(frozen=True, slots=True)
class InvertedIndex:
    terms: Arr
    ptr: I64
    docs: Arr
    vals: Arr
    size: int  # offsets 0..size-1 are covered
    # the last lookup (query, answer); one slot, replaced whole, so concurrent readers are safe
    _last: list[tuple[SparseVector, Terms] | None] = field(
        default_factory=lambda: [None], compare=False, repr=False
    )
    # index -> position in ``terms`` (-1: absent) when the indices are dense enough for a table
    # (a vocabulary of word pieces): one memory access per query index instead of a binary search
    _slots: I64 | None = field(init=False, default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if len(self.terms) and int(self.terms[-1]) < 4 * len(self.terms) + SLOT_TABLE_MIN:
            slots = np.full(int(self.terms[-1]) + 1, -1, dtype=np.int64)
            slots[self.terms] = np.arange(len(self.terms), dtype=np.int64)
            object.__setattr__(self, "_slots", slots)

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
        """The query's indices present in the index: their positions, weights and posting spans.
        The last answer is kept (by query identity): deciding where a search runs and running
        it look the same query up."""
        last = self._last[0]
        if last is not None and last[0] is query:
            return last[1]
        if len(query) == 0 or len(self.terms) == 0:
            found_terms = Terms(np.zeros(0, np.int64), np.zeros(0, np.float64), [], [])
        else:
            pos = self._positions(query.indices)
            if int(pos.min()) >= 0:
                w = query.values.astype(np.float64)
            else:
                found = pos >= 0
                pos, w = pos[found], query.values[found].astype(np.float64)
            found_terms = Terms(pos, w, self.ptr[pos].tolist(), self.ptr[pos + 1].tolist())
        self._last[0] = (query, found_terms)
        return found_terms

    def _positions(self, indices: Arr) -> I64:
        """Position in ``terms`` of each of ``indices`` (ascending, not empty), -1 if absent."""
        slots = self._slots
        if slots is not None:
            if int(indices[-1]) < len(slots):
                return slots[indices]
            pos = np.full(len(indices), -1, dtype=np.int64)
            inside = indices < len(slots)
            pos[inside] = slots[indices[inside]]
            return pos
        terms = self.terms
        pos = terms.searchsorted(indices)
        if int(pos[-1]) >= len(terms):  # indices ascend: only the last can fall past the end
            np.minimum(pos, len(terms) - 1, out=pos)
        absent = terms[pos] != indices
        if absent.any():
            pos[absent] = -1
        return pos

    def postings_read(self, query: SparseVector) -> int:
        """How many postings scoring ``query`` reads."""
        found = self.lookup(query)
        return sum(found.hi) - sum(found.lo)

    def gather(self, lo: list[int], hi: list[int], w: F64) -> tuple[Arr, Arr]:
        """(docs, values times their term's weight) of the posting lists ``lo[i]:hi[i]``, one
        after another. Docs keep the stored dtype (uint32); values are float64, or the stored
        float32 values when every weight is 1 (``bincount`` widens them to the same float64
        products)."""
        if len(lo) == 1:
            a, b = lo[0], hi[0]
            return self.docs[a:b], self.vals[a:b] * w[0]
        if not lo:
            return np.zeros(0, np.uint32), np.zeros(0, np.float64)
        spans = list(zip(lo, hi, strict=True))
        docs = np.concatenate([self.docs[a:b] for a, b in spans])
        vals = np.concatenate([self.vals[a:b] for a, b in spans])
        if bool((w == 1.0).all()):
            return docs, vals
        return docs, vals * np.repeat(w, [b - a for a, b in spans])

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
        """For each index, how many offsets hold it (0 for an index not in the index)."""
        out = np.zeros(len(indices), dtype=np.int64)
        if len(self.terms) == 0 or len(indices) == 0:
            return out
        pos = np.minimum(self.terms.searchsorted(indices), len(self.terms) - 1)
        found = self.terms[pos] == indices
        out[found] = self.ptr[pos[found] + 1] - self.ptr[pos[found]]
        return out

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
