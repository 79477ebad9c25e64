"""Scroll, count and facet endpoints."""

from __future__ import annotations

from aiohttp import web

from qcluster.api.rest.app import TOC_KEY, ok, ok_built
from qcluster.api.rest.parse import body, limits
from qcluster.api.rest.render import record_json
from qcluster.collection import Collection
from qcluster.collection.query.budget import check_budget, records_want
from qcluster.collection.query.context import order_by_spec
from qcluster.collection.read_scope import with_shard_keys
from qcluster.models.query import CountIn, FacetIn, ScrollIn
from qcluster.shards.base import CountRequest, PayloadSelector, ScrollRequest, VectorSelector


def _col(request: web.Request) -> Collection:
    return request.app[TOC_KEY].get(request.match_info["collection_name"])


async def scroll(request: web.Request) -> web.Response:
    """Pages in id order with ``next_page_offset``; or ordered by a payload field (``order_by``,
    which needs a range index on it), where paging goes by ``start_from`` instead."""
    col = _col(request)
    req = await body(request, ScrollIn, required=False)
    limit = 10 if req.limit is None else req.limit
    with_payload = True if req.with_payload is None else req.with_payload
    want = records_want(col, limit, with_payload, req.with_vector, "limit")
    await check_budget(col, [want], limits(request))
    scroll_req = ScrollRequest(
        offset=req.offset,
        limit=limit,
        filter=req.filter,
        with_payload=PayloadSelector.parse(with_payload),
        with_vector=VectorSelector.parse(req.with_vector),
        order_by=None if req.order_by is None else order_by_spec(req.order_by, "order_by"),
    )
    res = await with_shard_keys(req.shard_key, col.scroll(scroll_req))
    return await ok_built(
        request,
        lambda: {
            "points": [record_json(r, col) for r in res.points],
            "next_page_offset": res.next_page_offset,
        },
        len(res.points),
    )


async def count(request: web.Request) -> web.Response:
    col = _col(request)
    req = await body(request, CountIn, required=False)
    counted = await with_shard_keys(
        req.shard_key, col.count(CountRequest(filter=req.filter, exact=req.exact))
    )
    return ok(request, {"count": counted})


async def facet(request: web.Request) -> web.Response:
    """Counts of the values of ``key`` (which needs a keyword / integer / bool / uuid index)."""
    col = _col(request)
    req = await body(request, FacetIn)
    limit = 10 if req.limit is None else req.limit
    hits = await with_shard_keys(req.shard_key, col.facet(req.key, req.filter, limit, bool(req.exact)))
    return ok(request, {"hits": [{"value": v, "count": c} for v, c in hits]})


def register(app: web.Application) -> None:
    r = app.router
    base = "/collections/{collection_name}/points"
    r.add_post(base + "/scroll", scroll)
    r.add_post(base + "/count", count)
    r.add_post("/collections/{collection_name}/facet", facet)
