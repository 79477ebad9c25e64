"""Point batches for upserts and vector updates, from the vectors a request carries.

A vector arrives as a JSON list (REST) or as a float32 numpy array (gRPC, decoded from packed
floats without a per-element step); named vectors as ``{name: vector}``. The columnar
:class:`PointsBatch` holds one ``(n, dim)`` float32 matrix per vector name. Whole-batch fast paths:
a list of equally long JSON lists is converted in one numpy call; a ready ``(n, dim)`` matrix is
taken as it is. Anything else goes point by point, so an error names the point and the field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from qcluster.errors import BadInputError, FormatError
from qcluster.models.collections import CollectionConfig
from qcluster.models.points import BatchIn
from qcluster.shards.operations import NamedVectors, PointsBatch
from qcluster.types import DEFAULT_VECTOR, PointId

F32 = npt.NDArray[np.float32]
_SPECIAL = ("indices", "text", "image", "object")


def _dense(raw: Any, field: str) -> Sequence[float] | F32:
    """One dense vector (a list of numbers or a 1-d array); anything else is refused, naming why."""
    if isinstance(raw, np.ndarray):
        if raw.ndim == 2:
            raise BadInputError(f"{field}: multivectors are not supported by qcluster", field)
        return raw
    if isinstance(raw, dict):
        if "indices" in raw:
            raise BadInputError(f"{field}: sparse vectors are not supported by qcluster", field)
        if "text" in raw or "image" in raw or "object" in raw:
            raise BadInputError(f"{field}: inference objects are not supported by qcluster", field)
        raise FormatError(f"{field}: expected a list of numbers", field)
    if not isinstance(raw, list):
        raise FormatError(f"{field}: expected a list of numbers", field)
    if raw and isinstance(raw[0], list | np.ndarray):
        raise BadInputError(f"{field}: multivectors are not supported by qcluster", field)
    return raw


def _is_special(vec: Mapping[str, Any]) -> bool:
    return any(k in vec for k in _SPECIAL)


def points_batch(
    ids: Sequence[PointId],
    vectors: Sequence[Any],
    payloads: Sequence[dict[str, Any] | None] | None,
    config: CollectionConfig,
    field: str = "points",
) -> PointsBatch:
    """A columnar batch from per-point vector structs (a vector, or ``{name: vector}``)."""
    n = len(ids)
    dims = {name: p.size for name, p in config.params.vectors.items()}
    pl = None if payloads is None else tuple(payloads)
    fast = _unnamed_fast_path(vectors, dims)
    if fast is not None:
        return PointsBatch(tuple(ids), {DEFAULT_VECTOR: NamedVectors(fast)}, pl)
    columns: dict[str, tuple[F32, npt.NDArray[np.bool_]]] = {}
    for i, vec in enumerate(vectors):
        named = vec if isinstance(vec, dict) and not _is_special(vec) else {DEFAULT_VECTOR: vec}
        for name, raw in named.items():
            if raw is None:
                continue
            where = f"{field}[{i}].vector" + (f".{name}" if name else "")
            if name not in dims:
                raise BadInputError(f"Not existing vector name error: {name}", where)
            values = _dense(raw, where)
            if len(values) != dims[name]:
                raise BadInputError(
                    f"Vector dimension error: expected dim: {dims[name]}, got {len(values)}", where
                )
            col = columns.get(name)
            if col is None:
                col = columns[name] = (np.zeros((n, dims[name]), np.float32), np.zeros(n, np.bool_))
            try:
                col[0][i] = values
            except (ValueError, TypeError):
                raise FormatError(f"{where}: expected a list of numbers", where) from None
            col[1][i] = True
    out = {
        name: NamedVectors(data, None if bool(present.all()) else present)
        for name, (data, present) in columns.items()
    }
    return PointsBatch(tuple(ids), out, pl)


def _unnamed_fast_path(vectors: Sequence[Any], dims: Mapping[str, int]) -> F32 | None:
    """Every point carries one plain list for the unnamed vector, of the right size: convert the
    whole batch in one numpy call (the common upsert; the per-point path names the bad field)."""
    dim = dims.get(DEFAULT_VECTOR)
    if dim is None or not vectors or not all(type(v) is list and len(v) == dim for v in vectors):
        return None
    try:
        arr = np.asarray(vectors, dtype=np.float32)
    except (TypeError, ValueError):
        return None
    return arr if arr.shape == (len(vectors), dim) else None


def _matrix_batch(raw: BatchIn, matrix: F32, config: CollectionConfig) -> PointsBatch | None:
    """A ready ``(n, dim)`` float32 matrix for the unnamed vector: taken as it is."""
    params = config.params.vectors.get(DEFAULT_VECTOR)
    if params is None or matrix.ndim != 2 or matrix.shape != (len(raw.ids), params.size):
        return None
    data = np.ascontiguousarray(matrix, dtype=np.float32)
    pl = None if raw.payloads is None else tuple(raw.payloads)
    return PointsBatch(tuple(raw.ids), {DEFAULT_VECTOR: NamedVectors(data)}, pl)


def batch_from_columns(raw: BatchIn, config: CollectionConfig) -> PointsBatch:
    """The "batch" upsert form: ``{"ids", "vectors": [[...]] | {name: [[...]]}, "payloads"}``;
    ``vectors`` may also be an ``(n, dim)`` float32 matrix (the packed form gRPC decodes to)."""
    n = len(raw.ids)
    vectors = raw.vectors
    if isinstance(vectors, np.ndarray):
        ready = _matrix_batch(raw, vectors, config)
        if ready is not None:
            _check_payloads(raw, n)
            return ready
        vectors = list(vectors)  # one row per point: the per-point path names the bad one
    if isinstance(vectors, dict):
        per_point: list[dict[str, Any]] = [{} for _ in range(n)]
        for name, rows in vectors.items():
            if not isinstance(rows, list | np.ndarray) or len(rows) != n:
                raise BadInputError(
                    f"batch.vectors.{name}: expected one vector per id ({n})", f"batch.vectors.{name}"
                )
            for i, row in enumerate(rows):
                per_point[i][name] = row
        vecs: list[Any] = per_point
    elif isinstance(vectors, list):
        if len(vectors) != n:
            raise BadInputError(f"batch.vectors: expected one vector per id ({n})", "batch.vectors")
        vecs = vectors
    else:
        raise FormatError(
            "batch.vectors: expected a list of vectors or a map of named lists", "batch.vectors"
        )
    _check_payloads(raw, n)
    return points_batch(raw.ids, vecs, raw.payloads, config, "batch")


def _check_payloads(raw: BatchIn, n: int) -> None:
    if raw.payloads is not None and len(raw.payloads) != n:
        raise BadInputError(f"batch.payloads: expected one payload per id ({n})", "batch.payloads")
