"""Point batches for upserts and vector updates, from the vectors a request carries.

A vector arrives as a JSON list (REST) or as a float32 numpy array (gRPC, decoded from packed
floats without a per-element step); named vectors as ``{name: vector}``; a multivector as a list
of lists or a 2-d array; a sparse vector as ``{"indices", "values"}``. The columnar
:class:`PointsBatch` holds one ``(n, dim)`` float32 matrix per vector name. Whole-batch fast paths:
a list of equally long JSON lists is converted in one numpy call; a ready ``(n, dim)`` matrix is
taken as it is. Anything else goes point by point, so an error names the point and the field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from qcluster.errors import BadInputError, FormatError, UnprocessableInputError
from qcluster.models.collections import CollectionConfig
from qcluster.models.points import BatchIn
from qcluster.shards.operations import Column, MultiColumn, NamedVectors, PointsBatch
from qcluster.shards.sparse.vector import SparseColumn, SparseVector, sparse_vector
from qcluster.types import DEFAULT_VECTOR, PointId

F32 = npt.NDArray[np.float32]


def _dense(raw: Any, field: str) -> Sequence[float] | F32:
    """One dense vector (a list of numbers or a 1-d array); anything else is refused, naming why."""
    if isinstance(raw, np.ndarray):
        if raw.ndim == 2:
            raise BadInputError(f"{field}: Conversion between multi and regular vectors failed", field)
        return raw
    if isinstance(raw, dict):
        if "model" in raw:
            raise BadInputError(f"{field}: inference objects are not supported by qcluster", field)
        raise FormatError(f"{field}: expected a list of numbers", field)
    if not isinstance(raw, list):
        raise FormatError(f"{field}: expected a list of numbers", field)
    if raw and isinstance(raw[0], list | np.ndarray):
        raise BadInputError(f"{field}: Conversion between multi and regular vectors failed", field)
    return raw


def _named_field(field: str, i: int, name: str) -> str:
    """Qdrant's path of a point's vector in validation messages (``?`` for a map key)."""
    return f"{field}[{i}].vector" + (".?" if name else "")


def sparse_input(raw: Any, where: str) -> SparseVector:
    """``{"indices": [...], "values": [...]}`` -> a checked, sorted sparse vector."""
    if not isinstance(raw, dict) or "indices" not in raw or "values" not in raw:
        raise FormatError(f"{where}: expected a sparse vector {{indices, values}}", where)
    return sparse_vector(raw["indices"], raw["values"], where)


def multi_input(raw: Any, dim: int, where: str) -> F32:
    """A multivector ``[[...], ...]`` or a 2-d array (or one vector, taken as a single row) ->
    ``[rows, dim]``."""
    if isinstance(raw, dict):
        raise BadInputError(f"{where}: Conversion between multi and regular vectors failed", where)
    if isinstance(raw, np.ndarray):
        if raw.size == 0:
            raise UnprocessableInputError(f"[{where}: dense vector must not be empty]", where)
        rows_arr = raw.reshape(1, -1) if raw.ndim == 1 else raw
        if rows_arr.ndim != 2 or rows_arr.shape[1] != dim:
            got = rows_arr.shape[-1] if rows_arr.ndim else 0
            raise BadInputError(f"Vector dimension error: expected dim: {dim}, got {got}", where)
        return np.ascontiguousarray(rows_arr, dtype=np.float32)
    if not isinstance(raw, list):
        raise FormatError(f"{where}: expected a list of vectors", where)
    if not raw:
        raise UnprocessableInputError(f"[{where}: dense vector must not be empty]", where)
    rows = raw if isinstance(raw[0], list) else [raw]
    if any(not isinstance(r, list) or not r for r in rows):
        raise UnprocessableInputError(f"[{where}.data: all vectors must be non-empty]", where)
    first = len(rows[0])
    for r in rows:
        if len(r) != first:
            raise UnprocessableInputError(
                f"[{where}.data: all vectors must have the same dimension, found vector with dimension {len(r)}]",
                where,
            )
    if first != dim:
        raise BadInputError(f"Vector dimension error: expected dim: {dim}, got {first}", where)
    try:
        return np.asarray(rows, dtype=np.float32)
    except (TypeError, ValueError):
        raise FormatError(f"{where}: expected lists of numbers", where) from None


def _is_special(vec: Mapping[str, Any]) -> bool:
    """A sparse vector or an inference object (document / image / object, which name a model),
    not a map of named vectors."""
    if "indices" in vec and "values" in vec:
        return True
    return "model" in vec and ("text" in vec or "image" in vec or "object" in vec)


def points_batch(
    ids: Sequence[PointId],
    vectors: Sequence[Any],
    payloads: Sequence[dict[str, Any] | None] | None,
    config: CollectionConfig,
    field: str = "points",
) -> PointsBatch:
    """A columnar batch from per-point vector structs (a vector, a list of lists, or
    ``{name: vector | [[...]] | {indices, values}}``)."""
    n = len(ids)
    params = config.params.vectors
    sparse_names = config.params.sparse_vectors or {}
    dims = {name: p.size for name, p in params.items() if not p.multi}
    pl = None if payloads is None else tuple(payloads)
    fast = _unnamed_fast_path(vectors, dims) if DEFAULT_VECTOR in dims else None
    if fast is not None:
        return PointsBatch(tuple(ids), {DEFAULT_VECTOR: NamedVectors(fast)}, pl)
    columns: dict[str, tuple[F32, npt.NDArray[np.bool_]]] = {}
    ragged: dict[str, list[Any]] = {}
    for i, vec in enumerate(vectors):
        named = vec if isinstance(vec, dict) and not _is_special(vec) else {DEFAULT_VECTOR: vec}
        for name, raw in named.items():
            if raw is None:
                continue
            where = f"{field}[{i}].vector" + (f".{name}" if name else "")
            if name in sparse_names:
                ragged.setdefault(name, [None] * n)[i] = sparse_input(raw, _named_field(field, i, name))
                continue
            if name not in params:
                if isinstance(raw, dict) and "indices" in raw:  # the body's own shape is checked
                    sparse_input(raw, _named_field(field, i, name))  # first, as Qdrant does
                raise BadInputError(f"Not existing vector name error: {name}", where)
            if isinstance(raw, dict) and "indices" in raw:
                raise BadInputError(f"{where}: Conversion between sparse and regular vectors failed", where)
            if params[name].multi:
                ragged.setdefault(name, [None] * n)[i] = multi_input(
                    raw, params[name].size, _named_field(field, i, name)
                )
                continue
            values = _dense(raw, where)
            if len(values) == 0:
                raise UnprocessableInputError(
                    f"[{_named_field(field, i, name)}: dense vector must not be empty]", where
                )
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
    out: dict[str, Column] = {
        name: NamedVectors(data, None if bool(present.all()) else present)
        for name, (data, present) in columns.items()
    }
    for name, rows in ragged.items():
        if name in sparse_names:
            out[name] = SparseColumn.from_rows(rows)
        else:
            out[name] = MultiColumn.from_rows(rows, params[name].size)
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
    if params is None or params.multi or matrix.ndim != 2 or matrix.shape != (len(raw.ids), params.size):
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
