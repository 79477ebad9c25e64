"""Query endpoints: ``/points/query`` (and its batch / groups forms), and the legacy (1.18)
``/points/search``, ``/recommend``, ``/discover`` endpoints with their batch / groups forms, which
are translated into the universal query (:mod:`qcluster.api.actions.query`) and answered in their
own response shapes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from qcluster.api.actions import query as actions
from qcluster.api.rest.app import TOC_KEY, ok_built
from qcluster.api.rest.parse import body, limits
from qcluster.api.rest.render import group_json, hits_json
from qcluster.collection import Collection
from qcluster.collection.query import Lookup
from qcluster.models.query import (
    DiscoverBatchIn,
    DiscoverIn,
    QueryBatchIn,
    QueryGroupsIn,
    QueryIn,
    RecommendBatchIn,
    RecommendGroupsIn,
    RecommendIn,
    SearchBatchIn,
    SearchGroupsIn,
    SearchIn,
    WithLookupIn,
)


def _col(request: web.Request) -> Collection:
    return request.app[TOC_KEY].get(request.match_info["collection_name"])


def _lookup(request: web.Request) -> Lookup:
    return request.app[TOC_KEY].get


def _timeout(request: web.Request) -> str | None:
    return request.query.get("timeout")


# ------------------------------------------------------------------------------ query
async def query(request: web.Request) -> web.Response:
    col = _col(request)
    req = await body(request, QueryIn, required=False, prefix="internal.")
    hits = await actions.query(col, req, _lookup(request), limits(request), _timeout(request))
    return await ok_built(request, lambda: {"points": hits_json(hits, col)}, len(hits))


async def query_batch(request: web.Request) -> web.Response:
    col = _col(request)
    req = await body(request, QueryBatchIn)
    results = await actions.query_batch(
        col, req.searches, _lookup(request), limits(request), _timeout(request)
    )
    return await ok_built(
        request, lambda: [{"points": hits_json(hits, col)} for hits in results], sum(map(len, results))
    )


async def _groups(
    request: web.Request,
    col: Collection,
    req: QueryIn,
    *,
    group_by: str,
    group_size: int | None,
    limit: int | None,
    with_lookup: str | WithLookupIn | None,
) -> web.Response:
    groups, lookup_col = await actions.groups(
        col,
        req,
        _lookup(request),
        group_by=group_by,
        group_size=group_size,
        limit=limit,
        with_lookup=with_lookup,
        bounds=limits(request),
        timeout=_timeout(request),
    )
    return await ok_built(
        request,
        lambda: {"groups": [group_json(g, col, lookup_col) for g in groups]},
        sum(len(g.hits) for g in groups),
    )


async def query_groups(request: web.Request) -> web.Response:
    col = _col(request)
    req = await body(request, QueryGroupsIn)
    return await _groups(
        request,
        col,
        req,
        group_by=req.group_by,
        group_size=req.group_size,
        limit=req.limit,
        with_lookup=req.with_lookup,
    )


# ------------------------------------------------------------------------------ legacy endpoints
Convert = Callable[[Any], QueryIn]


def _single(model: type[Any], convert: Convert) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        col = _col(request)
        req = convert(await body(request, model))
        hits = await actions.query(col, req, _lookup(request), limits(request), _timeout(request))
        return await ok_built(request, lambda: hits_json(hits, col), len(hits))

    return handler


def _batch(model: type[Any], convert: Convert) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        col = _col(request)
        req = await body(request, model)
        queries = [convert(s) for s in req.searches]
        results = await actions.query_batch(
            col, queries, _lookup(request), limits(request), _timeout(request)
        )
        return await ok_built(request, lambda: [hits_json(h, col) for h in results], sum(map(len, results)))

    return handler


def _grouped(model: type[Any], convert: Convert) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        col = _col(request)
        req = await body(request, model)
        return await _groups(
            request,
            col,
            convert(req),
            group_by=req.group_by,
            group_size=req.group_size,
            limit=req.limit,
            with_lookup=req.with_lookup,
        )

    return handler


def register(app: web.Application) -> None:
    r = app.router
    base = "/collections/{collection_name}/points"
    r.add_post(base + "/query", query)
    r.add_post(base + "/query/batch", query_batch)
    r.add_post(base + "/query/groups", query_groups)
    r.add_post(base + "/search", _single(SearchIn, actions.from_search))
    r.add_post(base + "/search/batch", _batch(SearchBatchIn, actions.from_search))
    r.add_post(base + "/search/groups", _grouped(SearchGroupsIn, actions.from_search))
    r.add_post(base + "/recommend", _single(RecommendIn, actions.from_recommend))
    r.add_post(base + "/recommend/batch", _batch(RecommendBatchIn, actions.from_recommend))
    r.add_post(base + "/recommend/groups", _grouped(RecommendGroupsIn, actions.from_recommend))
    r.add_post(base + "/discover", _single(DiscoverIn, actions.from_discover))
    r.add_post(base + "/discover/batch", _batch(DiscoverBatchIn, actions.from_discover))
