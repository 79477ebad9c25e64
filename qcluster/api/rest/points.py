"""Point write endpoints (upsert, delete, payload, vectors, batch) and retrieval by id.

``?wait=true`` answers once the change is applied and durable (``completed``); without it the
answer comes once the operation is in the WAL (``acknowledged``). ``?ordering=weak|medium|strong``
chooses which peer coordinates a replicated write (see ``shards/replica_set.py``); ``shard_key`` in
the body selects the shards of a collection with custom sharding.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from pydantic import TypeAdapter

from qcluster.api.rest.app import TOC_KEY, ok, ok_built
from qcluster.api.rest.parse import adapt, body, body_json, limits, query_bool, selector
from qcluster.api.rest.quotas import QUOTAS_KEY
from qcluster.api.rest.render import record_json, update_json
from qcluster.api.rest.vectors import batch_from_columns, points_batch
from qcluster.collection import Collection
from qcluster.collection.query.budget import check_budget, records_want
from qcluster.collection.read_scope import parse_shard_keys, with_shard_keys
from qcluster.errors import BadInputError, NotFoundError
from qcluster.models.points import (
    BatchOpIn,
    DeleteOp,
    DeletePayloadIn,
    DeletePayloadOp,
    DeleteVectorsIn,
    DeleteVectorsOp,
    OverwritePayloadOp,
    PointRequestIn,
    PointsBatchIn,
    PointsListIn,
    SelectorIn,
    SetPayloadIn,
    SetPayloadOp,
    UpdateOperationsIn,
    UpdateVectorsIn,
    UpdateVectorsOp,
    UpsertIn,
    UpsertOp,
)
from qcluster.shards.base import PayloadSelector, UpdateResult, VectorSelector
from qcluster.shards.operations import (
    ClearPayload,
    DeletePayload,
    DeletePoints,
    DeleteVectors,
    OverwritePayload,
    PointsBatch,
    SetPayload,
    UpdateOperation,
)
from qcluster.shards.replica_set import Ordering, WriteOptions
from qcluster.types import parse_decimal, parse_point_id

UpsertBody = PointsListIn | PointsBatchIn
UPSERT = TypeAdapter(UpsertIn)


def _col(request: web.Request) -> Collection:
    return request.app[TOC_KEY].get(request.match_info["collection_name"])


def upsert_batch(req: UpsertBody, col: Collection) -> PointsBatch:
    if isinstance(req, PointsBatchIn):
        return batch_from_columns(req.batch, col.config)
    return points_batch(
        [p.id for p in req.points],
        [p.vector for p in req.points],
        [p.payload for p in req.points],
        col.config,
    )


ORDERINGS: dict[str, Ordering] = {"weak": "weak", "medium": "medium", "strong": "strong"}


def write_options(request: web.Request, shard_key: object) -> WriteOptions:
    raw = request.query.get("ordering", "weak")
    ordering = ORDERINGS.get(raw)
    if ordering is None:
        raise BadInputError(f"ordering: expected weak, medium or strong, got {raw!r}", "ordering")
    return WriteOptions(ordering, parse_shard_keys(shard_key))


async def _upsert(col: Collection, req: UpsertBody, wait: bool, options: WriteOptions) -> UpdateResult:
    batch = upsert_batch(req, col)
    return await col.upsert(batch, wait, req.update_mode or "upsert", req.update_filter, options)


def set_payload_op(req: SetPayloadIn) -> SetPayload:
    return SetPayload(selector(req.points, req.filter), req.payload, req.key)


def delete_payload_op(req: DeletePayloadIn) -> DeletePayload:
    return DeletePayload(selector(req.points, req.filter), tuple(req.keys))


def delete_vectors_op(req: DeleteVectorsIn) -> DeleteVectors:
    return DeleteVectors(selector(req.points, req.filter), tuple(req.vector))


def vectors_batch(req: UpdateVectorsIn, col: Collection) -> PointsBatch:
    return points_batch([p.id for p in req.points], [p.vector for p in req.points], None, col.config)


async def _run(request: web.Request, col: Collection, op: UpdateOperation, shard_key: object) -> web.Response:
    options = write_options(request, shard_key)
    return ok(request, update_json(await col.update(op, query_bool(request, "wait"), options)))


async def upsert(request: web.Request) -> web.Response:
    col = _col(request)
    request.app[QUOTAS_KEY].check_write()
    req: UpsertBody = adapt(UPSERT, await body_json(request), limits(request))
    options = write_options(request, req.shard_key)
    return ok(request, update_json(await _upsert(col, req, query_bool(request, "wait"), options)))


async def delete(request: web.Request) -> web.Response:
    col = _col(request)
    req = await body(request, SelectorIn)
    return await _run(request, col, DeletePoints(selector(req.points, req.filter)), req.shard_key)


async def set_payload(request: web.Request) -> web.Response:
    col = _col(request)
    req = await body(request, SetPayloadIn)
    return await _run(request, col, set_payload_op(req), req.shard_key)


async def overwrite_payload(request: web.Request) -> web.Response:
    col = _col(request)
    req = await body(request, SetPayloadIn)
    return await _run(
        request, col, OverwritePayload(selector(req.points, req.filter), req.payload), req.shard_key
    )


async def delete_payload(request: web.Request) -> web.Response:
    col = _col(request)
    req = await body(request, DeletePayloadIn)
    return await _run(request, col, delete_payload_op(req), req.shard_key)


async def clear_payload(request: web.Request) -> web.Response:
    col = _col(request)
    req = await body(request, SelectorIn)
    return await _run(request, col, ClearPayload(selector(req.points, req.filter)), req.shard_key)


async def update_vectors(request: web.Request) -> web.Response:
    col = _col(request)
    request.app[QUOTAS_KEY].check_write()
    req = await body(request, UpdateVectorsIn)
    options = write_options(request, req.shard_key)
    batch = vectors_batch(req, col)
    result = await col.update_vectors(batch, query_bool(request, "wait"), req.update_filter, options)
    return ok(request, update_json(result))


async def delete_vectors(request: web.Request) -> web.Response:
    col = _col(request)
    req = await body(request, DeleteVectorsIn)
    return await _run(request, col, delete_vectors_op(req), req.shard_key)


Step = Callable[[bool], Awaitable[UpdateResult]]


def _step(request: web.Request, col: Collection, item: BatchOpIn) -> Step:
    """One batch operation, parsed and checked now, applied when called with ``wait``."""
    if isinstance(item, UpsertOp):
        up, batch = item.upsert, upsert_batch(item.upsert, col)
        up_options = write_options(request, up.shard_key)
        return lambda wait: col.upsert(batch, wait, up.update_mode or "upsert", up.update_filter, up_options)
    if isinstance(item, UpdateVectorsOp):
        uv, vbatch = item.update_vectors, vectors_batch(item.update_vectors, col)
        uv_options = write_options(request, uv.shard_key)
        return lambda wait: col.update_vectors(vbatch, wait, uv.update_filter, uv_options)
    op: UpdateOperation
    part: SelectorIn | SetPayloadIn | DeletePayloadIn | DeleteVectorsIn
    if isinstance(item, DeleteOp):
        part = item.delete
        op = DeletePoints(selector(part.points, part.filter))
    elif isinstance(item, SetPayloadOp):
        part = item.set_payload
        op = set_payload_op(part)
    elif isinstance(item, OverwritePayloadOp):
        part = item.overwrite_payload
        op = OverwritePayload(selector(part.points, part.filter), part.payload)
    elif isinstance(item, DeletePayloadOp):
        part = item.delete_payload
        op = delete_payload_op(part)
    elif isinstance(item, DeleteVectorsOp):
        part = item.delete_vectors
        op = delete_vectors_op(part)
    else:
        part = item.clear_payload
        op = ClearPayload(selector(part.points, part.filter))
    options = write_options(request, part.shard_key)
    return lambda wait: col.update(op, wait, options)


async def batch_update(request: web.Request) -> web.Response:
    """Every operation is parsed (and its vectors checked) before the first one applies, so a bad
    one rejects the whole request. They apply in order; all but the last complete before the
    next starts (later operations may read what earlier ones wrote)."""
    col = _col(request)
    request.app[QUOTAS_KEY].check_write()
    req = await body(request, UpdateOperationsIn)
    wait = query_bool(request, "wait")
    steps = [_step(request, col, item) for item in req.operations]
    results = []
    for i, step in enumerate(steps):
        result = await step(wait or i < len(steps) - 1)
        results.append(
            update_json(UpdateResult(result.operation_id, "completed" if wait else "acknowledged"))
        )
    return ok(request, results)


async def get_point(request: web.Request) -> web.Response:
    col = _col(request)
    raw = request.match_info["id"]
    pid = parse_point_id(parse_decimal(raw, "id", "a point id") if raw.isdigit() else raw, "id")
    recs = await col.retrieve([pid], PayloadSelector.parse(True), VectorSelector.parse(True))
    if not recs:
        raise NotFoundError(f"Point with id {pid} does not exists!")
    return ok(request, record_json(recs[0], col))


async def get_points(request: web.Request) -> web.Response:
    col = _col(request)
    req = await body(request, PointRequestIn)
    with_payload = True if req.with_payload is None else req.with_payload
    want = records_want(col, len(req.ids), with_payload, req.with_vector, "ids")
    await check_budget(col, [want], limits(request))
    work = col.retrieve(req.ids, PayloadSelector.parse(with_payload), VectorSelector.parse(req.with_vector))
    recs = await with_shard_keys(req.shard_key, work)
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
