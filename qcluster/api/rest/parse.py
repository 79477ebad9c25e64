"""Request parsing of the REST handlers: JSON bodies and query parameters. Bodies are validated
into the request models by :mod:`qcluster.api.actions.validate` (shared with the gRPC surface),
where the sorting of failures into Qdrant's error kinds is documented."""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
import pydantic
from aiohttp import web

from qcluster.api.actions.validate import adapt, location, model, validation_error
from qcluster.errors import BadInputError, FormatError, UnprocessableInputError

__all__ = [
    "FormatError",
    "adapt",
    "body",
    "body_json",
    "location",
    "model",
    "query_bool",
    "query_int",
    "validation_error",
]

M = TypeVar("M", bound=pydantic.BaseModel)


async def body_json(request: web.Request, *, required: bool = True) -> Any:
    raw = await request.read()
    if not raw.strip():
        if required:
            raise FormatError("EOF while parsing a value at line 1 column 0")
        return {}
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise FormatError(str(exc)) from None


async def body(request: web.Request, cls: type[M], *, required: bool = True, prefix: str = "") -> M:
    return model(cls, await body_json(request, required=required), prefix)


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
