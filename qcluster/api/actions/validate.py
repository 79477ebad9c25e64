"""Validation of request models, shared by every surface. Failures are sorted the way Qdrant sorts
them:

- ``FormatError`` (400 ``Format error in JSON body: ...``): a wrong type, a missing field, an
  unknown enum variant, a negative number where an unsigned one belongs;
- ``UnprocessableInputError`` (422 ``Validation error in JSON body: [field: reason; ...]``): a
  well-typed value out of its range (``limit: 0``, ``size: 70000``);
- ``BadInputError`` (400 ``Wrong input: ...``): valid input that makes no sense for the data
  (wrong vector dimension, unknown vector name, unknown filter key; raised further down), or a
  request beyond one of the bounds of ``service.limits`` (``models/bounds.py``: the message names
  the field and the bound).

Each message names the field (``searches[0].limit``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import orjson
import pydantic

from qcluster.errors import BadInputError, FormatError, UnprocessableInputError
from qcluster.models.bounds import BOUND, DEFAULT_LIMITS, context
from qcluster.models.common import FORMAT_ERROR, TAG
from qcluster.settings import LimitsSettings

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
    return f"{err['msg']}, got {short(err.get('input'))}"


def short(value: Any) -> str:
    """A value as a short JSON text for an error message."""
    text = orjson.dumps(value, default=str).decode() if value is not None else "null"
    return text if len(text) <= 60 else text[:57] + "..."


def validation_error(exc: pydantic.ValidationError, prefix: str = "") -> BadInputError:
    """One 4xx error for a pydantic failure: a bound of ``service.limits`` passed first (400
    naming the field and the bound), then format errors (as serde fails before validation
    runs), else every range error, ``[field: reason; ...]``. ``prefix`` goes before each range
    error's field (Qdrant names the fields of a query request ``internal.<field>``)."""
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
    parts = [f"{prefix}{location(e['loc'])}: {_range_message(e)}" for e in errors]
    first_field = location(errors[0]["loc"]) if errors else None
    return UnprocessableInputError("[" + "; ".join(parts) + "]", first_field)


def model(cls: type[M], data: Any, bounds: LimitsSettings | None = None, prefix: str = "") -> M:
    """Validate a request body (strict, like serde) into ``cls``, within ``bounds`` (default:
    the default ``service.limits``)."""
    if not isinstance(data, dict):
        raise FormatError(f"expected a JSON object, got {short(data)}")
    try:
        return cls.model_validate(data, strict=True, context=context(bounds or DEFAULT_LIMITS))
    except pydantic.ValidationError as exc:
        raise validation_error(exc, prefix) from None


def adapt(adapter: pydantic.TypeAdapter[Any], data: Any, bounds: LimitsSettings | None = None) -> Any:
    """Validate a request body (strict) with a type adapter (for bodies that are unions)."""
    if not isinstance(data, dict):
        raise FormatError(f"expected a JSON object, got {short(data)}")
    try:
        return adapter.validate_python(data, strict=True, context=context(bounds or DEFAULT_LIMITS))
    except pydantic.ValidationError as exc:
        raise validation_error(exc) from None
