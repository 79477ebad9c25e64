"""A segment: a slice of one shard's points with their vectors, payloads and indexes.

Two kinds, one class:

- *appendable*: vectors in growable in-memory arrays, searched exactly; takes new points.
- *sealed*: vectors immutable (memory-mapped ``.npy``), optionally a FAISS index per vector name.

In both kinds payloads, deletion flags, per-point versions and "has vector" flags stay mutable,
so an index built in the background over a sealed segment needs no replay of what changed
meanwhile: it is just attached. Only one thread mutates a segment (the shard's update thread);
searches read concurrently and tolerate seeing a write half-way (results are merged and
de-duplicated by the shard).

Vectors come in three kinds: dense (one row of a ``[capacity, dim]`` array per offset), multi
(a ``[rows, dim]`` matrix per offset) and sparse (indices and values per offset); the last two are
ragged stores (``ragged.py``; sparse adds its inverted index, ``sparse/``). ``has_vec`` flags which
offsets hold a vector of each name, whatever its kind.

Its files, and sealing (vectors frozen on disk), are ``segment_store.py``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from qcluster.models.config import ShardConfig
from qcluster.shards.base import AnyVector
from qcluster.shards.ragged import RaggedStore, Value, multi_parts
from qcluster.shards.selection_cache import SelectionCache
from qcluster.shards.sparse.store import SparseStore
from qcluster.shards.sparse.vector import SparseVector
from qcluster.types import PointId

if TYPE_CHECKING:
    from qcluster.shards.index import VectorIndex
    from qcluster.shards.payload_index import FieldIndex

Payload = dict[str, Any]
F32 = npt.NDArray[np.float32]
Mask = npt.NDArray[np.bool_]
StoredVector = AnyVector


class Segment:
    def __init__(
        self,
        path: Path,
        seg_id: str,
        dims: Mapping[str, int],
        *,
        appendable: bool,
        capacity: int = 256,
        multi: Mapping[str, int] | None = None,
        sparse: Iterable[str] = (),
    ):
        self.path = path
        self.id = seg_id
        self.appendable = appendable
        self.dims = dict(dims)
        self.size = 0
        self.ids: list[PointId] = []
        self.offsets: dict[PointId, int] = {}  # live points only
        self.payloads: list[Payload | None] = []
        self.deleted: npt.NDArray[np.bool_] = np.zeros(capacity, dtype=np.bool_)
        self.versions: npt.NDArray[np.int64] = np.zeros(capacity, dtype=np.int64)
        self.vectors: dict[str, F32] = {
            n: np.zeros((capacity, d), dtype=np.float32) for n, d in self.dims.items()
        }
        self.multi_dims = dict(multi or {})
        self.multi: dict[str, RaggedStore] = {
            n: RaggedStore(multi_parts(d), appendable=appendable) for n, d in self.multi_dims.items()
        }
        self.sparse: dict[str, SparseStore] = {n: SparseStore(appendable=appendable) for n in sparse}
        self.has_vec: dict[str, Mask] = {
            n: np.zeros(capacity, dtype=np.bool_) for n in (*self.dims, *self.multi, *self.sparse)
        }
        self.indexes: dict[str, VectorIndex] = {}
        self.field_indexes: dict[str, FieldIndex] = {}
        self.dirty = True
        self.vectors_on_disk = False  # sealed vectors already written (they never change)
        self.epoch = 0  # bumps on every deletion / vector removal (invalidates cached masks)
        # bumps after every change to points, payloads or payload indexes (``selection_cache``)
        self.generation = 0
        self.selections = SelectionCache()
        self._mask_cache: dict[str, tuple[int, int, Mask | None]] = {}
        self.touched: set[int] | None = None  # offsets changed while an optimization reads this segment
        self.saved_fields: dict[str, tuple[int, int]] = {}  # key -> (token, index id) on disk

    # ------------------------------------------------------------------ sizes and views
    @property
    def live_count(self) -> int:
        return len(self.offsets)

    @property
    def deleted_count(self) -> int:
        return self.size - len(self.offsets)

    @property
    def names(self) -> tuple[str, ...]:
        """Every vector name, whatever its kind."""
        return tuple(self.has_vec)

    def vector_bytes(self) -> int:
        dense = sum(self.size * d * 4 for d in self.dims.values())
        return dense + sum(s.nbytes() for s in (*self.multi.values(), *self.sparse.values()))

    def indexed_vectors(self) -> int:
        return sum(self.live_count for name in self.dims if name in self.indexes)

    def point_id(self, offset: int) -> PointId:
        return self.ids[offset]

    def offset_of(self, point_id: PointId) -> int | None:
        return self.offsets.get(point_id)

    def payload(self, offset: int) -> Payload | None:
        return self.payloads[offset]

    def vector_mask(self, name: str) -> Mask:
        has = self.has_vec.get(name)
        if has is None:
            return np.zeros(self.size, dtype=np.bool_)
        return has[: self.size]

    def ragged(self, name: str) -> RaggedStore:
        """The store of a multivector or sparse name."""
        return self.sparse.get(name) or self.multi[name]

    def field_index(self, key: str) -> FieldIndex | None:
        return self.field_indexes.get(key)

    def set_field_index(self, key: str, index: FieldIndex) -> None:
        self.field_indexes[key] = index
        self.generation += 1

    def drop_field_index(self, key: str) -> None:
        self.field_indexes.pop(key, None)
        self.generation += 1

    def live_mask(self) -> Mask:
        return ~self.deleted[: self.size]

    def searchable_mask(self, name: str) -> Mask | None:
        """Live points that have vector ``name``; None when that is every offset (the fast path)."""
        cached = self._mask_cache.get(name)
        if cached is not None and cached[0] == self.epoch and cached[1] == self.size:
            return cached[2]
        size = self.size
        mask = ~self.deleted[:size] & self.has_vec[name][:size]
        result: Mask | None = None if bool(mask.all()) else mask
        self._mask_cache[name] = (self.epoch, size, result)
        return result

    def iter_live(self) -> Iterator[tuple[PointId, int]]:
        return iter(list(self.offsets.items()))

    # ------------------------------------------------------------------ mutations (update thread only)
    def _grow(self, needed: int) -> None:
        cap = len(self.deleted)
        if needed <= cap:
            return
        new_cap = max(needed, cap * 2)
        self.deleted = np.concatenate([self.deleted, np.zeros(new_cap - cap, dtype=np.bool_)])
        self.versions = np.concatenate([self.versions, np.zeros(new_cap - cap, dtype=np.int64)])
        for name, arr in self.vectors.items():
            grown = np.zeros((new_cap, arr.shape[1]), dtype=np.float32)
            grown[: self.size] = arr[: self.size]
            self.vectors[name] = grown
        for name, has in self.has_vec.items():
            self.has_vec[name] = np.concatenate([has, np.zeros(new_cap - cap, dtype=np.bool_)])

    def _touch(self, offset: int) -> None:
        self.dirty = True
        self.generation += 1
        if self.touched is not None:
            self.touched.add(offset)

    def _index_payload(self, offset: int, payload: Payload | None) -> None:
        for fidx in self.field_indexes.values():
            fidx.remove(offset)
            if payload is not None:
                fidx.add(offset, payload)

    def put_point(
        self, pid: PointId, vectors: Mapping[str, StoredVector | None], payload: Payload | None, version: int
    ) -> int:
        """Insert or fully replace a point (appendable segments only). Vectors already preprocessed."""
        assert self.appendable, "put_point on a sealed segment"
        offset = self.offsets.get(pid)
        if offset is None:
            offset = self.size
            self._grow(offset + 1)
            self.ids.append(pid)
            self.payloads.append(None)
            self.offsets[pid] = offset
            self.size = offset + 1
        for name in self.has_vec:
            vec = vectors.get(name)
            if name not in self.dims:
                self.ragged(name).put(offset, _value(vec))
            if vec is None:
                if self.has_vec[name][offset]:
                    self.has_vec[name][offset] = False
                    self.epoch += 1
            else:
                if name in self.dims:
                    self.vectors[name][offset] = _dense(vec)
                self.has_vec[name][offset] = True
        self.payloads[offset] = payload
        self.versions[offset] = version
        self._index_payload(offset, payload)
        self._touch(offset)
        return offset

    def put_many(
        self,
        pids: list[PointId],
        vectors: Mapping[str, tuple[F32, Mask | None]],
        payloads: list[Payload | None],
        version: int,
        ragged: Mapping[str, Sequence[StoredVector | None]] | None = None,
    ) -> None:
        """Vectorised put of new points (none of ``pids`` may be live here already): dense
        vectors as ``(data, present)`` columns, multi / sparse ones as a value (or None) per point."""
        assert self.appendable
        n = len(pids)
        start = self.size
        self._grow(start + n)
        for name in self.dims:
            given = vectors.get(name)
            if given is None:
                self.has_vec[name][start : start + n] = False
                continue
            data, present = given
            self.vectors[name][start : start + n] = data
            self.has_vec[name][start : start + n] = True if present is None else present
        for name, store in (*self.multi.items(), *self.sparse.items()):
            values = (ragged or {}).get(name)
            if values is None:
                store.extend([None] * n, start)
                self.has_vec[name][start : start + n] = False
                continue
            store.extend([_value(v) for v in values], start)
            self.has_vec[name][start : start + n] = [v is not None for v in values]
        self.versions[start : start + n] = version
        self.ids.extend(pids)
        self.payloads.extend(payloads)
        for i, pid in enumerate(pids):
            self.offsets[pid] = start + i
        self.size = start + n
        if self.field_indexes:
            for i, payload in enumerate(payloads):
                if payload is not None:
                    for fidx in self.field_indexes.values():
                        fidx.add(start + i, payload)
        self.dirty = True
        self.generation += 1
        if self.touched is not None:
            self.touched.update(range(start, start + n))

    def delete(self, pid: PointId, version: int) -> bool:
        offset = self.offsets.pop(pid, None)
        if offset is None:
            return False
        self.deleted[offset] = True
        self.versions[offset] = version
        self.payloads[offset] = None
        for fidx in self.field_indexes.values():
            fidx.remove(offset)
        self.epoch += 1
        self._touch(offset)
        return True

    def set_payload_at(self, offset: int, payload: Payload | None, version: int) -> None:
        self.payloads[offset] = payload
        self.versions[offset] = version
        self._index_payload(offset, payload)
        self._touch(offset)

    def set_vectors_at(self, offset: int, vectors: Mapping[str, StoredVector], version: int) -> None:
        assert self.appendable
        for name, vec in vectors.items():
            if name in self.dims:
                self.vectors[name][offset] = _dense(vec)
            else:
                self.ragged(name).put(offset, _value(vec))
            self.has_vec[name][offset] = True
        self.versions[offset] = version
        self._touch(offset)

    def delete_vectors_at(self, offset: int, names: tuple[str, ...], version: int) -> None:
        for name in names:
            if name in self.has_vec and self.has_vec[name][offset]:
                self.has_vec[name][offset] = False
                self.epoch += 1
        self.versions[offset] = version
        self._touch(offset)

    def point_vectors(self, offset: int, names: tuple[str, ...] | None = None) -> dict[str, StoredVector]:
        out: dict[str, StoredVector] = {}
        for name in self.has_vec if names is None else names:
            has = self.has_vec.get(name)
            if has is None or not has[offset]:
                continue
            if name in self.dims:
                out[name] = np.array(self.vectors[name][offset], dtype=np.float32)
            elif name in self.sparse:
                sparse = self.sparse[name].vector(offset)
                if sparse is not None:
                    out[name] = sparse
            else:
                value = self.multi[name].get(offset)
                if value is not None:
                    out[name] = np.array(value[0], dtype=np.float32)
        return out


def new_segment(root: Path, config: ShardConfig, *, appendable: bool = True, capacity: int = 256) -> Segment:
    """An empty segment with ``config``'s vectors, in a fresh directory under ``root``."""
    sid = uuid.uuid4().hex
    return Segment(
        root / sid,
        sid,
        config.dense_dims(),
        appendable=appendable,
        capacity=capacity,
        multi=config.multi_dims(),
        sparse=list(config.sparse_vectors),
    )


def _dense(vec: StoredVector) -> F32:
    if isinstance(vec, SparseVector):
        raise TypeError("a sparse vector where a dense one belongs")
    return vec


def _value(vec: StoredVector | None) -> Value | None:
    """A stored vector as the parts of a ragged store's value."""
    if vec is None:
        return None
    if isinstance(vec, SparseVector):
        return (vec.indices, vec.values)
    return (vec,)
