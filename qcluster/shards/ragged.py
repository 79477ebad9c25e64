"""Variable-length vectors of one name in a segment: sparse vectors (parallel ``indices`` /
``values`` arrays) and multivectors (a ``[rows, dim]`` matrix per point).

Appendable segments keep one value per offset in a list (None where the point has no such
vector), which takes replacements in place. Sealing turns them into CSR form: the parts of every
point concatenated, plus ``indptr`` (point ``i`` owns ``indptr[i]:indptr[i+1]``), written as
``.npy`` files and memory-mapped; sealed values never change.

Only the shard's update thread mutates a store; searches read concurrently. ``changes`` counts
replacements of existing offsets and ``log`` records them in order, so a reader that built
something from the rows (the sparse inverted index of an appendable segment) knows which rows
changed after it started.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from qcluster.shards.segment_files import read_array, write_array_atomic

Arr = npt.NDArray[Any]
I64 = npt.NDArray[np.int64]
Value = tuple[Arr, ...]


@dataclass(frozen=True, slots=True)
class Part:
    """One parallel array of a value: its file suffix, dtype and trailing shape."""

    name: str
    dtype: type[np.generic]
    shape: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Csr:
    indptr: I64
    parts: tuple[Arr, ...]

    @property
    def size(self) -> int:
        return len(self.indptr) - 1

    def value(self, offset: int) -> Value:
        lo, hi = int(self.indptr[offset]), int(self.indptr[offset + 1])
        return tuple(p[lo:hi] for p in self.parts)

    def rows_of(self, offsets: I64) -> tuple[I64, tuple[Arr, ...]]:
        """The CSR of the given points only (in that order)."""
        starts = self.indptr[offsets]
        lengths = self.indptr[offsets + 1] - starts
        indptr = np.zeros(len(offsets) + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        total = int(indptr[-1])
        if total == 0:
            return indptr, tuple(np.asarray(p[:0]) for p in self.parts)
        within = np.arange(total, dtype=np.int64) - np.repeat(indptr[:-1], lengths)
        rows = np.repeat(starts, lengths) + within
        return indptr, tuple(np.asarray(p[rows]) for p in self.parts)


def csr_from_values(values: Sequence[Value | None], parts: Sequence[Part]) -> Csr:
    lengths = np.fromiter((0 if v is None else len(v[0]) for v in values), dtype=np.int64, count=len(values))
    indptr = np.zeros(len(values) + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    kept = [v for v in values if v is not None and len(v[0])]
    arrays = []
    for i, part in enumerate(parts):
        if kept:
            arrays.append(np.ascontiguousarray(np.concatenate([v[i] for v in kept]), dtype=part.dtype))
        else:
            arrays.append(np.zeros((0, *part.shape), dtype=part.dtype))
    return Csr(indptr, tuple(arrays))


def concat_csr(blocks: Sequence[tuple[I64, tuple[Arr, ...]]]) -> Csr:
    """One CSR of several ``(indptr, parts)`` blocks, one after another."""
    offsets = np.cumsum([0] + [int(ptr[-1]) for ptr, _ in blocks[:-1]])
    indptr = np.concatenate([[0]] + [ptr[1:] + off for (ptr, _), off in zip(blocks, offsets, strict=True)])
    nparts = len(blocks[0][1])
    parts = tuple(np.concatenate([b[1][i] for b in blocks]) for i in range(nparts))
    return Csr(indptr.astype(np.int64), parts)


class RaggedStore:
    def __init__(self, parts: Sequence[Part], *, appendable: bool):
        self.parts = tuple(parts)
        self.appendable = appendable
        self.values: list[Value | None] = []  # appendable form
        self.csr: Csr | None = None if appendable else csr_from_values([], parts)  # sealed form
        self.changes = 0
        self.log: list[int] = []  # offsets replaced in place, in order (appendable only)
        self._bytes = 0  # of the appendable values

    # ------------------------------------------------------------------ reads
    def get(self, offset: int) -> Value | None:
        if self.csr is not None:
            if offset >= self.csr.size:
                return None
            return self.csr.value(offset)
        return self.values[offset] if offset < len(self.values) else None

    def nbytes(self) -> int:
        if self.csr is not None:
            return sum(int(p.nbytes) for p in self.csr.parts)
        return self._bytes

    def as_csr(self, size: int) -> Csr:
        """CSR of offsets ``0..size-1`` (a copy for appendable stores; the store itself if sealed)."""
        if self.csr is not None:
            return self.csr
        return csr_from_values(self.values[:size], self.parts)

    # ------------------------------------------------------------------ mutations (update thread)
    def put(self, offset: int, value: Value | None) -> None:
        assert self.appendable and self.csr is None
        self._bytes += _size(value)
        if offset < len(self.values):
            self._bytes -= _size(self.values[offset])
            self.values[offset] = value
            self.changes += 1
            self.log.append(offset)
            return
        while len(self.values) < offset:
            self.values.append(None)
        self.values.append(value)

    def extend(self, values: Sequence[Value | None], start: int) -> None:
        """Values for the new offsets ``start, start + 1, ...``."""
        assert self.appendable and self.csr is None
        while len(self.values) < start:
            self.values.append(None)
        self.values.extend(values)
        self._bytes += sum(_size(v) for v in values)

    def seal(self, size: int) -> None:
        self.csr = csr_from_values(self.values[:size], self.parts)
        self.values = []
        self.log = []
        self.appendable = False

    # ------------------------------------------------------------------ files
    def files(self, folder: Path, stem: str) -> list[Path]:
        return [folder / f"{stem}_indptr.npy"] + [folder / f"{stem}_{p.name}.npy" for p in self.parts]

    def save(self, folder: Path, stem: str, size: int) -> None:
        csr = self.as_csr(size)
        paths = self.files(folder, stem)
        write_array_atomic(paths[0], csr.indptr)
        for path, arr in zip(paths[1:], csr.parts, strict=True):
            write_array_atomic(path, arr)

    def map_files(self, folder: Path, stem: str) -> None:
        """Serve a sealed store from its (already written) files, memory-mapped."""
        paths = self.files(folder, stem)
        self.csr = Csr(
            np.asarray(read_array(paths[0]), dtype=np.int64),
            tuple(read_array(p, mmap=True) for p in paths[1:]),
        )

    def read_files(self, folder: Path, stem: str) -> None:
        """Load what ``save`` wrote: memory-mapped when sealed, as editable values when appendable."""
        self.map_files(folder, stem)
        if self.appendable:
            csr = self.csr
            assert csr is not None
            self.values = [
                tuple(np.array(a) for a in csr.value(i)) if csr.indptr[i + 1] > csr.indptr[i] else None
                for i in range(csr.size)
            ]
            self.csr = None
            self._bytes = sum(_size(v) for v in self.values)


def _size(value: Value | None) -> int:
    return 0 if value is None else sum(int(a.nbytes) for a in value)


SPARSE_PARTS = (Part("indices", np.uint32), Part("values", np.float32))


def multi_parts(dim: int) -> tuple[Part, ...]:
    return (Part("rows", np.float32, (dim,)),)
