"""Service endpoints: root, health probes, telemetry, metrics, issues (``/cluster*`` lives in
:mod:`qcluster.api.rest.cluster`)."""

from __future__ import annotations

import functools
import re
import subprocess
from pathlib import Path

from aiohttp import web

import qcluster
from qcluster.api.rest import cluster, metrics_scrape, quotas, telemetry
from qcluster.api.rest.app import CONSENSUS_KEY, METRICS_KEY, STATE_KEY, TOC_KEY, json_response, ok
from qcluster.api.rest.parse import query_bool
from qcluster.cluster.readiness import unready_replicas
from qcluster.metrics import CONTENT_TYPE


@functools.cache
def source_commit() -> str:
    """The git commit of the qcluster source this peer runs (40 hex digits), or 40 zeros when it
    does not run from a checkout (an installed package): Qdrant reports its build commit here."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(qcluster.__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "0" * 40
    sha = done.stdout.strip()
    return sha if done.returncode == 0 and re.fullmatch(r"[0-9a-f]{40}", sha) else "0" * 40


async def root(request: web.Request) -> web.Response:
    # qdrant-client compares "version" with its own to warn about incompatibilities.
    return json_response(
        {
            "title": "qdrant - vector search engine",
            "version": qcluster.QDRANT_COMPAT_VERSION,
            "commit": source_commit(),
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


async def metrics(request: web.Request) -> web.Response:
    consensus = request.app[CONSENSUS_KEY].get("service")
    transfers = request.app[CONSENSUS_KEY].get("transfers")
    body = await metrics_scrape.scrape(
        request.app[METRICS_KEY],
        request.app[TOC_KEY],
        consensus,
        transfers,
        query_bool(request, "per_collection"),
    )
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


async def issues(request: web.Request) -> web.Response:
    return ok(request, {"issues": []})


async def clear_issues(request: web.Request) -> web.Response:
    return ok(request, True)


def register(app: web.Application) -> None:
    source_commit()  # (once, at start: not on a request's loop turn)
    r = app.router
    r.add_get("/", root)
    r.add_get("/healthz", healthz)
    r.add_get("/livez", livez)
    r.add_get("/readyz", readyz)
    r.add_get("/telemetry", telemetry.telemetry)
    r.add_get("/metrics", metrics)
    r.add_get("/issues", issues)
    r.add_delete("/issues", clear_issues)
    quotas.register(app)
    cluster.register(app)
