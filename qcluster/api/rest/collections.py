"""Collections, aliases, payload indexes, named vectors and optimizations endpoints."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from aiohttp import web

from qcluster.api.actions import collections as actions
from qcluster.api.actions import points as point_actions
from qcluster.api.rest.app import TOC_KEY, ok
from qcluster.api.rest.parse import body, limits, query_bool, query_int
from qcluster.api.rest.quotas import QUOTAS_KEY
from qcluster.api.rest.render import update_json
from qcluster.models.collections import (
    ChangeAliasesIn,
    CreateCollection,
    CreateFieldIndexIn,
    UpdateCollection,
    VectorNameConfigIn,
)
from qcluster.shards.base import OptimizationProgress, UpdateResult


def _name(request: web.Request) -> str:
    return request.match_info["collection_name"]


def _timeout(request: web.Request) -> float | None:
    """``?timeout=`` seconds for operations that go through consensus in cluster mode."""
    value = query_int(request, "timeout", minimum=1)
    return float(value) if value is not None else None


async def list_collections(request: web.Request) -> web.Response:
    toc = request.app[TOC_KEY]
    return ok(request, {"collections": [{"name": n} for n in sorted(toc.collections)]})


async def get_collection(request: web.Request) -> web.Response:
    col = request.app[TOC_KEY].get(_name(request))
    info = await col.info()
    optimizer_status: Any = "ok" if info.optimizer_error is None else {"error": info.optimizer_error}
    return ok(
        request,
        {
            "status": info.status,
            "optimizer_status": optimizer_status,
            "indexed_vectors_count": info.indexed_vectors_count,
            "points_count": info.points_count,
            "segments_count": info.segments_count,
            "config": col.config.to_wire(),
            "payload_schema": info.payload_schema,
            # acknowledged writes are applied before their answer: nothing waits behind them
            "update_queue": {"length": 0},
            **({"warnings": [{"message": w} for w in warns]} if (warns := col.config.warnings()) else {}),
        },
    )


async def create_collection(request: web.Request) -> web.Response:
    request.app[QUOTAS_KEY].check_write()
    req = await body(request, CreateCollection)
    await actions.create(request.app[TOC_KEY], _name(request), req, _timeout(request), limits(request))
    return ok(request, True)


async def update_collection(request: web.Request) -> web.Response:
    req = await body(request, UpdateCollection, required=False)
    await actions.update(request.app[TOC_KEY], _name(request), req, _timeout(request), limits(request))
    return ok(request, True)


async def delete_collection(request: web.Request) -> web.Response:
    toc = request.app[TOC_KEY]
    return ok(request, await toc.delete(_name(request), _timeout(request)))


async def collection_exists(request: web.Request) -> web.Response:
    return ok(request, {"exists": request.app[TOC_KEY].exists(_name(request))})


async def update_aliases(request: web.Request) -> web.Response:
    req = await body(request, ChangeAliasesIn)
    await actions.change_aliases(request.app[TOC_KEY], req, _timeout(request))
    return ok(request, True)


async def list_aliases(request: web.Request) -> web.Response:
    pairs = actions.aliases(request.app[TOC_KEY], request.match_info.get("collection_name"))
    return ok(request, {"aliases": [{"alias_name": a, "collection_name": c} for a, c in pairs]})


async def create_index(request: web.Request) -> web.Response:
    col = request.app[TOC_KEY].get(_name(request))
    req = await body(request, CreateFieldIndexIn)
    result = await point_actions.create_index(
        col, req.field_name, req.field_schema, query_bool(request, "wait")
    )
    return ok(request, update_json(result))


async def delete_index(request: web.Request) -> web.Response:
    col = request.app[TOC_KEY].get(_name(request))
    field = request.match_info["field_name"]
    result = await point_actions.delete_index(col, field, query_bool(request, "wait"))
    return ok(request, update_json(result))


async def create_vector_name(request: web.Request) -> web.Response:
    req = await body(request, VectorNameConfigIn)
    vector = request.match_info["vector_name"]
    await actions.create_vector(
        request.app[TOC_KEY], _name(request), vector, req, _timeout(request), limits(request)
    )
    return ok(request, update_json(UpdateResult(0, "completed")))


async def delete_vector_name(request: web.Request) -> web.Response:
    vector = request.match_info["vector_name"]
    await actions.delete_vector(request.app[TOC_KEY], _name(request), vector, _timeout(request))
    return ok(request, update_json(UpdateResult(0, "completed")))


def _optimization(o: OptimizationProgress) -> dict[str, Any]:
    started = dt.datetime.fromtimestamp(o.started_at, dt.UTC)
    return {
        "uuid": str(uuid.uuid5(uuid.NAMESPACE_OID, "-".join(o.segment_ids))),
        "optimizer": o.name,
        "status": "optimizing",
        "segments": [{"uuid": str(uuid.UUID(s)), "points_count": o.points} for s in o.segment_ids],
        "progress": {
            "name": o.name,
            "started_at": started.isoformat(),
            "duration_sec": max(0.0, (dt.datetime.now(dt.UTC) - started).total_seconds()),
            "done": o.done,
            "total": o.points,
        },
    }


async def optimizations(request: web.Request) -> web.Response:
    """Running optimizations; ``?with=queued,completed`` adds those (empty: this peer queues none
    and keeps no history), ``idle_segments`` the segments no running optimization holds."""
    col = request.app[TOC_KEY].get(_name(request))
    query_int(request, "completed_limit")
    extra = {part.strip() for part in request.query.get("with", "").split(",") if part.strip()}
    info = await col.info()
    running = [_optimization(o) for o in info.optimizations]
    busy = sum(len(o.segment_ids) for o in info.optimizations)
    out: dict[str, Any] = {
        "summary": {
            "queued_optimizations": 0,
            "queued_segments": 0,
            "queued_points": 0,
            "idle_segments": max(0, info.segments_count - busy),
        },
        "running": running,
    }
    if "queued" in extra:
        out["queued"] = []
    if "completed" in extra:
        out["completed"] = []
    if "idle_segments" in extra:
        busy_ids = {s for o in info.optimizations for s in o.segment_ids}
        out["idle_segments"] = [
            {"uuid": str(uuid.UUID(sid)), "points_count": n}
            for sid, n in info.segments
            if sid not in busy_ids
        ]
    return ok(request, out)


def register(app: web.Application) -> None:
    r = app.router
    c = "/collections/{collection_name}"
    r.add_get("/collections", list_collections)
    r.add_post("/collections/aliases", update_aliases)
    r.add_get("/aliases", list_aliases)
    r.add_get(c, get_collection)
    r.add_put(c, create_collection)
    r.add_patch(c, update_collection)
    r.add_delete(c, delete_collection)
    r.add_get(c + "/exists", collection_exists)
    r.add_get(c + "/aliases", list_aliases)
    r.add_put(c + "/index", create_index)
    r.add_delete(c + "/index/{field_name}", delete_index)
    r.add_put(c + "/vectors/{vector_name}", create_vector_name)
    r.add_delete(c + "/vectors/{vector_name}", delete_vector_name)
    r.add_get(c + "/optimizations", optimizations)
