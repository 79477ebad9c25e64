"""Payload indexes of sealed segments on disk, so a restart loads them instead of rebuilding them
from every payload.

One index = ``field-<hash of key>.npz`` (numpy arrays, no pickle) + ``.json`` (format, key, schema,
the segment's *token*, string values), the JSON written last, both atomically. The token is the
sum of the segment's per-point versions: every payload change or delete raises one of them (WAL
versions only grow), so an index file whose token differs from the segment's describes other
payloads and is ignored (the index is rebuilt from payloads, then saved again).

Columns: the shape of each point's field (``_bits`` / ``_count``; several-value counts in the
JSON), own values flattened with their offsets and per-point counts, values of other types in the
JSON. Loading fills the offset -> values map and lets the index type restore its structures in
bulk (``FieldIndex._restore``: posting lists grouped with numpy, sorted values sorted once).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from qcluster.shards.payload_index.base import FieldIndex
from qcluster.shards.payload_index.schema import FieldSchema

FORMAT = 1
_NUMERIC = {"integer": np.int64, "float": np.float64, "datetime": np.int64, "bool": np.bool_}


def paths(directory: Path, key: str) -> tuple[Path, Path]:
    base = f"field-{hashlib.sha1(key.encode()).hexdigest()[:16]}"
    return directory / f"{base}.npz", directory / f"{base}.json"


def save(index: FieldIndex, directory: Path, token: int) -> None:
    meta, arrays = index.export()
    data_file, meta_file = paths(directory, index.key)
    doc = {"format": FORMAT, "key": index.key, "schema": index.schema.to_json(), "token": token, **meta}
    _atomic(data_file, lambda f: np.savez(f, **arrays))  # type: ignore[arg-type]
    _atomic(meta_file, lambda f: f.write(_dumps(doc)))


def load(directory: Path, key: str, schema: FieldSchema, token: int) -> FieldIndex | None:
    """The saved index of ``key`` when it was saved for ``schema`` at ``token``; else None."""
    data_file, meta_file = paths(directory, key)
    try:
        meta = orjson.loads(meta_file.read_bytes())
        if not isinstance(meta, dict):
            return None
        if meta.get("format") != FORMAT or meta.get("key") != key or meta.get("token") != token:
            return None
        if meta.get("schema") != schema.to_json():
            return None
        with np.load(data_file, allow_pickle=False) as z:
            arrays = {name: z[name] for name in z.files}
    except (OSError, ValueError, KeyError, TypeError):
        return None
    from qcluster.shards.payload_index import build_index

    index = build_index(key, schema)
    try:
        index.restore(meta, arrays)
    except (ValueError, KeyError, TypeError, IndexError, AttributeError):
        return None
    return index


def _dumps(doc: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(doc)
    except TypeError:  # integers beyond 64 bits among "other" values
        import json

        return json.dumps(doc).encode()


def _atomic(path: Path, write: Callable[[Any], object]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def numeric_dtype(kind: str) -> Any:
    """The numpy dtype own values of ``kind`` are stored as (None: JSON)."""
    return _NUMERIC.get(kind)
