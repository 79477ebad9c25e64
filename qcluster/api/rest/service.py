"""Service endpoints: root, health probes, telemetry, metrics, issues (``/cluster*`` lives in
:mod:`qcluster.api.rest.cluster`)."""

from __future__ import annotations

import datetime as dt

from aiohttp import web

import qcluster
from qcluster.api.rest import cluster, metrics_scrape, quotas
from qcluster.api.rest.app import CONSENSUS_KEY, METRICS_KEY, STATE_KEY, TOC_KEY, json_response, ok
from qcluster.cluster.readiness import unready_replicas
from qcluster.metrics import CONTENT_TYPE


async def root(request: web.Request) -> web.Response:
    # qdrant-client compares "version" with its own to warn about incompatibilities.
    return json_response(
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
    if consensus is not None:
        if not consensus.is_caught_up():
            return web.Response(status=503, text="consensus is catching up with the leader")
        waiting = unready_replicas(consensus.state, consensus.peer_id, request.app[TOC_KEY])
        if waiting:
            return web.Response(status=503, text="replicas not ready: " + "; ".join(waiting))
    return web.Response(text="all shards are ready")


async def telemetry(request: web.Request) -> web.Response:
    toc = request.app[TOC_KEY]
    started = dt.datetime.fromtimestamp(request.app[METRICS_KEY].started, dt.UTC).isoformat()
    return ok(
        request,
        {
            "id": "qcluster",
            "app": {"name": "qcluster", "version": qcluster.QDRANT_COMPAT_VERSION, "startup": started},
            "collections": {"number_of_collections": len(toc.collections)},
        },
    )


async def metrics(request: web.Request) -> web.Response:
    consensus = request.app[CONSENSUS_KEY].get("service")
    transfers = request.app[CONSENSUS_KEY].get("transfers")
    body = await metrics_scrape.scrape(request.app[METRICS_KEY], request.app[TOC_KEY], consensus, transfers)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


async def issues(request: web.Request) -> web.Response:
    return json_response({"issues": []})


async def clear_issues(request: web.Request) -> web.Response:
    return ok(request, True)


def register(app: web.Application) -> None:
    r = app.router
    r.add_get("/", root)
    r.add_get("/healthz", healthz)
    r.add_get("/livez", livez)
    r.add_get("/readyz", readyz)
    r.add_get("/telemetry", telemetry)
    r.add_get("/metrics", metrics)
    r.add_get("/issues", issues)
    r.add_delete("/issues", clear_issues)
    quotas.register(app)
    cluster.register(app)
