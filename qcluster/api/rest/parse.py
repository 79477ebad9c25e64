"""Request parsing shared by the REST handlers: JSON bodies, pydantic validation, query params,
point ids, vectors, selectors. Every failure is a BadInputError (400) or UnprocessableInputError
(422) whose message names the field."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import numpy as np
import orjson
import pydantic
from aiohttp import web

from qcluster.errors import BadInputError, UnprocessableInputError
from qcluster.models.collections import CollectionConfig
from qcluster.shards.operations import NamedVectors, PointsBatch, PointSelector
from qcluster.types import DEFAULT_VECTOR, PointId, parse_point_id

M = TypeVar("M", bound=pydantic.BaseModel)


async def body_json(request: web.Request, *, required: bool = True) -> Any:
    raw = await request.read()
    if not raw.strip():
        if required:
            raise BadInputError("Format error in JSON body: EOF while parsing a value at line 1 column 0")
        return {}
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        err = BadInputError(f"Format error in JSON body: {exc}")
        err.prefix = ""
        raise err from None


def validation_message(exc: pydantic.ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err["loc"] if not isinstance(x, int) or True)
        parts.append(f"{loc}: {err['msg']}" if loc else err["msg"])
    return "[" + ", ".join(parts) + "]"


def model(cls: type[M], data: Any) -> M:
    try:
        return cls.model_validate(data)
    except pydantic.ValidationError as exc:
        raise UnprocessableInputError(validation_message(exc)) from None


def obj(data: Any, field: str = "body") -> dict[str, Any]:
    if not isinstance(data, dict):
        raise UnprocessableInputError(f"{field}: expected a JSON object", field)
    return data


def query_bool(request: web.Request, name: str, default: bool = False) -> bool:
    raw = request.query.get(name)
    if raw is None:
        return default
    if raw.lower() in ("true", "1", ""):
        return True
    if raw.lower() in ("false", "0"):
        return False
    raise BadInputError(f"query parameter {name}: expected true or false, got {raw!r}", name)


def int_field(data: Mapping[str, Any], name: str, default: int | None, *, minimum: int = 0) -> int | None:
    value = data.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise UnprocessableInputError(f"{name}: expected an integer, got {value!r}", name)
    if value < minimum:
        raise UnprocessableInputError(f"{name}: value {value} invalid, must be {minimum} or more", name)
    return value


def point_ids(raw: Any, field: str = "points") -> tuple[PointId, ...]:
    if not isinstance(raw, list):
        raise UnprocessableInputError(f"{field}: expected a list of point ids", field)
    return tuple(parse_point_id(v, f"{field}[{i}]") for i, v in enumerate(raw))


def selector(data: Mapping[str, Any], field: str = "points") -> PointSelector:
    """Qdrant's PointsSelector: {"points": [...]} | {"filter": {...}} (also both, for payload ops)."""
    ids = data.get(field)
    flt = data.get("filter")
    if ids is None and flt is None:
        raise UnprocessableInputError(f"expected `{field}` (a list of ids) or `filter`", field)
    if flt is not None and not isinstance(flt, dict):
        raise UnprocessableInputError("filter: expected a JSON object", "filter")
    return PointSelector(ids=None if ids is None else point_ids(ids, field), filter=flt)


def _vector_list(raw: Any, field: str) -> list[float]:
    if isinstance(raw, dict):
        if "indices" in raw:
            raise BadInputError(f"{field}: sparse vectors are not supported by qcluster yet", field)
        raise UnprocessableInputError(f"{field}: expected a list of numbers", field)
    if not isinstance(raw, list) or not raw:
        raise UnprocessableInputError(f"{field}: expected a non-empty list of numbers", field)
    if isinstance(raw[0], list):
        raise BadInputError(f"{field}: multivectors are not supported by qcluster yet", field)
    return raw


