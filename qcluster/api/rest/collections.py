"""Collections, aliases, payload indexes, named vectors and optimizations endpoints."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from aiohttp import web

from qcluster.api.rest.app import SETTINGS_KEY, TOC_KEY, ok
from qcluster.api.rest.parse import body, limits, query_bool, query_int
from qcluster.api.rest.quotas import QUOTAS_KEY
from qcluster.api.rest.render import update_json
from qcluster.errors import BadInputError, UnprocessableInputError
from qcluster.models.bounds import refuse_above
from qcluster.models.collections import (
    ChangeAliasesIn,
    CollectionConfig,
    CreateCollection,
    CreateFieldIndexIn,
    UpdateCollection,
    VectorNameConfigIn,
    config_after_update,
    config_from_create,
    with_vector,
)
from qcluster.models.config import HnswConfig, HnswConfigDiff, VectorParams
from qcluster.settings import LimitsSettings
from qcluster.shards.base import OptimizationProgress, UpdateResult
from qcluster.shards.operations import CreateFieldIndex, DeleteFieldIndex
from qcluster.types import DEFAULT_VECTOR


def _name(request: web.Request) -> str:
    return request.match_info["collection_name"]


def _bounded_values(config: CollectionConfig) -> dict[str, tuple[int | None, str]]:
    """field -> (value, the ``service.limits`` setting bounding it), for the parts of a collection
    config whose size costs the peer (threads and files per shard, memory per graph link)."""
    p = config.params
    out: dict[str, tuple[int | None, str]] = {
        "shard_number": (p.shard_number, "max_shard_number"),
        "replication_factor": (p.replication_factor, "max_replication_factor"),
        "write_consistency_factor": (p.write_consistency_factor, "max_replication_factor"),
        "vectors": (len(p.vectors), "max_named_vectors"),
    }
    hnsw: list[tuple[str, HnswConfig | HnswConfigDiff | None]] = [("hnsw_config", config.hnsw_config)]
    hnsw += [
        (f"vectors.{n}.hnsw_config" if n != DEFAULT_VECTOR else "vectors.hnsw_config", v.hnsw_config)
        for n, v in p.vectors.items()
    ]
    for where, h in hnsw:
        if h is None:
            continue
        out[f"{where}.m"] = (h.m, "max_hnsw_m")
        out[f"{where}.payload_m"] = (h.payload_m, "max_hnsw_m")
        out[f"{where}.ef_construct"] = (h.ef_construct, "max_hnsw_ef_construct")
    return out


def check_config_bounds(
    config: CollectionConfig, bounds: LimitsSettings, current: CollectionConfig | None = None
) -> None:
    """Refuse (400, naming the field and the bound) a collection config whose sizes no
    legitimate use needs. On an update only the values it changes are checked, so a collection
    created under looser bounds can still be changed otherwise."""
    before = {} if current is None else _bounded_values(current)
    for field, (value, setting) in _bounded_values(config).items():
        if value is None or before.get(field, (None, ""))[0] == value:
            continue
        what = "number of named vectors" if field == "vectors" else field.rsplit(".", 1)[-1]
        refuse_above(field, what, value, setting, bounds)


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
        },
    )


async def create_collection(request: web.Request) -> web.Response:
    toc = request.app[TOC_KEY]
    request.app[QUOTAS_KEY].check_write()
    req = await body(request, CreateCollection)
    if isinstance(req.vectors, dict) and not req.vectors:
        raise UnprocessableInputError("[vectors: at least one vector must be configured]", "vectors")
    config = config_from_create(req, default_shards=toc.default_shard_number(), defaults=toc.defaults())
    check_config_bounds(config, limits(request))
    max_collections = request.app[SETTINGS_KEY].storage.max_collections
    if (
        max_collections is not None
        and len(toc.collections) >= max_collections
        and not toc.exists(_name(request))
    ):
        raise BadInputError(
            f"Can't create collection with name {_name(request)}. Max collections limit reached: "
            f"{max_collections} (storage.max_collections)",
            "collection_name",
        )
    await toc.create(_name(request), config, _timeout(request))
    return ok(request, True)


async def update_collection(request: web.Request) -> web.Response:
    toc = request.app[TOC_KEY]
    col = toc.get(_name(request))
    req = await body(request, UpdateCollection, required=False)
    config = config_after_update(col.config, req)
    check_config_bounds(config, limits(request), col.config)
    await toc.update_config(col.name, config, _timeout(request))
    return ok(request, True)


async def delete_collection(request: web.Request) -> web.Response:
    toc = request.app[TOC_KEY]
    return ok(request, await toc.delete(_name(request), _timeout(request)))


async def collection_exists(request: web.Request) -> web.Response:
    return ok(request, {"exists": request.app[TOC_KEY].exists(_name(request))})


async def update_aliases(request: web.Request) -> web.Response:
    req = await body(request, ChangeAliasesIn)
    await request.app[TOC_KEY].change_aliases(req.actions, _timeout(request))
    return ok(request, True)


async def list_aliases(request: web.Request) -> web.Response:
    toc = request.app[TOC_KEY]
    name = request.match_info.get("collection_name")
    target = None if name is None else toc.get(name).name
    aliases = [
        {"alias_name": a, "collection_name": c}
        for a, c in sorted(toc.aliases.items())
        if target is None or c == target
    ]
    return ok(request, {"aliases": aliases})


async def create_index(request: web.Request) -> web.Response:
    col = request.app[TOC_KEY].get(_name(request))
    req = await body(request, CreateFieldIndexIn)
    if req.field_schema is None:
        raise BadInputError(
            f"field_schema: a payload index on `{req.field_name}` needs a schema (keyword, integer, ...)",
            "field_schema",
        )
    result = await col.update(CreateFieldIndex(req.field_name, req.field_schema), query_bool(request, "wait"))
    return ok(request, update_json(result))


async def delete_index(request: web.Request) -> web.Response:
    col = request.app[TOC_KEY].get(_name(request))
    result = await col.update(DeleteFieldIndex(request.match_info["field_name"]), query_bool(request, "wait"))
    return ok(request, update_json(result))


async def create_vector_name(request: web.Request) -> web.Response:
    """Add a named vector to an existing collection; existing points do not have it."""
    col = request.app[TOC_KEY].get(_name(request))
    req = await body(request, VectorNameConfigIn)
    if req.sparse is not None:
        raise BadInputError("sparse vectors are not supported by qcluster", "sparse")
    if req.dense is None:
        raise BadInputError('expected {"dense": {"size", "distance"}}', "dense")
    params = VectorParams(size=req.dense.size, distance=req.dense.distance, datatype=req.dense.datatype)
    name = request.match_info["vector_name"]
    check_config_bounds(with_vector(col.config, name, params), limits(request), col.config)
    await request.app[TOC_KEY].change_vectors(col.name, name, params, _timeout(request))
    return ok(request, update_json(UpdateResult(0, "completed")))


async def delete_vector_name(request: web.Request) -> web.Response:
    col = request.app[TOC_KEY].get(_name(request))
    await request.app[TOC_KEY].change_vectors(
        col.name, request.match_info["vector_name"], None, _timeout(request)
    )
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
    and keeps no history)."""
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
