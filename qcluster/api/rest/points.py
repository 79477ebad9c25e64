"""Point write endpoints (upsert, delete, payload, vectors, batch) and retrieval by id.

``?wait=true`` answers once the change is applied and durable (``completed``); without it the
answer comes once the operation is in the WAL (``acknowledged``). ``?ordering=weak|medium|strong``
chooses which peer coordinates a replicated write (see ``shards/replica_set.py``); ``shard_key`` in
the body selects the shards of a collection with custom sharding. What each endpoint does is in
:mod:`qcluster.api.actions.points` (shared with the gRPC surface).
"""

from __future__ import annotations

from aiohttp import web
from pydantic import TypeAdapter

from qcluster.api.actions import points as actions
from qcluster.api.rest.app import TOC_KEY, ok, ok_built
from qcluster.api.rest.parse import adapt, body, body_json, limits, query_bool
from qcluster.api.rest.quotas import QUOTAS_KEY
from qcluster.api.rest.render import record_json, update_json
from qcluster.collection import Collection
from qcluster.models.points import (
    DeletePayloadIn,
    DeleteVectorsIn,
    PointRequestIn,
    SelectorIn,
    SetPayloadIn,
    UpdateOperationsIn,
    UpdateVectorsIn,
    UpsertIn,
)
from qcluster.shards.operations import UpdateOperation
from qcluster.types import parse_decimal, parse_point_id

UPSERT = TypeAdapter(UpsertIn)


def _col(request: web.Request) -> Collection:
    return request.app[TOC_KEY].get(request.match_info["collection_name"])


def _ordering(request: web.Request) -> str | None:
    return request.query.get("ordering")


def _timeout(request: web.Request) -> str | None:
    return request.query.get("timeout")


async def _run(
    request: web.Request, col: Collection, op: UpdateOperation, req: actions.SelectorBody
) -> web.Response:
    result = await actions.apply(
        col, op, req, query_bool(request, "wait"), _ordering(request), _timeout(request)
    )
    return ok(request, update_json(result))


async def upsert(request: web.Request) -> web.Response:
    col = _col(request)
    request.app[QUOTAS_KEY].check_write()
    req: actions.UpsertBody = adapt(UPSERT, await body_json(request), limits(request))
    result = await actions.upsert(col, req, query_bool(request, "wait"), _ordering(request))
    return ok(request, update_json(result))


async def delete(request: web.Request) -> web.Response:
    col = _col(request)
    req = await body(request, SelectorIn)
    return await _run(request, col, actions.delete_op(req), req)


async def set_payload(request: web.Request) -> web.Response:
    col = _col(request)
    req = await body(request, SetPayloadIn)
    return await _run(request, col, actions.set_payload_op(req), req)


async def overwrite_payload(request: web.Request) -> web.Response:
    col = _col(request)
    req = await body(request, SetPayloadIn)
    return await _run(request, col, actions.overwrite_payload_op(req), req)


async def delete_payload(request: web.Request) -> web.Response:
    col = _col(request)
    req = await body(request, DeletePayloadIn)
    return await _run(request, col, actions.delete_payload_op(req), req)


async def clear_payload(request: web.Request) -> web.Response:
    col = _col(request)
    req = await body(request, SelectorIn)
    return await _run(request, col, actions.clear_payload_op(req), req)


async def update_vectors(request: web.Request) -> web.Response:
    col = _col(request)
    request.app[QUOTAS_KEY].check_write()
    req = await body(request, UpdateVectorsIn)
    result = await actions.update_vectors(col, req, query_bool(request, "wait"), _ordering(request))
    return ok(request, update_json(result))


async def delete_vectors(request: web.Request) -> web.Response:
    col = _col(request)
    req = await body(request, DeleteVectorsIn)
    return await _run(request, col, actions.delete_vectors_op(req), req)


async def batch_update(request: web.Request) -> web.Response:
    col = _col(request)
    request.app[QUOTAS_KEY].check_write()
    req = await body(request, UpdateOperationsIn)
    wait = query_bool(request, "wait")
    results = await actions.batch_update(col, req.operations, wait, _ordering(request), _timeout(request))
    return ok(request, [update_json(r) for r in results])


async def get_point(request: web.Request) -> web.Response:
    col = _col(request)
    raw = request.match_info["id"]
    pid = parse_point_id(parse_decimal(raw, "id", "a point id") if raw.isdigit() else raw, "id")
    return ok(request, record_json(await actions.retrieve_one(col, pid), col))


async def get_points(request: web.Request) -> web.Response:
    col = _col(request)
    recs = await actions.retrieve(
        col, await body(request, PointRequestIn), limits(request), _timeout(request)
    )
    return await ok_built(request, lambda: [record_json(r, col) for r in recs], len(recs))


def register(app: web.Application) -> None:
    r = app.router
    base = "/collections/{collection_name}/points"
    r.add_put(base, upsert)
    r.add_post(base, get_points)
    r.add_post(base + "/delete", delete)
    r.add_post(base + "/payload", set_payload)
    r.add_put(base + "/payload", overwrite_payload)
    r.add_post(base + "/payload/delete", delete_payload)
    r.add_post(base + "/payload/clear", clear_payload)
    r.add_put(base + "/vectors", update_vectors)
    r.add_post(base + "/vectors/delete", delete_vectors)
    r.add_post(base + "/batch", batch_update)
    r.add_get(base + "/{id}", get_point)
