"""aiohttp application factory: routes, the error middleware, API-key auth, body size limit.

Every response carries Qdrant's envelope: ``{"result", "status": "ok", "time"}``; every error
``{"status": {"error": msg}, "time"}`` with the status code from ``errors.py``.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from qcluster.errors import QClusterError
from qcluster.logging import get_logger
from qcluster.settings import Settings
from qcluster.shards import load
from qcluster.toc import TableOfContents

log = get_logger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

TOC_KEY = web.AppKey("toc", TableOfContents)
SETTINGS_KEY = web.AppKey("settings", Settings)
STATE_KEY = web.AppKey("state", dict)
CONSENSUS_KEY = web.AppKey("consensus", dict)  # {"service": ConsensusService} in cluster mode

OPEN_PATHS = frozenset({"/", "/healthz", "/livez", "/readyz"})
READ_ONLY_POST = (
    "/points/search",
    "/points/query",
    "/points/scroll",
    "/points/count",
    "/points/recommend",
    "/points/discover",
    "/facet",
    "/points/query/batch",
    "/points/search/batch",
    "/points/recommend/batch",
    "/points/discover/batch",
    "/points/query/groups",
    "/points/search/groups",
    "/points/recommend/groups",
    "/points/search/matrix",
)


def json_response(payload: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY),
        status=status,
        content_type="application/json",
    )


def ok(request: web.Request, result: Any, status: int = 200) -> web.Response:
    started: float = request.get("started", time.perf_counter())
    return json_response({"result": result, "status": "ok", "time": time.perf_counter() - started}, status)


def error_response(request: web.Request, status: int, message: str) -> web.Response:
    started: float = request.get("started", time.perf_counter())
    return json_response({"status": {"error": message}, "time": time.perf_counter() - started}, status)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request["started"] = time.perf_counter()
    load.enter()
    try:
        return await handler(request)
    except QClusterError as exc:
        if exc.http_status >= 500:
            log.error("request failed", path=request.path, error=exc.message)
        return error_response(request, exc.http_status, exc.user_message())
    except web.HTTPRequestEntityTooLarge as exc:
        return error_response(
            request, 413, f"Payload too large: {exc.text or 'request body exceeds the limit'}"
        )
    except web.HTTPException as exc:
        if exc.status == 404:
            return error_response(
                request, 404, f"Not found: no such endpoint {request.method} {request.path}"
            )
        if exc.status == 405:
            return error_response(request, 405, f"Method {request.method} not allowed on {request.path}")
        raise
    except Exception as exc:
        log.exception("unhandled error", path=request.path)
        return error_response(request, 500, f"Service internal error: {exc}")
    finally:
        load.leave()


def _presented_key(request: web.Request) -> str | None:
    key = request.headers.get("api-key")
    if key is not None:
        return key
    auth = request.headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return None


def _is_read(request: web.Request) -> bool:
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return True
    return (request.method == "POST" and any(request.path.endswith(s) for s in READ_ONLY_POST)) or (
        request.method == "POST"
        and request.path.endswith("/points")
        and request.path.startswith("/collections/")
    )


def auth_middleware(settings: Settings) -> Any:
    full = settings.service.api_key
    read_only = settings.service.read_only_api_key

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if (full is None and read_only is None) or request.path in OPEN_PATHS:
            return await handler(request)
        given = _presented_key(request)
        if given is None:
            return error_response(request, 401, "Must provide an API key or an Authorization bearer token")
        given_b = given.encode()
        if full is not None and hmac.compare_digest(given_b, full.encode()):
            return await handler(request)
        if read_only is not None and hmac.compare_digest(given_b, read_only.encode()):
            if _is_read(request):
                return await handler(request)
            return error_response(request, 403, "Forbidden: the read-only API key cannot modify data")
        return error_response(request, 401, "Invalid API key or JWT")

    return check


def create_app(toc: TableOfContents, settings: Settings) -> web.Application:
    from qcluster.api.rest import collections, points, search, service, snapshots

    app = web.Application(
        middlewares=[error_middleware, auth_middleware(settings)],
        client_max_size=settings.service.max_request_size_mb * 1024 * 1024,
    )
    app[TOC_KEY] = toc
    app[SETTINGS_KEY] = settings
    app[STATE_KEY] = {"ready": False}
    app[CONSENSUS_KEY] = {}
    service.register(app)
    collections.register(app)
    points.register(app)
    search.register(app)
    snapshots.register(app)
    return app
