"""Files of a segment's vector index: the FAISS index, its JSON sidecar and its payload graphs.

``save_index`` writes the sidecar first, then the index (each atomically, fsynced): a crash
between the two renames leaves a new sidecar next to no index file (or an old one of the same
segment, which ``load_index`` checks for size). Payload graphs are derived data written after the
index; ``load_index`` attaches every readable one and skips the rest (the optimizer rebuilds
what is missing).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from qcluster.errors import BadInputError, CorruptedStorageError
from qcluster.shards.distance import check_distance
from qcluster.shards.index.payload_graph import PayloadGraph
from qcluster.shards.index.plan import FILE_FORMAT, faiss

if TYPE_CHECKING:
    from qcluster.shards.index.vector_index import VectorIndex


def save_index(index: VectorIndex, path: Path) -> None:
    meta = {
        "format": FILE_FORMAT,
        "kind": index.kind,
        "distance": index.distance,
        "dim": index.dim,
        "size": index.size,
        "warning": index.warning,
        "quantile": index.quantile,
    }
    _write_atomic(path.with_suffix(".json"), lambda tmp: tmp.write_bytes(orjson.dumps(meta)))
    writer = faiss.write_index_binary if index.kind == "binary" else faiss.write_index
    _write_atomic(path, lambda tmp: writer(index.index, str(tmp)))
    save_graphs(index, path)


def save_graphs(index: VectorIndex, path: Path) -> bool:
    """Payload graphs whose files are missing are written; True when any was."""
    wrote = False
    for graph in index.payload_graphs.values():
        if not PayloadGraph.files(path, graph.key)[1].exists():
            graph.save(path)
            wrote = True
    return wrote


def load_index(cls: type[VectorIndex], path: Path, on_disk: bool = False) -> VectorIndex:
    try:
        meta = orjson.loads(path.with_suffix(".json").read_bytes())
        kind, distance = str(meta["kind"]), check_distance(meta["distance"])
        dim, size = int(meta["dim"]), int(meta["size"])
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError, BadInputError) as exc:
        raise CorruptedStorageError(f"index metadata {path.with_suffix('.json')}: {exc}") from exc
    mmapped = False
    try:
        if kind == "binary":
            raw = faiss.read_index_binary(str(path))
        elif on_disk:
            try:
                raw = faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC)
                mmapped = True
            except RuntimeError:
                raw = faiss.read_index(str(path))
        else:
            raw = faiss.read_index(str(path))
    except (RuntimeError, MemoryError, OSError) as exc:
        raise CorruptedStorageError(f"index file {path}: {exc}") from exc
    expect_d = 8 * math.ceil(dim / 8) if kind == "binary" else dim
    if raw.ntotal != size or raw.d != expect_d:
        raise CorruptedStorageError(
            f"index file {path}: holds {raw.ntotal} x {raw.d}, metadata says {size} x {expect_d}"
        )
    warning, quantile = meta.get("warning"), meta.get("quantile")
    index = cls(raw, kind, distance, dim, size, warning, quantile=quantile, mmapped=mmapped)
    for graph in PayloadGraph.load_all(path).values():
        if graph.size == size:
            index.with_payload_graph(graph)
    return index


def _write_atomic(path: Path, write: Callable[[Path], object]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
