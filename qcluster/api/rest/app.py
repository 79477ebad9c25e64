"""aiohttp application factory: routes, the error middleware, API-key auth, deadlines.

Every response carries Qdrant's envelope ``{"result", "status": "ok", "time"}``; every error
``{"status": {"error": msg}, "time"}`` with the status code from ``errors.py``. Request bodies
above their endpoint's size limit are refused with 413 before they are parsed (``parse.py``).

Middlewares, outermost first: ``edge`` (timing, metrics, CORS, error translation) -> ``auth`` ->
``deadline`` (``deadlines.py``). The event loop's lag is measured while the app runs.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from qcluster.collection.read_scope import parse_consistency, read_scope
from qcluster.errors import QClusterError, RateLimitedError, UnprocessableInputError, is_transient
from qcluster.logging import get_logger
from qcluster.metrics import Metrics
from qcluster.settings import Settings
from qcluster.shards import load
from qcluster.toc import TableOfContents

log = get_logger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

TOC_KEY = web.AppKey("toc", TableOfContents)
SETTINGS_KEY = web.AppKey("settings", Settings)
STATE_KEY = web.AppKey("state", dict)
CONSENSUS_KEY = web.AppKey("consensus", dict)  # {"service": ConsensusService} in cluster mode
METRICS_KEY = web.AppKey("metrics", Metrics)
STARTED_KEY = web.RequestKey("started", float)

OPEN_PATHS = frozenset({"/", "/healthz", "/livez", "/readyz"})
_C = "/collections/{collection_name}"
# POST endpoints that only read (Qdrant's list, plus the query API); every GET reads.
READ_ONLY_POST = frozenset(
    {
        f"{_C}/points",
        f"{_C}/points/count",
        f"{_C}/points/scroll",
        f"{_C}/points/search",
        f"{_C}/points/search/batch",
        f"{_C}/points/search/groups",
        f"{_C}/points/recommend",
        f"{_C}/points/recommend/batch",
        f"{_C}/points/recommend/groups",
        f"{_C}/points/discover",
        f"{_C}/points/discover/batch",
        f"{_C}/points/query",
        f"{_C}/points/query/batch",
        f"{_C}/points/query/groups",
        f"{_C}/facet",
    }
)
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, PUT, PATCH, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "*",
}


def json_response(payload: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY),
        status=status,
        content_type="application/json",
    )


def ok(request: web.Request, result: Any, status: int = 200) -> web.Response:
    started = request.get(STARTED_KEY, time.perf_counter())
    return json_response({"result": result, "status": "ok", "time": time.perf_counter() - started}, status)


RENDER_ON_THREAD = 1000  # points: larger answers are built and encoded off the event loop


async def ok_built(request: web.Request, build: Callable[[], Any], points: int) -> web.Response:
    """``ok(request, build())``; an answer of more than ``RENDER_ON_THREAD`` points is built and
    encoded on a thread, so a large answer does not hold the loop (other clients' requests go on
    between the interpreter's GIL switches)."""
    if points <= RENDER_ON_THREAD:
        return ok(request, build())
    started = request.get(STARTED_KEY, time.perf_counter())

    def encode() -> bytes:
        result = build()
        envelope = {"result": result, "status": "ok", "time": time.perf_counter() - started}
        return orjson.dumps(envelope, option=orjson.OPT_SERIALIZE_NUMPY)

    return web.Response(body=await asyncio.to_thread(encode), content_type="application/json")


def error_response(request: web.Request, status: int, message: str) -> web.Response:
    started = request.get(STARTED_KEY, time.perf_counter())
    return json_response({"status": {"error": message}, "time": time.perf_counter() - started}, status)


def error_message(exc: QClusterError) -> str:
    """``exc.user_message()``, with 422 bodies in Qdrant's ``[field: reason; ...]`` form."""
    if isinstance(exc, UnprocessableInputError) and not exc.message.startswith("["):
        return f"{exc.prefix}[{exc.message}]"
    return exc.user_message()


def endpoint_of(request: web.Request) -> str:
    """The route template (``/collections/{collection_name}/points``), or ``unknown``."""
    info = request.match_info.route.resource
    return info.canonical if info is not None else "unknown"


def edge_middleware(metrics: Metrics, cors: bool) -> Any:
    @web.middleware
    async def edge(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = request[STARTED_KEY] = time.perf_counter()
        load.enter()
        try:
            if cors and request.method == "OPTIONS":
                response: web.StreamResponse = web.Response(status=200)
            else:
                response = await _translated(request, handler)
        finally:
            load.leave()
        if cors:
            response.headers.update(CORS_HEADERS)
        metrics.observe_request(
            request.method,
            endpoint_of(request),
            response.status,
            time.perf_counter() - started,
            request.match_info.get("collection_name"),
        )
        return response

    return edge


async def _translated(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        # ?consistency= applies to every shard read the request makes (see collection/read_scope.py)
        with read_scope(parse_consistency(request.query.get("consistency"))):
            return await handler(request)
    except QClusterError as exc:
        if is_transient(exc):  # no quorum, starting up, a peer away: the client retries
            log.warning("request failed; retryable", path=request.path, error=exc.message)
        elif exc.http_status >= 500:
            log.error("request failed", path=request.path, error=exc.message)
        response = error_response(request, exc.http_status, error_message(exc))
        if isinstance(exc, RateLimitedError) and exc.retry_after is not None:
            response.headers["Retry-After"] = str(exc.retry_after)
        return response
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
            return error_response(request, 405, f"Method {request.method} is not allowed on {request.path}")
        return error_response(request, exc.status, exc.text or exc.reason)
    except Exception as exc:
        log.exception("unhandled error", path=request.path)
        return error_response(request, 500, f"Service internal error: {exc}")


def presented_key(request: web.Request) -> str | None:
    key = request.headers.get("api-key")
    if key is not None:
        return key
    auth = request.headers.get("Authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return None


def is_read(request: web.Request) -> bool:
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return True
    return request.method == "POST" and endpoint_of(request) in READ_ONLY_POST


def auth_middleware(settings: Settings) -> Any:
    full = settings.service.api_key
    read_only = settings.service.read_only_api_key
    full_b = None if full is None else full.encode()
    read_b = None if read_only is None else read_only.encode()

    @web.middleware
    async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in OPEN_PATHS or request.method == "OPTIONS":
            return await handler(request)
        given = presented_key(request)
        if given is None:
            return error_response(request, 401, "Must provide an API key or an Authorization bearer token")
        given_b = given.encode()
        # Compare against both keys every time: the timing says nothing about which one matched.
        is_full = full_b is not None and hmac.compare_digest(given_b, full_b)
        is_read_only = read_b is not None and hmac.compare_digest(given_b, read_b)
        if is_full:
            return await handler(request)
        if is_read_only:
            if is_read(request):
                return await handler(request)
            return error_response(request, 403, "Forbidden: the read-only API key cannot modify data")
        return error_response(request, 401, "Invalid API key or JWT")

    return auth


def create_app(toc: TableOfContents, settings: Settings, metrics: Metrics | None = None) -> web.Application:
    from qcluster.api.rest import (
        cluster_ops,
        collections,
        matrix,
        points,
        scroll,
        search,
        service,
        shard_keys,
        shard_snapshots,
        snapshots,
    )
    from qcluster.api.rest.deadlines import BACKGROUND_KEY, deadline_middleware, drain_writes
    from qcluster.loop_lag import LoopLagMonitor

    metrics = metrics or Metrics()
    svc = settings.service
    background: set[Any] = set()
    middlewares = [edge_middleware(metrics, svc.enable_cors)]
    if svc.api_key is not None or svc.read_only_api_key is not None:
        middlewares.append(auth_middleware(settings))
    middlewares.append(deadline_middleware(svc.limits, background))
    # Each endpoint reads its body against its own, smaller limit (parse.body_limit).
    largest = max(
        svc.max_request_size_mb, svc.limits.max_query_request_size_mb, svc.limits.max_admin_request_size_mb
    )
    app = web.Application(middlewares=middlewares, client_max_size=largest * 2**20)
    app[BACKGROUND_KEY] = background
    monitor = LoopLagMonitor(metrics)

    async def start_monitor(_: web.Application) -> None:
        monitor.start()

    async def stop_monitor(_: web.Application) -> None:
        await monitor.stop()

    app.on_startup.append(start_monitor)
    app.on_cleanup.append(drain_writes)
    app.on_cleanup.append(stop_monitor)
    app[TOC_KEY] = toc
    app[SETTINGS_KEY] = settings
    app[STATE_KEY] = {"ready": False}
    app[CONSENSUS_KEY] = {}
    app[METRICS_KEY] = metrics
    # aiohttp tries the routes sharing a path prefix (every ``/collections/...`` one) in the order
    # they were added, one regex each: the hot search and point routes go first. No two routes
    # match the same method and path (tests/unit/test_rest_routes.py), so order changes nothing else.
    search.register(app)
    points.register(app)
    service.register(app)
    collections.register(app)
    matrix.register(app)
    scroll.register(app)
    snapshots.register(app)
    shard_keys.register(app)
    shard_snapshots.register(app)
    cluster_ops.register(app)
    return app
