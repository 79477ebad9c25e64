"""A segment's files: sealing (vectors frozen on disk), flushing what changed, loading it back.

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

Vector names map to file stems by kind and sorted position (``v0``, ``m0``, ``s0``...). Everything
here runs on the shard's update thread, like every other segment mutation.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from qcluster.errors import CorruptedStorageError
from qcluster.models.config import ShardConfig
from qcluster.shards.segment import Segment
from qcluster.shards.segment_files import (
    fsync_dir,
    read_array,
    read_json,
    write_array_atomic,
    write_json_atomic,
)
from qcluster.shards.sparse.inverted import InvertedIndex


def seal(seg: Segment) -> None:
    """Freeze the segment's vectors: trim its arrays, write the vectors and memory-map them."""
    seg.appendable = False
    size = seg.size
    seg.deleted = seg.deleted[:size].copy()
    seg.versions = seg.versions[:size].copy()
    for name in seg.has_vec:
        seg.has_vec[name] = seg.has_vec[name][:size].copy()
    for store in (*seg.multi.values(), *seg.sparse.values()):
        if store.appendable:
            store.seal(size)
    _write_vectors(seg)
    seg.epoch += 1  # masks cached over the old arrays are not looked at again


def flush(seg: Segment) -> bool:
    """Persist what changed since the last flush. Returns True when anything was written."""
    if not seg.dirty:
        return False
    path = seg.path
    path.mkdir(parents=True, exist_ok=True)
    size = seg.size
    if seg.appendable or not seg.vectors_on_disk:
        _write_vectors(seg)
    write_json_atomic(path / "ids.json", seg.ids[:size])
    write_json_atomic(path / "payloads.json", seg.payloads[:size])
    write_array_atomic(path / "deleted.npy", seg.deleted[:size])
    write_array_atomic(path / "versions.npy", seg.versions[:size])
    for name in seg.has_vec:
        write_array_atomic(path / f"has_{_stem(seg, name)}.npy", seg.has_vec[name][:size])
    if not seg.appendable:
        _save_field_indexes(seg)
    for name, index in seg.indexes.items():
        file = path / f"index_{_stem(seg, name)}.faiss"
        if not file.exists():
            index.save(file)
        else:
            index.save_graphs(file)  # payload graphs attached after the index
    sparse_indexed = sorted(n for n, s in seg.sparse.items() if s.index is not None)
    for name in sparse_indexed:
        store = seg.sparse[name]
        if store.index is not None and not InvertedIndex.paths(path, _stem(seg, name))[0].exists():
            store.index.save(path, _stem(seg, name))
    meta = {
        "id": seg.id,
        "appendable": seg.appendable,
        "size": size,
        "vectors": {n: {"stem": _stem(seg, n), "dim": d} for n, d in seg.dims.items()},
        "multi": {n: {"stem": _stem(seg, n), "dim": d} for n, d in seg.multi_dims.items()},
        "sparse": {n: {"stem": _stem(seg, n)} for n in seg.sparse},
        "indexed": sorted(seg.indexes),
        "sparse_indexed": sparse_indexed,
    }
    write_json_atomic(path / "meta.json", meta)
    fsync_dir(path)
    seg.dirty = False
    return True


def load(path: Path, config: ShardConfig) -> Segment:
    """The segment flushed into ``path``; its vector indexes as ``config`` keeps them (on disk or
    in memory)."""
    from qcluster.shards.index import VectorIndex

    meta = read_json(path / "meta.json")
    dims = {name: int(v["dim"]) for name, v in meta["vectors"].items()}
    multi = {name: int(v["dim"]) for name, v in meta.get("multi", {}).items()}
    sparse = list(meta.get("sparse", {}))
    appendable = bool(meta["appendable"])
    seg = Segment(path, meta["id"], dims, appendable=appendable, capacity=1, multi=multi, sparse=sparse)
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
        seg.ragged(name).read_files(path, stem)
    if not (len(seg.payloads) == size == len(seg.deleted) == len(seg.versions)):
        raise CorruptedStorageError(f"segment {path}: files disagree on the number of points")
    seg.size = size
    seg.offsets = {pid: off for off, pid in enumerate(seg.ids) if not seg.deleted[off]}
    seg.vectors_on_disk = not seg.appendable
    for name in meta.get("indexed", []):
        if name in dims:
            hnsw = config.hnsw_for(name) if name in config.vectors else None
            on_disk = bool(hnsw.on_disk) if hnsw is not None else False
            seg.indexes[name] = VectorIndex.load(path / f"index_{_stem(seg, name)}.faiss", on_disk=on_disk)
    for name in meta.get("sparse_indexed", []):
        if name in seg.sparse:
            seg.sparse[name].index = InvertedIndex.load(path, _stem(seg, name), size)
    seg.dirty = False
    return seg


def restore_field_index(seg: Segment, key: str, schema: Any) -> bool:
    """Take ``key``'s payload index from a sealed segment's files when they match its payloads
    (see ``payload_index/files.py``); False when it must be built from payloads."""
    from qcluster.shards.payload_index import files

    if seg.appendable:
        return False
    token = _fields_token(seg)
    fidx = files.load(seg.path, key, schema, token)
    if fidx is None:
        return False
    seg.set_field_index(key, fidx)
    seg.saved_fields[key] = (token, id(fidx))
    return True


def remove(seg: Segment) -> None:
    shutil.rmtree(seg.path, ignore_errors=True)


def _stem(seg: Segment, name: str) -> str:
    if name in seg.sparse:
        return f"s{sorted(seg.sparse).index(name)}"
    if name in seg.multi:
        return f"m{sorted(seg.multi).index(name)}"
    return f"v{sorted(seg.dims).index(name)}"


def _write_vectors(seg: Segment) -> None:
    seg.path.mkdir(parents=True, exist_ok=True)
    for name in seg.dims:
        file = seg.path / f"vectors_{_stem(seg, name)}.npy"
        write_array_atomic(file, seg.vectors[name][: seg.size])
        if not seg.appendable:
            seg.vectors[name] = read_array(file, mmap=True)
    for name, store in (*seg.multi.items(), *seg.sparse.items()):
        store.save(seg.path, _stem(seg, name), seg.size)
        if not seg.appendable:
            store.map_files(seg.path, _stem(seg, name))
    seg.vectors_on_disk = not seg.appendable


def _fields_token(seg: Segment) -> int:
    """Changes whenever a payload or deletion does (each raises a point's WAL version)."""
    return int(seg.versions[: seg.size].sum())


def _save_field_indexes(seg: Segment) -> None:
    from qcluster.shards.payload_index import files

    token = _fields_token(seg)
    for key, fidx in seg.field_indexes.items():
        if seg.saved_fields.get(key) != (token, id(fidx)):
            files.save(fidx, seg.path, token)
            seg.saved_fields[key] = (token, id(fidx))
