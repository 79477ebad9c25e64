"""Read endpoints: query (and its batch / groups forms), the legacy search / recommend / discover
endpoints, scroll, count and facet."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from qcluster.api.rest.app import TOC_KEY, ok
from qcluster.api.rest.parse import body_json, filter_field, obj, vector_output
from qcluster.api.rest.points import record_json
from qcluster.collection import Collection
from qcluster.collection.query import order_by_spec, run_query
from qcluster.errors import UnprocessableInputError
from qcluster.shards.base import (
    CountRequest,
    PayloadSelector,
    ScoredPoint,
    ScrollRequest,
    VectorSelector,
)
from qcluster.shards.payload_ops import select_payload
from qcluster.types import DEFAULT_VECTOR, parse_point_id


def _col(request: web.Request) -> Collection:
    return request.app[TOC_KEY].get(request.match_info["collection_name"])


def scored_json(p: ScoredPoint, col: Collection) -> dict[str, Any]:
    return {
        "id": p.id,
        "version": p.version,
        "score": p.score,
        "payload": p.payload,
        "vector": vector_output(p.vector, col.config),
    }


# ------------------------------------------------------------------------------ query
async def query(request: web.Request) -> web.Response:
    col = _col(request)
    hits = await run_query(col, obj(await body_json(request, required=False)))
    return ok(request, {"points": [scored_json(h, col) for h in hits]})


async def query_batch(request: web.Request) -> web.Response:
    col = _col(request)
    body = obj(await body_json(request))
    searches = body.get("searches")
    if not isinstance(searches, list):
        raise UnprocessableInputError("searches: expected a list of queries", "searches")
    out = []
    for i, s in enumerate(searches):
        hits = await run_query(col, obj(s, f"searches[{i}]"))
        out.append({"points": [scored_json(h, col) for h in hits]})
    return ok(request, out)


def _value_at(payload: Mapping[str, Any] | None, key: str) -> list[Any]:
    node: Any = payload or {}
    for part in key.split("."):
        if isinstance(node, Mapping):
            node = node.get(part)
        else:
            return []
    values = node if isinstance(node, list) else [node]
    return [v for v in values if isinstance(v, str | int) and not isinstance(v, bool)]


async def _groups(
    request: web.Request, col: Collection, body: dict[str, Any], legacy: str | None
) -> dict[str, Any]:
    group_by = body.get("group_by")
    if not isinstance(group_by, str):
        raise UnprocessableInputError("group_by: expected a payload key", "group_by")
    group_size = body.get("group_size", 3)
    limit = body.get("limit", 10)
    if not isinstance(group_size, int) or group_size < 1 or not isinstance(limit, int) or limit < 1:
        raise UnprocessableInputError("group_size and limit must be positive integers", "group_size")
    wanted = PayloadSelector.parse(body.get("with_payload", False))
    inner = dict(body)
    inner.update({"limit": limit * group_size * 4, "offset": 0, "with_payload": True})
    if legacy is not None:
        inner = _legacy_to_query(inner, legacy)
    hits = await run_query(col, inner)
    groups: dict[Any, list[ScoredPoint]] = {}
    for h in hits:
        for value in _value_at(h.payload, group_by):
            bucket = groups.setdefault(value, [])
            if len(bucket) < group_size and h.id not in {x.id for x in bucket}:
                bucket.append(h)
    ordered = list(groups.items())[:limit]
    result_groups = []
    lookup = body.get("with_lookup")
    lookup_col = None
    if lookup is not None:
        spec = {"collection": lookup} if isinstance(lookup, str) else lookup
        lookup_col = request.app[TOC_KEY].get(spec["collection"])
        lookup_payload = PayloadSelector.parse(spec.get("with_payload", True))
        lookup_vector = VectorSelector.parse(spec.get("with_vectors", spec.get("with_vector", False)))
    for value, members in ordered:
        group: dict[str, Any] = {
            "id": value,
            "hits": [{**scored_json(m, col), "payload": select_payload(m.payload, wanted)} for m in members],
        }
        if lookup_col is not None:
            try:
                pid = parse_point_id(value)
                recs = await lookup_col.retrieve([pid], lookup_payload, lookup_vector)
            except Exception:
                recs = []
            if recs:
                group["lookup"] = record_json(recs[0], lookup_col)
        result_groups.append(group)
    return {"groups": result_groups}


async def query_groups(request: web.Request) -> web.Response:
    col = _col(request)
    return ok(request, await _groups(request, col, obj(await body_json(request)), None))


# ------------------------------------------------------------------------------ legacy endpoints
def _legacy_to_query(body: Mapping[str, Any], kind: str) -> dict[str, Any]:
    out = {
        k: v
        for k, v in body.items()
        if k not in ("vector", "positive", "negative", "strategy", "target", "context")
    }
    if kind == "search":
        vec = body.get("vector")
        if isinstance(vec, Mapping) and "vector" in vec:
            out["using"] = vec.get("name") or DEFAULT_VECTOR
            vec = vec["vector"]
        out["query"] = vec
    elif kind == "recommend":
        out["query"] = {
            "recommend": {
                "positive": body.get("positive", []),
                "negative": body.get("negative", []),
                "strategy": body.get("strategy"),
            }
        }
    elif kind == "discover":
        out["query"] = {"discover": {"target": body.get("target"), "context": body.get("context", [])}}
    if "with_vectors" in body and "with_vector" not in body:
        out["with_vector"] = body["with_vectors"]
    return out


def _legacy(kind: str, batch: bool, groups: bool = False) -> Any:
    async def handler(request: web.Request) -> web.Response:
        col = _col(request)
        body = obj(await body_json(request))
        if groups:
            return ok(request, await _groups(request, col, body, kind))
        if batch:
            searches = body.get("searches")
            if not isinstance(searches, list):
                raise UnprocessableInputError("searches: expected a list", "searches")
            out = []
            for i, s in enumerate(searches):
                hits = await run_query(col, _legacy_to_query(obj(s, f"searches[{i}]"), kind))
                out.append([scored_json(h, col) for h in hits])
            return ok(request, out)
        hits = await run_query(col, _legacy_to_query(body, kind))
        return ok(request, [scored_json(h, col) for h in hits])

    return handler


# ------------------------------------------------------------------------------ scroll / count / facet
async def scroll(request: web.Request) -> web.Response:
    col = _col(request)
    body = obj(await body_json(request, required=False))
    limit = body.get("limit", 10)
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise UnprocessableInputError(f"limit: value {limit!r} invalid, must be 1 or more", "limit")
    offset = body.get("offset")
    order_by = body.get("order_by")
    order = None
    if order_by is not None:
        spec = {"key": order_by} if isinstance(order_by, str) else order_by
        if not isinstance(spec, Mapping) or not isinstance(spec.get("key"), str):
            raise UnprocessableInputError(
                "order_by: expected a key or {key, direction, start_from}", "order_by"
            )
        order = order_by_spec(spec, "order_by")
    flt = filter_field(body)
    res = await col.scroll(
        ScrollRequest(
            offset=None if offset is None else parse_point_id(offset, "offset"),
            limit=limit,
            filter=flt,
            with_payload=PayloadSelector.parse(body.get("with_payload", True)),
            with_vector=VectorSelector.parse(body.get("with_vector", False)),
            order_by=order,
        )
    )
    return ok(
        request,
        {"points": [record_json(r, col) for r in res.points], "next_page_offset": res.next_page_offset},
    )


async def count(request: web.Request) -> web.Response:
    col = _col(request)
    body = obj(await body_json(request, required=False))
    flt = filter_field(body)
    return ok(
        request, {"count": await col.count(CountRequest(filter=flt, exact=bool(body.get("exact", True))))}
    )


async def facet(request: web.Request) -> web.Response:
    col = _col(request)
    body = obj(await body_json(request))
    key = body.get("key")
    if not isinstance(key, str):
        raise UnprocessableInputError("key: expected a payload key", "key")
    limit = body.get("limit", 10)
    if not isinstance(limit, int) or limit < 1:
        raise UnprocessableInputError("limit: must be a positive integer", "limit")
    hits = await col.facet(key, body.get("filter"), limit, bool(body.get("exact", False)))
    return ok(request, {"hits": [{"value": v, "count": c} for v, c in hits]})


def register(app: web.Application) -> None:
    r = app.router
    base = "/collections/{collection_name}/points"
    r.add_post(base + "/query", query)
    r.add_post(base + "/query/batch", query_batch)
    r.add_post(base + "/query/groups", query_groups)
    r.add_post(base + "/search", _legacy("search", False))
    r.add_post(base + "/search/batch", _legacy("search", True))
    r.add_post(base + "/search/groups", _legacy("search", False, groups=True))
    r.add_post(base + "/recommend", _legacy("recommend", False))
    r.add_post(base + "/recommend/batch", _legacy("recommend", True))
    r.add_post(base + "/recommend/groups", _legacy("recommend", False, groups=True))
    r.add_post(base + "/discover", _legacy("discover", False))
    r.add_post(base + "/discover/batch", _legacy("discover", True))
    r.add_post(base + "/scroll", scroll)
    r.add_post(base + "/count", count)
    r.add_post("/collections/{collection_name}/facet", facet)
