"""Crash-safe small-file helpers for segment and shard persistence (write to temp, fsync, rename)."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes_atomic(path: Path, data: bytes, *, sync: bool = True) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        if sync:
            fh.flush()
            os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_json_atomic(path: Path, value: Any, *, sync: bool = True) -> None:
    write_bytes_atomic(path, orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY), sync=sync)


def read_json(path: Path) -> Any:
    return orjson.loads(path.read_bytes())


def write_array_atomic(path: Path, array: npt.NDArray[Any], *, sync: bool = True) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        np.save(fh, np.ascontiguousarray(array), allow_pickle=False)
        if sync:
            fh.flush()
            os.fsync(fh.fileno())
    os.replace(tmp, path)


# numpy parses .npy headers with ast.literal_eval, and CPython 3.11 can fail concurrent AST
# conversions in several threads ("AST constructor recursion depth mismatch", gh-106905): seen when
# collections load in parallel on restart. Loading is rare and quick, so it is serialised.
_NPY_HEADER_LOCK = threading.Lock()


def read_array(path: Path, *, mmap: bool = False) -> npt.NDArray[Any]:
    with _NPY_HEADER_LOCK:
        arr: npt.NDArray[Any] = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    return arr
