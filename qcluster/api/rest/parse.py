"""Request parsing shared by the REST handlers: JSON bodies, pydantic validation, query parameters,
selectors. Every failure is a 4xx naming the field, sorted the way Qdrant sorts them:

- ``FormatError`` (400 ``Format error in JSON body: ...``): not JSON, a wrong type, a missing
  field, an unknown enum variant, a negative number where an unsigned one belongs;
- ``UnprocessableInputError`` (422 ``Validation error in JSON body: [field: reason; ...]``): a
  well-typed value out of its range (``limit: 0``, ``size: 70000``);
- ``BadInputError`` (400 ``Wrong input: ...``): valid JSON that makes no sense for the data
  (wrong vector dimension, unknown vector name, unknown filter key), or a body beyond one of the
  bounds of ``service.limits`` (``models/bounds.py``: the message names the field and the bound);
- ``PayloadTooLargeError`` (413): a body larger than its endpoint's size limit, refused before
  it is read (the limit depends on the endpoint, see :func:`body_limit`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import orjson
import pydantic
from aiohttp import web

from qcluster.api.rest.app import READ_ONLY_POST, SETTINGS_KEY, endpoint_of
from qcluster.errors import BadInputError, PayloadTooLargeError, UnprocessableInputError
from qcluster.models.bounds import BOUND, DEFAULT_LIMITS, context
from qcluster.models.common import FORMAT_ERROR, TAG
from qcluster.settings import LimitsSettings
from qcluster.shards.operations import PointSelector
from qcluster.types import PointId

M = TypeVar("M", bound=pydantic.BaseModel)

# pydantic error types that are a value out of range (422); every other type is a format error.
_RANGE_ERRORS = frozenset(
    {
        "greater_than",
        "greater_than_equal",
        "less_than",
        "less_than_equal",
        "too_short",
        "too_long",
        "string_too_short",
        "string_too_long",
        "multiple_of",
        "value_error",
        "assertion_error",
    }
)


class FormatError(BadInputError):
    """The body is not the JSON shape the endpoint takes (Qdrant's serde deserialization error)."""

    prefix = "Format error in JSON body: "


# Endpoints whose bodies carry points (vectors, payloads): ``service.max_request_size_mb``.
_C = "/collections/{collection_name}/points"
POINT_WRITES = frozenset(
    {
        _C,  # PUT: upsert (POST, retrieval by ids, is a read)
        f"{_C}/batch",
        f"{_C}/vectors",
        f"{_C}/vectors/delete",
        f"{_C}/delete",
        f"{_C}/payload",
        f"{_C}/payload/delete",
        f"{_C}/payload/clear",
    }
)


def limits(request: web.Request) -> LimitsSettings:
    """The bounds for this request: ``service.limits`` (strict mode, when it lands, will
    tighten them per collection here)."""
    return request.app[SETTINGS_KEY].service.limits


def body_limit(request: web.Request) -> tuple[int, str]:
    """(bytes, setting) the body of this request may take: point writes the most, reads less,
    changes to collections, aliases and the cluster the least."""
    service = request.app[SETTINGS_KEY].service
    endpoint = endpoint_of(request)
    if request.method == "POST" and endpoint in READ_ONLY_POST:
        return service.limits.max_query_request_size_mb * 2**20, "service.limits.max_query_request_size_mb"
    if endpoint in POINT_WRITES:
        return service.max_request_size_mb * 2**20, "service.max_request_size_mb"
    return service.limits.max_admin_request_size_mb * 2**20, "service.limits.max_admin_request_size_mb"


def _too_large(size: int, limit: int, setting: str) -> PayloadTooLargeError:
    return PayloadTooLargeError(
        f"the request body ({size} bytes or more) exceeds the limit of {limit} bytes for this "
        f"endpoint ({setting})"
    )


async def read_body(request: web.Request) -> bytes:
    """The raw body, refused (413) before it is read when larger than :func:`body_limit`."""
    limit, setting = body_limit(request)
    length = request.content_length
    if length is not None:
        if length > limit:
            raise _too_large(length, limit, setting)
        return await request.read()
    chunks: list[bytes] = []
    total = 0
    while chunk := await request.content.readany():  # no length given: count as it arrives
        total += len(chunk)
        if total > limit:
            raise _too_large(total, limit, setting)
        chunks.append(chunk)
    return b"".join(chunks)


async def body_json(request: web.Request, *, required: bool = True) -> Any:
    raw = await read_body(request)
    if not raw.strip():
        if required:
            raise FormatError("EOF while parsing a value at line 1 column 0")
        return {}
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise FormatError(str(exc)) from None


def location(loc: Sequence[int | str]) -> str:
    """``("searches", 0, "limit")`` -> ``searches[0].limit``; union-branch tags are dropped."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.startswith(TAG) or part in ("function-after", "function-before"):
            continue
        else:
            out += f".{part}" if out else part
    return out


def _range_message(err: Mapping[str, Any]) -> str:
    ctx = err.get("ctx") or {}
    value = err.get("input")
    kind = err["type"]
    if kind == "greater_than_equal":
        return f"value {value} invalid, must be {ctx['ge']} or larger"
    if kind == "greater_than":
        return f"value {value} invalid, must be larger than {ctx['gt']}"
    if kind == "less_than_equal":
        return f"value {value} invalid, must be {ctx['le']} or smaller"
    if kind == "less_than":
        return f"value {value} invalid, must be smaller than {ctx['lt']}"
    if kind in ("too_short", "string_too_short"):
        return f"must have at least {ctx.get('min_length')} items"
    if kind in ("too_long", "string_too_long"):
        return f"must have at most {ctx.get('max_length')} items"
    msg = str(err["msg"])
    return msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def _is_format(err: Mapping[str, Any]) -> bool:
    if err["type"] not in _RANGE_ERRORS:
        return True
    value = err.get("input")
    # A negative number for an unsigned field fails Qdrant's deserialization, not its validation.
    return (
        err["type"] in ("greater_than_equal", "greater_than")
        and isinstance(value, int | float)
        and not isinstance(value, bool)
        and value < 0
    )


def _format_message(err: Mapping[str, Any]) -> str:
    if err["type"] == "missing":
        return "missing field"
    if err["type"] in ("greater_than_equal", "greater_than"):
        return f"invalid value: {err.get('input')!r}, expected a non-negative integer"
    if err["type"] == FORMAT_ERROR:
        return str(err["msg"])
    return f"{err['msg']}, got {_short(err.get('input'))}"


def _short(value: Any) -> str:
    text = orjson.dumps(value, default=str).decode() if value is not None else "null"
    return text if len(text) <= 60 else text[:57] + "..."


def validation_error(exc: pydantic.ValidationError) -> BadInputError:
    """One 4xx error for a pydantic failure: a bound of ``service.limits`` passed first (400
    naming the field and the bound), then format errors (as serde fails before validation
    runs), else every range error, ``[field: reason; ...]``."""
    errors = exc.errors(include_url=False)
    bounds = [e for e in errors if e["type"] == BOUND]
    if bounds:
        where = location(bounds[0]["loc"])
        message = str(bounds[0]["msg"])
        return BadInputError(f"{where}: {message}" if where else message, where or None)
    formats = [e for e in errors if _is_format(e)]
    if formats:
        first = formats[0]
        where = location(first["loc"])
        message = _format_message(first)
        return FormatError(f"{where}: {message}" if where else message, where or None)
    parts = [f"{location(e['loc'])}: {_range_message(e)}" for e in errors]
    first_field = location(errors[0]["loc"]) if errors else None
    return UnprocessableInputError("[" + "; ".join(parts) + "]", first_field)


def model(cls: type[M], data: Any, bounds: LimitsSettings | None = None) -> M:
    """Validate a request body (strict, like serde) into ``cls``, within ``bounds`` (default:
    the default ``service.limits``)."""
    if not isinstance(data, dict):
        raise FormatError(f"expected a JSON object, got {_short(data)}")
    try:
        return cls.model_validate(data, strict=True, context=context(bounds or DEFAULT_LIMITS))
    except pydantic.ValidationError as exc:
        raise validation_error(exc) from None


def adapt(adapter: pydantic.TypeAdapter[Any], data: Any, bounds: LimitsSettings | None = None) -> Any:
    """Validate a request body (strict) with a type adapter (for bodies that are unions)."""
    if not isinstance(data, dict):
        raise FormatError(f"expected a JSON object, got {_short(data)}")
    try:
        return adapter.validate_python(data, strict=True, context=context(bounds or DEFAULT_LIMITS))
    except pydantic.ValidationError as exc:
        raise validation_error(exc) from None


async def body(request: web.Request, cls: type[M], *, required: bool = True) -> M:
    return model(cls, await body_json(request, required=required), limits(request))


def query_bool(request: web.Request, name: str, default: bool = False) -> bool:
    raw = request.query.get(name)
    if raw is None:
        return default
    if raw.lower() in ("true", "1", ""):
        return True
    if raw.lower() in ("false", "0"):
        return False
    raise BadInputError(f"query parameter {name}: expected true or false, got {raw!r}", name)


def query_int(request: web.Request, name: str, minimum: int = 0) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise BadInputError(f"query parameter {name}: expected an integer, got {raw!r}", name) from None
    if value < minimum:
        raise UnprocessableInputError(f"[{name}: value {value} invalid, must be {minimum} or larger]", name)
    return value


def selector(
    points: Sequence[PointId] | None, flt: Mapping[str, Any] | None, field: str = "points"
) -> PointSelector:
    """Qdrant's PointsSelector: ids, a filter, or (payload operations) both."""
    if points is None and flt is None:
        raise BadInputError("Either list of point ids or filter must be provided", field)
    return PointSelector(ids=None if points is None else tuple(points), filter=flt)
