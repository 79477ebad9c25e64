"""Vectors between JSON and numpy: point batches for upserts and vector updates, and the
``vector`` field of records in responses (a plain list for the unnamed vector, else a map)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from qcluster.api.rest.parse import FormatError
from qcluster.errors import BadInputError, UnprocessableInputError
from qcluster.models.collections import CollectionConfig
from qcluster.models.points import BatchIn
from qcluster.shards.base import AnyVector, VectorSelector
from qcluster.shards.operations import Column, MultiColumn, NamedVectors, PointsBatch
from qcluster.shards.sparse.vector import SparseColumn, SparseVector, sparse_vector
from qcluster.types import DEFAULT_VECTOR, PointId

F32 = npt.NDArray[np.float32]


def _vector_list(raw: Any, field: str) -> list[float]:
    if isinstance(raw, dict):
        if "model" in raw:
            raise BadInputError(f"{field}: inference objects are not supported by qcluster", field)
        raise FormatError(f"{field}: expected a list of numbers", field)
    if not isinstance(raw, list):
        raise FormatError(f"{field}: expected a list of numbers", field)
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
    """A multivector ``[[...], ...]`` (or one vector, taken as a single row) -> ``[rows, dim]``."""
    if isinstance(raw, dict):
        raise BadInputError(f"{where}: Conversion between multi and regular vectors failed", where)
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


def points_batch(
    ids: Sequence[PointId],
    vectors: Sequence[Any],
    payloads: Sequence[dict[str, Any] | None] | None,
    config: CollectionConfig,
    field: str = "points",
) -> PointsBatch:
    """A columnar batch from per-point vector structs (a list, a list of lists, or
    ``{name: list | [[...]] | {indices, values}}``)."""
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
                raise BadInputError(f"Not existing vector name error: {name}", where)
            if isinstance(raw, dict) and "indices" in raw:
                raise BadInputError(f"{where}: Conversion between sparse and regular vectors failed", where)
            if params[name].multi:
                ragged.setdefault(name, [None] * n)[i] = multi_input(
                    raw, params[name].size, _named_field(field, i, name)
                )
                continue
            values = _vector_list(raw, where)
            if values and isinstance(values[0], list):
                raise BadInputError(f"{where}: Conversion between multi and regular vectors failed", where)
            if not values:
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


def _is_special(vec: Mapping[str, Any]) -> bool:
    """A sparse vector or an inference object (document / image / object, which name a model),
    not a map of named vectors."""
    if "indices" in vec and "values" in vec:
        return True
    return "model" in vec and ("text" in vec or "image" in vec or "object" in vec)


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


def batch_from_columns(raw: BatchIn, config: CollectionConfig) -> PointsBatch:
    """The "batch" upsert form: ``{"ids", "vectors": [[...]] | {name: [[...]]}, "payloads"}``."""
    n = len(raw.ids)
    vectors = raw.vectors
    if isinstance(vectors, dict):
        per_point: list[dict[str, Any]] = [{} for _ in range(n)]
        for name, rows in vectors.items():
            if not isinstance(rows, list) or len(rows) != n:
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
    if raw.payloads is not None and len(raw.payloads) != n:
        raise BadInputError(f"batch.payloads: expected one payload per id ({n})", "batch.payloads")
    return points_batch(raw.ids, vecs, raw.payloads, config, "batch")


def _output(v: AnyVector) -> Any:
    # numpy arrays go to orjson as they are: it writes float32 in their shortest form (0.05, not
    # 0.05000000074505806), as Qdrant does
    if isinstance(v, SparseVector):
        return {"indices": np.ascontiguousarray(v.indices), "values": np.ascontiguousarray(v.values)}
    return np.ascontiguousarray(v, dtype=np.float32)


def check_vector_names(sel: VectorSelector, config: CollectionConfig) -> VectorSelector:
    """A ``with_vector`` list may only name vectors the collection has (400 otherwise)."""
    known = {*config.params.vectors, *(config.params.sparse_vectors or {})}
    for name in sel.names or ():
        if name not in known:
            raise BadInputError(f"Not existing vector name error: {name}", "with_vector")
    return sel


def vector_output(vectors: Mapping[str, AnyVector] | None, config: CollectionConfig) -> Any:
    """The ``vector`` field of a record: a plain vector when the point holds only the unnamed
    vector, else ``{name: vector}`` (as Qdrant shapes it)."""
    if vectors is None:
        return None
    if list(vectors) == [DEFAULT_VECTOR]:
        return _output(vectors[DEFAULT_VECTOR])
    if not vectors and config.single_unnamed and not config.params.sparse_vectors:
        return None  # the point's only vector was deleted
    return {name: _output(v) for name, v in vectors.items()}
