"""Service endpoints: root, health probes, telemetry, metrics, and /cluster in single-peer mode."""

from __future__ import annotations

import datetime as dt
import time

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest

import qcluster
from qcluster.api.rest.app import CONSENSUS_KEY, STATE_KEY, TOC_KEY, error_response, ok

STARTED = time.time()


async def root(request: web.Request) -> web.Response:
    return web.json_response(
        {
            "title": "qdrant - vector search engine",
            "version": qcluster.QDRANT_COMPAT_VERSION,
            "commit": None,
            "engine": "qcluster",
            "engine_version": qcluster.__version__,
        }
    )


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="healthz check passed")


async def livez(request: web.Request) -> web.Response:
    return web.Response(text="healthz check passed")


async def readyz(request: web.Request) -> web.Response:
    if not request.app[STATE_KEY].get("ready"):
        return web.Response(status=503, text="storage is loading")
    consensus = request.app[CONSENSUS_KEY].get("service")
    if consensus is not None and not consensus.is_caught_up():
        return web.Response(status=503, text="consensus is catching up with the leader")
    return web.Response(text="all shards are ready")


async def telemetry(request: web.Request) -> web.Response:
    toc = request.app[TOC_KEY]
    started = dt.datetime.fromtimestamp(STARTED, dt.UTC).isoformat()
    return ok(
        request,
        {
            "id": "qcluster",
            "app": {"name": "qcluster", "version": qcluster.QDRANT_COMPAT_VERSION, "startup": started},
            "collections": {"number_of_collections": len(toc.collections)},
        },
    )


async def metrics(request: web.Request) -> web.Response:
    toc = request.app[TOC_KEY]
    registry = CollectorRegistry()
    collections = Gauge("collections_total", "Number of collections", registry=registry)
    points = Gauge("collection_points", "Points per collection", ["collection"], registry=registry)
    segments = Gauge("collection_segments", "Segments per collection", ["collection"], registry=registry)
    uptime = Gauge("app_uptime_seconds", "Seconds since start", registry=registry)
    collections.set(len(toc.collections))
    uptime.set(time.time() - STARTED)
    for name, col in toc.collections.items():
        info = await col.info()
        points.labels(name).set(info.points_count)
        segments.labels(name).set(info.segments_count)
    return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})


async def cluster(request: web.Request) -> web.Response:
    consensus = request.app[CONSENSUS_KEY].get("service")
    if consensus is None:
        return ok(request, {"status": "disabled"})
    return ok(request, consensus.cluster_info())


async def issues(request: web.Request) -> web.Response:
    return web.json_response({"issues": []})


async def clear_issues(request: web.Request) -> web.Response:
    return ok(request, True)


async def not_supported(request: web.Request) -> web.Response:
    return error_response(request, 400, f"Bad request: {request.path} is not available on a single peer")


def register(app: web.Application) -> None:
    r = app.router
    r.add_get("/", root)
    r.add_get("/healthz", healthz)
    r.add_get("/livez", livez)
    r.add_get("/readyz", readyz)
    r.add_get("/telemetry", telemetry)
    r.add_get("/metrics", metrics)
    r.add_get("/cluster", cluster)
    r.add_get("/issues", issues)
    r.add_delete("/issues", clear_issues)
