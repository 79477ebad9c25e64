"""One sparse vector name in one segment: the vectors (a ragged store) and their inverted index.

A sealed segment gets its index from the optimizer (built off the update thread, persisted beside
the vectors); until then its rows are scored straight from CSR. An appendable segment changes
under the searches, so a search builds an index over the rows it finds and caches it; rows added
or replaced after that build (the ``tail``) are scored from CSR, and the cache is rebuilt once the
tail is a sizeable share of the segment (amortised: each rebuild covers at least 4x the rows that
forced it).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from qcluster.shards.ragged import SPARSE_PARTS, Csr, RaggedStore, csr_from_values
from qcluster.shards.sparse.inverted import InvertedIndex
from qcluster.shards.sparse.vector import SparseVector

I64 = npt.NDArray[np.int64]
MIN_TAIL = 512


@dataclass(frozen=True, slots=True)
class SparseView:
    """What a search reads: an index over offsets ``< index.size`` (minus ``tail``), and the
    ``tail`` offsets (ascending) with their rows in CSR form, scored directly."""

    index: InvertedIndex | None
    tail: I64
    tail_csr: Csr


@dataclass(frozen=True, slots=True)
class _Cached:
    index: InvertedIndex
    log_pos: int  # store.log entries before this position are reflected in the index


class SparseStore(RaggedStore):
    def __init__(self, *, appendable: bool):
        super().__init__(SPARSE_PARTS, appendable=appendable)
        self.index: InvertedIndex | None = None  # sealed segments: built by the optimizer
        self._cached: _Cached | None = None
        self._indexed_view: SparseView | None = None  # sealed and indexed: the same view every time
        self._lock = threading.Lock()

    def vector(self, offset: int) -> SparseVector | None:
        value = self.get(offset)
        if value is None:
            return None
        return SparseVector(np.array(value[0], dtype=np.uint32), np.array(value[1], dtype=np.float32))

    def build_index(self, size: int) -> InvertedIndex:
        csr = self.as_csr(size)
        return InvertedIndex.build(csr.indptr, csr.parts[0], csr.parts[1])

    def view(self, size: int) -> SparseView:
        if self.csr is not None:  # sealed: rows never change
            index = self.index
            if index is not None and index.size >= size:
                indexed = self._indexed_view
                if indexed is None or indexed.index is not index:
                    indexed = self._indexed_view = SparseView(index, _NO_TAIL, _EMPTY_CSR)
                return indexed
            return SparseView(None, np.arange(size, dtype=np.int64), self.csr)
        cached = self._cached
        tail = self._tail(cached, size)
        if cached is None or len(tail) > max(MIN_TAIL, cached.index.size // 4):
            with self._lock:
                cached = self._cached
                tail = self._tail(cached, size)
                if cached is None or len(tail) > max(MIN_TAIL, cached.index.size // 4):
                    log_pos = len(self.log)  # rows replaced from here on are in the tail
                    cached = _Cached(self.build_index(size), log_pos)
                    self._cached = cached
                    tail = self._tail(cached, size)
        values = self.values
        rows = [values[int(o)] if o < len(values) else None for o in tail]
        return SparseView(cached.index, tail, csr_from_values(rows, self.parts))

    def read_cost(self, query: SparseVector, size: int) -> int:
        """Postings a search of ``query`` reads in an index covering the rows, plus the values of
        the rows scored from CSR (all of them when no index covers the segment yet)."""
        cached = self._cached
        if self.csr is not None:
            index, replaced = self.index, 0
            if index is not None and index.size >= size:  # sealed and indexed: the postings alone
                return index.postings_read(query)
        elif cached is not None:
            index, replaced = cached.index, len(self.log) - cached.log_pos
        else:
            index, replaced = None, 0
        values = self.nbytes() // 8  # a 4-byte index and a 4-byte value per stored dimension
        if index is None:
            return values
        tail = max(0, size - index.size) + replaced
        return index.postings_read(query) + tail * values // max(1, size)

    def _tail(self, cached: _Cached | None, size: int) -> I64:
        if cached is None:
            return np.arange(size, dtype=np.int64)
        fresh = np.arange(cached.index.size, size, dtype=np.int64)
        replaced = self.log[cached.log_pos :]
        if not replaced:
            return fresh
        old = np.asarray(replaced, dtype=np.int64)
        return np.union1d(old[old < size], fresh)

    def seal(self, size: int) -> None:
        super().seal(size)
        self._cached = None


def _frozen(csr: Csr) -> Csr:
    for arr in (csr.indptr, *csr.parts):
        arr.flags.writeable = False
    return csr


_NO_TAIL: I64 = np.zeros(0, np.int64)
_NO_TAIL.flags.writeable = False
_EMPTY_CSR = _frozen(csr_from_values([], SPARSE_PARTS))
