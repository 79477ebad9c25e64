"""Request parsing of the REST handlers: JSON bodies (refused before they are read when larger
than their endpoint's size limit: 413, see :func:`body_limit`) and query parameters. Bodies are
validated into the request models by :mod:`qcluster.api.actions.validate` (shared with the gRPC
surface) within the bounds of ``service.limits`` (:func:`limits`), where the sorting of failures
into Qdrant's error kinds is documented."""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
import pydantic
from aiohttp import web

from qcluster.api.actions.validate import adapt, location, model, validation_error
from qcluster.api.rest.app import READ_ONLY_POST, SETTINGS_KEY, endpoint_of
from qcluster.errors import BadInputError, FormatError, PayloadTooLargeError, UnprocessableInputError
from qcluster.settings import LimitsSettings

__all__ = [
    "FormatError",
    "adapt",
    "body",
    "body_json",
    "limits",
    "location",
    "model",
    "query_bool",
    "query_int",
    "validation_error",
]

M = TypeVar("M", bound=pydantic.BaseModel)


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


async def body(request: web.Request, cls: type[M], *, required: bool = True, prefix: str = "") -> M:
    return model(cls, await body_json(request, required=required), limits(request), prefix)


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
