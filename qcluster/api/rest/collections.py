"""Collections, aliases, payload indexes and optimizations endpoints."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from aiohttp import web

from qcluster.api.rest.app import TOC_KEY, ok
from qcluster.api.rest.parse import body_json, model, obj, query_bool
from qcluster.errors import UnprocessableInputError
from qcluster.models.collections import (
    CreateCollection,
    UpdateCollection,
    config_after_update,
    config_from_create,
)
from qcluster.shards.operations import CreateFieldIndex, DeleteFieldIndex


def _name(request: web.Request) -> str:
    return request.match_info["collection_name"]


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
        },
    )


async def create_collection(request: web.Request) -> web.Response:
    toc = request.app[TOC_KEY]
    req = model(CreateCollection, obj(await body_json(request)))
    if isinstance(req.vectors, dict) and not req.vectors:
        raise UnprocessableInputError("vectors: at least one vector must be configured", "vectors")
    config = config_from_create(req, default_shards=toc.default_shard_number())
    await toc.create(_name(request), config)
    return ok(request, True)


async def update_collection(request: web.Request) -> web.Response:
    toc = request.app[TOC_KEY]
    col = toc.get(_name(request))
    req = model(UpdateCollection, obj(await body_json(request, required=False)))
    await col.update_config(config_after_update(col.config, req))
    return ok(request, True)


async def delete_collection(request: web.Request) -> web.Response:
    toc = request.app[TOC_KEY]
    return ok(request, await toc.delete(toc.resolve(_name(request))))


async def collection_exists(request: web.Request) -> web.Response:
    return ok(request, {"exists": request.app[TOC_KEY].exists(_name(request))})


async def update_aliases(request: web.Request) -> web.Response:
    body = obj(await body_json(request))
    actions = body.get("actions")
    if not isinstance(actions, list):
        raise UnprocessableInputError("actions: expected a list of alias operations", "actions")
    await request.app[TOC_KEY].change_aliases(actions)
    return ok(request, True)


async def list_aliases(request: web.Request) -> web.Response:
    toc = request.app[TOC_KEY]
    name = request.match_info.get("collection_name")
    if name is not None:
        toc.get(name)
    aliases = [
        {"alias_name": a, "collection_name": c}
        for a, c in sorted(toc.aliases.items())
        if name is None or c == toc.resolve(name)
    ]
    return ok(request, {"aliases": aliases})


async def create_index(request: web.Request) -> web.Response:
    col = request.app[TOC_KEY].get(_name(request))
    body = obj(await body_json(request))
    field = body.get("field_name")
    if not isinstance(field, str) or not field:
        raise UnprocessableInputError("field_name: expected a non-empty string", "field_name")
    if body.get("field_schema") is None:
        raise UnprocessableInputError("field_schema: a payload index needs a schema", "field_schema")
    result = await col.update(CreateFieldIndex(field, body.get("field_schema")), query_bool(request, "wait"))
    return ok(request, {"operation_id": result.operation_id, "status": result.status})


async def delete_index(request: web.Request) -> web.Response:
    col = request.app[TOC_KEY].get(_name(request))
    result = await col.update(DeleteFieldIndex(request.match_info["field_name"]), query_bool(request, "wait"))
    return ok(request, {"operation_id": result.operation_id, "status": result.status})


async def optimizations(request: web.Request) -> web.Response:
    col = request.app[TOC_KEY].get(_name(request))
    info = await col.info()
    running = [
        {
            "uuid": str(uuid.uuid5(uuid.NAMESPACE_OID, "-".join(o.segment_ids))),
            "optimizer": o.name,
            "status": "optimizing",
            "segments": [{"uuid": str(uuid.UUID(s)), "points_count": o.points} for s in o.segment_ids],
            "progress": {
                "name": o.name,
                "started_at": dt.datetime.fromtimestamp(o.started_at, dt.UTC).isoformat(),
                "done": o.done,
                "total": o.points,
            },
        }
        for o in info.optimizations
    ]
    return ok(
        request,
        {
            "summary": {
                "queued_optimizations": 0,
                "queued_segments": 0,
                "queued_points": 0,
                "idle_segments": max(0, info.segments_count - len(running)),
            },
            "running": running,
        },
    )


def register(app: web.Application) -> None:
    r = app.router
    r.add_get("/collections", list_collections)
    r.add_post("/collections/aliases", update_aliases)
    r.add_get("/aliases", list_aliases)
    r.add_get("/collections/{collection_name}", get_collection)
    r.add_put("/collections/{collection_name}", create_collection)
    r.add_patch("/collections/{collection_name}", update_collection)
    r.add_delete("/collections/{collection_name}", delete_collection)
    r.add_get("/collections/{collection_name}/exists", collection_exists)
    r.add_get("/collections/{collection_name}/aliases", list_aliases)
    r.add_put("/collections/{collection_name}/index", create_index)
    r.add_delete("/collections/{collection_name}/index/{field_name}", delete_index)
    r.add_get("/collections/{collection_name}/optimizations", optimizations)
