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

Files in the segment directory (each written atomically; see ``segment_files``)::

    meta.json            id, kind, size, vector names -> file stem and dimension
    ids.json             offset -> point id
    payloads.json        offset -> payload (null for none / deleted)
    deleted.npy versions.npy has_<v>.npy    flags per offset
    vectors_<v>.npy      float32 [size, dim] (preprocessed: Cosine rows are unit length)
    index_<v>.faiss      FAISS index (sealed and indexed only), with its payload graphs beside it
    field-<hash>.npz     payload indexes (sealed only; ``payload_index/files.py``)
    <m|s>_indptr.npy, <m>_rows.npy, <s>_indices.npy, <s>_values.npy    multi / sparse vectors (CSR)
    inverted_<s>_*.npy   sparse inverted index (sealed and indexed only)
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from qcluster.models.config import ShardConfig
from qcluster.shards.base import AnyVector
from qcluster.shards.ragged import RaggedStore, Value, multi_parts
from qcluster.shards.segment_files import (
    fsync_dir,
    read_array,
    read_json,
    write_array_atomic,
    write_json_atomic,
)
from qcluster.shards.sparse.inverted import InvertedIndex
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
        self._mask_cache: dict[str, tuple[int, int, Mask | None]] = {}
        self.touched: set[int] | None = None  # offsets changed while an optimization reads this segment
        self._saved_fields: dict[str, tuple[int, int]] = {}  # key -> (token, index id) on disk

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
        if self.touched is not None:
            self.touched.add(offset)

    def _index_payload(self, offset: int, payload: Payload | None) -> None:
        for fidx in self.field_indexes.values():
            fidx.remove(offset)
            if payload is not None:
                fidx.add(offset, payload)

    def _put_ragged(self, name: str, offset: int, vec: StoredVector | None) -> None:
        store = self.sparse.get(name) or self.multi.get(name)
        if store is not None:
            store.put(offset, _value(vec))

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
                self._put_ragged(name, offset, vec)
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
                self._put_ragged(name, offset, vec)
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

    def add_field_index(self, fidx: FieldIndex) -> None:
        for pid, offset in self.iter_live():
            del pid
            payload = self.payloads[offset]
            if payload is not None:
                fidx.add(offset, payload)
        self.field_indexes[fidx.key] = fidx

    # ------------------------------------------------------------------ sealing and persistence
    def seal(self) -> None:
        """Freeze vectors: trim arrays, write them to disk and memory-map them. Update thread only."""
        self.appendable = False
        size = self.size
        self.deleted = self.deleted[:size].copy()
        self.versions = self.versions[:size].copy()
        for name in self.has_vec:
            self.has_vec[name] = self.has_vec[name][:size].copy()
        for store in (*self.multi.values(), *self.sparse.values()):
            if store.appendable:
                store.seal(size)
        self._write_vectors()
        self._mask_cache.clear()

    def _stem(self, name: str) -> str:
        if name in self.sparse:
            return f"s{sorted(self.sparse).index(name)}"
        if name in self.multi:
            return f"m{sorted(self.multi).index(name)}"
        return f"v{sorted(self.dims).index(name)}"

    def _write_vectors(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        for name in self.dims:
            file = self.path / f"vectors_{self._stem(name)}.npy"
            write_array_atomic(file, self.vectors[name][: self.size])
            if not self.appendable:
                self.vectors[name] = read_array(file, mmap=True)
        for name, store in (*self.multi.items(), *self.sparse.items()):
            store.save(self.path, self._stem(name), self.size)
            if not self.appendable:
                store.map_files(self.path, self._stem(name))
        self.vectors_on_disk = not self.appendable

    def flush(self) -> bool:
        """Persist what changed since the last flush. Returns True when anything was written."""
        if not self.dirty:
            return False
        self.path.mkdir(parents=True, exist_ok=True)
        size = self.size
        if self.appendable or not self.vectors_on_disk:
            self._write_vectors()
        write_json_atomic(self.path / "ids.json", self.ids[:size])
        write_json_atomic(self.path / "payloads.json", self.payloads[:size])
        write_array_atomic(self.path / "deleted.npy", self.deleted[:size])
        write_array_atomic(self.path / "versions.npy", self.versions[:size])
        for name in self.has_vec:
            write_array_atomic(self.path / f"has_{self._stem(name)}.npy", self.has_vec[name][:size])
        if not self.appendable:
            self._save_field_indexes()
        for name, index in self.indexes.items():
            file = self.path / f"index_{self._stem(name)}.faiss"
            if not file.exists():
                index.save(file)
            else:
                index.save_graphs(file)  # payload graphs attached after the index
        sparse_indexed = sorted(n for n, s in self.sparse.items() if s.index is not None)
        for name in sparse_indexed:
            store = self.sparse[name]
            if store.index is not None and not InvertedIndex.paths(self.path, self._stem(name))[0].exists():
                store.index.save(self.path, self._stem(name))
        meta = {
            "id": self.id,
            "appendable": self.appendable,
            "size": size,
            "vectors": {n: {"stem": self._stem(n), "dim": d} for n, d in self.dims.items()},
            "multi": {n: {"stem": self._stem(n), "dim": d} for n, d in self.multi_dims.items()},
            "sparse": {n: {"stem": self._stem(n)} for n in self.sparse},
            "indexed": sorted(self.indexes),
            "sparse_indexed": sparse_indexed,
        }
        write_json_atomic(self.path / "meta.json", meta)
        fsync_dir(self.path)
        self.dirty = False
        return True

    def _fields_token(self) -> int:
        """Changes whenever a payload or deletion does (each raises a point's WAL version)."""
        return int(self.versions[: self.size].sum())

    def _save_field_indexes(self) -> None:
        from qcluster.shards.payload_index import files

        token = self._fields_token()
        for key, fidx in self.field_indexes.items():
            if self._saved_fields.get(key) != (token, id(fidx)):
                files.save(fidx, self.path, token)
                self._saved_fields[key] = (token, id(fidx))

    def restore_field_index(self, key: str, schema: Any) -> bool:
        """Take ``key``'s payload index from this sealed segment's files when they match its
        payloads (see ``payload_index/files.py``); False when it must be built from payloads."""
        from qcluster.shards.payload_index import files

        if self.appendable:
            return False
        token = self._fields_token()
        fidx = files.load(self.path, key, schema, token)
        if fidx is None:
            return False
        self.field_indexes[key] = fidx
        self._saved_fields[key] = (token, id(fidx))
        return True

    @classmethod
    def load(cls, path: Path, config: ShardConfig) -> Segment:
        from qcluster.shards.index import VectorIndex

        meta = read_json(path / "meta.json")
        dims = {name: int(v["dim"]) for name, v in meta["vectors"].items()}
        multi = {name: int(v["dim"]) for name, v in meta.get("multi", {}).items()}
        sparse = list(meta.get("sparse", {}))
        appendable = bool(meta["appendable"])
        seg = cls(path, meta["id"], dims, appendable=appendable, capacity=1, multi=multi, sparse=sparse)
        ids = read_json(path / "ids.json")
        size = len(ids)
        seg.ids = list(ids)
        seg.payloads = list(read_json(path / "payloads.json"))
        deleted = read_array(path / "deleted.npy")
        seg.versions = read_array(path / "versions.npy").astype(np.int64, copy=True)
        seg.deleted = deleted.astype(np.bool_, copy=True)
        for name, info in meta["vectors"].items():
            stem = info["stem"]
            seg.has_vec[name] = read_array(path / f"has_{stem}.npy").astype(np.bool_, copy=True)
            vec_file = path / f"vectors_{stem}.npy"
            if seg.appendable:
                arr = read_array(vec_file)
                seg.vectors[name] = np.array(arr, dtype=np.float32, copy=True)
            else:
                seg.vectors[name] = read_array(vec_file, mmap=True)
        for name, info in (*meta.get("multi", {}).items(), *meta.get("sparse", {}).items()):
            stem = info["stem"]
            seg.has_vec[name] = read_array(path / f"has_{stem}.npy").astype(np.bool_, copy=True)
            store = seg.sparse.get(name) or seg.multi[name]
            store.read_files(path, stem)
        if not (len(seg.payloads) == size == len(seg.deleted) == len(seg.versions)):
            from qcluster.errors import CorruptedStorageError

            raise CorruptedStorageError(f"segment {path}: files disagree on the number of points")
        seg.size = size
        seg.offsets = {pid: off for off, pid in enumerate(seg.ids) if not seg.deleted[off]}
        seg.vectors_on_disk = not seg.appendable
        for name in meta.get("indexed", []):
            if name in dims:
                hnsw = config.hnsw_for(name) if name in config.vectors else None
                on_disk = bool(hnsw.on_disk) if hnsw is not None else False
                seg.indexes[name] = VectorIndex.load(path / f"index_{seg._stem(name)}.faiss", on_disk=on_disk)
        for name in meta.get("sparse_indexed", []):
            if name in seg.sparse:
                seg.sparse[name].index = InvertedIndex.load(path, seg._stem(name), size)
        seg.dirty = False
        return seg

    def remove_files(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


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
