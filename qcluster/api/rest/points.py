"""Point write endpoints (upsert, delete, payload, vectors, batch) and retrieval by id."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from qcluster.api.rest.app import TOC_KEY, ok
from qcluster.api.rest.parse import (
    batch_from_columns,
    body_json,
    obj,
    point_ids,
    point_structs,
    points_batch,
    query_bool,
    selector,
    vector_output,
)
from qcluster.collection import Collection
from qcluster.errors import NotFoundError, UnprocessableInputError
from qcluster.shards.base import PayloadSelector, VectorSelector
from qcluster.shards.operations import (
    ClearPayload,
    DeletePayload,
    DeletePoints,
    DeleteVectors,
    OverwritePayload,
    SetPayload,
    UpdateOperation,
    UpdateVectors,
    UpsertPoints,
)
from qcluster.types import parse_point_id


def _col(request: web.Request) -> Collection:
    return request.app[TOC_KEY].get(request.match_info["collection_name"])


async def _run(request: web.Request, col: Collection, op: UpdateOperation) -> web.Response:
    result = await col.update(op, query_bool(request, "wait"))
    return ok(request, {"operation_id": result.operation_id, "status": result.status})


def upsert_op(body: dict[str, Any], col: Collection) -> UpsertPoints:
    if "batch" in body:
        return UpsertPoints(batch_from_columns(obj(body["batch"], "batch"), col.config))
    if "points" in body:
        return UpsertPoints(point_structs(body["points"], col.config))
    raise UnprocessableInputError("expected `points` (a list of points) or `batch`", "points")


def _payload(body: dict[str, Any]) -> dict[str, Any]:
    payload = body.get("payload")
    if not isinstance(payload, dict):
        raise UnprocessableInputError("payload: expected a JSON object", "payload")
    return payload


def set_payload_op(body: dict[str, Any]) -> SetPayload:
    key = body.get("key")
    if key is not None and not isinstance(key, str):
        raise UnprocessableInputError("key: expected a string", "key")
    return SetPayload(selector(body), _payload(body), key)


def delete_payload_op(body: dict[str, Any]) -> DeletePayload:
    keys = body.get("keys")
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise UnprocessableInputError("keys: expected a list of payload keys", "keys")
    return DeletePayload(selector(body), tuple(keys))


def update_vectors_op(body: dict[str, Any], col: Collection) -> UpdateVectors:
    pts = body.get("points")
    if not isinstance(pts, list):
        raise UnprocessableInputError("points: expected a list of {id, vector}", "points")
    ids = [
        parse_point_id(p.get("id") if isinstance(p, dict) else None, f"points[{i}].id")
        for i, p in enumerate(pts)
    ]
    vecs = [p.get("vector") for p in pts]
    return UpdateVectors(points_batch(ids, vecs, None, col.config))


def delete_vectors_op(body: dict[str, Any]) -> DeleteVectors:
    names = body.get("vector")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise UnprocessableInputError("vector: expected a list of vector names", "vector")
    return DeleteVectors(selector(body), tuple(names))


async def upsert(request: web.Request) -> web.Response:
    col = _col(request)
    return await _run(request, col, upsert_op(obj(await body_json(request)), col))


async def delete(request: web.Request) -> web.Response:
    col = _col(request)
    return await _run(request, col, DeletePoints(selector(obj(await body_json(request)))))


async def set_payload(request: web.Request) -> web.Response:
    col = _col(request)
    return await _run(request, col, set_payload_op(obj(await body_json(request))))


async def overwrite_payload(request: web.Request) -> web.Response:
    col = _col(request)
    body = obj(await body_json(request))
    return await _run(request, col, OverwritePayload(selector(body), _payload(body)))


async def delete_payload(request: web.Request) -> web.Response:
    col = _col(request)
    return await _run(request, col, delete_payload_op(obj(await body_json(request))))


async def clear_payload(request: web.Request) -> web.Response:
    col = _col(request)
    return await _run(request, col, ClearPayload(selector(obj(await body_json(request)))))


async def update_vectors(request: web.Request) -> web.Response:
    col = _col(request)
    return await _run(request, col, update_vectors_op(obj(await body_json(request)), col))


async def delete_vectors(request: web.Request) -> web.Response:
    col = _col(request)
    return await _run(request, col, delete_vectors_op(obj(await body_json(request))))


def _batch_op(col: Collection, item: Any, i: int) -> UpdateOperation:
    item = obj(item, f"operations[{i}]")
    if len(item) != 1:
        raise UnprocessableInputError(f"operations[{i}]: expected exactly one operation", f"operations[{i}]")
    kind, body = next(iter(item.items()))
    body = obj(body, f"operations[{i}].{kind}")
    if kind == "upsert":
        return upsert_op(body, col)
    if kind == "delete":
        return DeletePoints(selector(body))
    if kind == "set_payload":
        return set_payload_op(body)
    if kind == "overwrite_payload":
        return OverwritePayload(selector(body), _payload(body))
    if kind == "delete_payload":
        return delete_payload_op(body)
    if kind == "clear_payload":
        return ClearPayload(selector(body))
    if kind == "update_vectors":
        return update_vectors_op(body, col)
    if kind == "delete_vectors":
        return delete_vectors_op(body)
    raise UnprocessableInputError(f"operations[{i}]: unknown operation `{kind}`", f"operations[{i}]")


async def batch_update(request: web.Request) -> web.Response:
    col = _col(request)
    body = obj(await body_json(request))
    raw_ops = body.get("operations")
    if not isinstance(raw_ops, list):
        raise UnprocessableInputError("operations: expected a list", "operations")
    ops = [_batch_op(col, item, i) for i, item in enumerate(raw_ops)]  # all parsed before any applies
    wait = query_bool(request, "wait")
    results = []
    for op in ops:
        result = await col.update(op, wait)
        results.append({"operation_id": result.operation_id, "status": result.status})
    return ok(request, results)


def record_json(rec: Any, col: Collection) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": rec.id,
        "payload": rec.payload,
        "vector": vector_output(rec.vector, col.config),
    }
    if rec.order_value is not None:
        out["order_value"] = rec.order_value
    return out


async def get_point(request: web.Request) -> web.Response:
    col = _col(request)
    raw = request.match_info["id"]
    pid = parse_point_id(int(raw) if raw.isdigit() else raw, "id")
    recs = await col.retrieve([pid], PayloadSelector.parse(True), VectorSelector.parse(True))
    if not recs:
        raise NotFoundError(f"Point with id {pid} does not exists!")
    return ok(request, record_json(recs[0], col))


async def get_points(request: web.Request) -> web.Response:
    col = _col(request)
    body = obj(await body_json(request))
    ids = point_ids(body.get("ids"), "ids")
    recs = await col.retrieve(
        ids,
        PayloadSelector.parse(body.get("with_payload", True)),
        VectorSelector.parse(body.get("with_vector", False)),
    )
    return ok(request, [record_json(r, col) for r in recs])


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