def points_batch(
    ids: Sequence[PointId],
    vectors: Sequence[Any],
    payloads: Sequence[Any] | None,
    config: CollectionConfig,
    field: str = "points",
) -> PointsBatch:
    """Build a columnar batch from per-point vector structs (list or {name: list})."""
    n = len(ids)
    dims = {name: p.size for name, p in config.params.vectors.items()}
    fast = _unnamed_fast_path(vectors, dims)
    if fast is not None:
        return PointsBatch(tuple(ids), {DEFAULT_VECTOR: NamedVectors(fast)}, _payloads(payloads, field))
    columns: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for i, vec in enumerate(vectors):
        named = vec if isinstance(vec, dict) and "indices" not in vec else {DEFAULT_VECTOR: vec}
        for name, raw in named.items():
            if raw is None:
                continue
            if name not in dims:
                raise BadInputError(f"Not existing vector name error: {name}", f"{field}[{i}].vector")
            values = _vector_list(raw, f"{field}[{i}].vector")
            if len(values) != dims[name]:
                raise BadInputError(
                    f"Vector dimension error: expected dim: {dims[name]}, got {len(values)}",
                    f"{field}[{i}].vector",
                )
            col = columns.get(name)
            if col is None:
                col = columns[name] = (np.zeros((n, dims[name]), np.float32), np.zeros(n, np.bool_))
            try:
                col[0][i] = values
            except (ValueError, TypeError):
                raise UnprocessableInputError(
                    f"{field}[{i}].vector: expected numbers", f"{field}[{i}].vector"
                ) from None
            col[1][i] = True
    out = {
        name: NamedVectors(data, None if bool(present.all()) else present)
        for name, (data, present) in columns.items()
    }
    return PointsBatch(tuple(ids), out, _payloads(payloads, field))


def _unnamed_fast_path(vectors: Sequence[Any], dims: Mapping[str, int]) -> np.ndarray | None:
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


def _payloads(payloads: Sequence[Any] | None, field: str) -> tuple[dict[str, Any] | None, ...] | None:
    if payloads is None:
        return None
    for i, p in enumerate(payloads):
        if p is not None and not isinstance(p, dict):
            raise UnprocessableInputError(
                f"{field}[{i}].payload: expected a JSON object", f"{field}[{i}].payload"
            )
    return tuple(payloads)


def batch_from_columns(raw: Mapping[str, Any], config: CollectionConfig) -> PointsBatch:
    """The "batch" upsert form: {"ids": [...], "vectors": [[...]] | {name: [[...]]}, "payloads": [...]}."""
    ids = point_ids(raw.get("ids"), "batch.ids")
    vectors = raw.get("vectors")
    if isinstance(vectors, dict):
        per_point: list[dict[str, Any]] = [{} for _ in ids]
        for name, rows in vectors.items():
            if not isinstance(rows, list) or len(rows) != len(ids):
                raise UnprocessableInputError(
                    f"batch.vectors.{name}: expected one vector per id", "batch.vectors"
                )
            for i, row in enumerate(rows):
                per_point[i][name] = row
        vecs: list[Any] = per_point
    elif isinstance(vectors, list):
        if len(vectors) != len(ids):
            raise UnprocessableInputError("batch.vectors: expected one vector per id", "batch.vectors")
        vecs = vectors
    else:
        raise UnprocessableInputError("batch.vectors: expected a list or a mapping of lists", "batch.vectors")
    payloads = raw.get("payloads")
    if payloads is not None and (not isinstance(payloads, list) or len(payloads) != len(ids)):
        raise UnprocessableInputError("batch.payloads: expected one payload per id", "batch.payloads")
    return points_batch(ids, vecs, payloads, config, "batch")


def point_structs(raw: Any, config: CollectionConfig) -> PointsBatch:
    if not isinstance(raw, list):
        raise UnprocessableInputError("points: expected a list of points", "points")
    ids: list[PointId] = []
    vecs: list[Any] = []
    payloads: list[Any] = []
    for i, p in enumerate(raw):
        if not isinstance(p, dict) or "id" not in p:
            raise UnprocessableInputError(
                f"points[{i}]: expected an object with id and vector", f"points[{i}]"
            )
        ids.append(parse_point_id(p["id"], f"points[{i}].id"))
        vecs.append(p.get("vector", {}))
        payloads.append(p.get("payload"))
    return points_batch(ids, vecs, payloads, config)


def vector_output(vectors: Mapping[str, np.ndarray] | None, config: CollectionConfig) -> Any:
    if vectors is None:
        return None
    if config.single_unnamed:
        v = vectors.get(DEFAULT_VECTOR)
        return None if v is None else v.tolist()
    return {name: v.tolist() for name, v in vectors.items()}


def filter_field(data: Mapping[str, Any], name: str = "filter") -> Mapping[str, Any] | None:
    flt = data.get(name)
    if flt is not None and not isinstance(flt, Mapping):
        raise UnprocessableInputError(f"{name}: expected an object", name)
    return flt
