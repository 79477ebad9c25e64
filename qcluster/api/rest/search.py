"""Query endpoints: ``/points/query`` (and its batch / groups forms), and the legacy (1.18)
``/points/search``, ``/recommend``, ``/discover`` endpoints with their batch / groups forms, which
are translated into the universal query and answered in their own response shapes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from qcluster.api.rest.app import TOC_KEY, ok_built
from qcluster.api.rest.parse import FormatError, body, limits
from qcluster.api.rest.render import group_json, hits_json
from qcluster.collection import Collection
from qcluster.collection.query import Group, Hit, Lookup, run_groups, run_query
from qcluster.collection.query.budget import Want, check_budget, groups_wants, query_wants
from qcluster.collection.query.groups import MAX_CANDIDATES
from qcluster.collection.read_scope import with_shard_keys
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
from qcluster.types import DEFAULT_VECTOR


def _col(request: web.Request) -> Collection:
    return request.app[TOC_KEY].get(request.match_info["collection_name"])


def _lookup(request: web.Request) -> Lookup:
    return request.app[TOC_KEY].get


# ------------------------------------------------------------------------------ query
async def _within_budget(request: web.Request, col: Collection, queries: list[QueryIn], batch: bool) -> None:
    wants: list[Want] = []
    for i, q in enumerate(queries):
        wants += query_wants(col, q, f"searches[{i}]." if batch else "")
    await check_budget(col, wants, limits(request))


async def query(request: web.Request) -> web.Response:
    col = _col(request)
    req = await body(request, QueryIn, required=False)
    await _within_budget(request, col, [req], batch=False)
    hits = await with_shard_keys(req.shard_key, run_query(col, req, _lookup(request)))
    return await ok_built(request, lambda: {"points": hits_json(hits, col)}, len(hits))


async def query_batch(request: web.Request) -> web.Response:
    col = _col(request)
    req = await body(request, QueryBatchIn)
    await _within_budget(request, col, list(req.searches), batch=True)
    lookup = _lookup(request)
    results = await asyncio.gather(
        *(with_shard_keys(q.shard_key, run_query(col, q, lookup)) for q in req.searches)
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
    lookup = _lookup(request)
    wants = groups_wants(col, req, group_size or 3, limit or 10, MAX_CANDIDATES)
    await check_budget(col, wants, limits(request))
    groups: list[Group] = await with_shard_keys(
        req.shard_key,
        run_groups(
            col,
            req,
            lookup,
            group_by=group_by,
            group_size=group_size or 3,
            limit=limit or 10,
            with_lookup=with_lookup,
        ),
    )
    lookup_col = None
    if with_lookup is not None:
        lookup_col = lookup(with_lookup if isinstance(with_lookup, str) else with_lookup.collection)
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
def _named_vector(raw: Any) -> tuple[Any, str | None]:
    """Legacy ``vector``: a list, or ``{"name", "vector"}`` (a named dense or sparse vector)."""
    if isinstance(raw, Mapping):
        if "vector" not in raw:
            raise FormatError("vector: expected a list of numbers or {name, vector}", "vector")
        name = raw.get("name")
        return raw["vector"], name if isinstance(name, str) else DEFAULT_VECTOR
    return raw, None


def from_search(req: SearchIn | SearchGroupsIn) -> QueryIn:
    vec, using = _named_vector(req.vector)
    return QueryIn.model_construct(
        query=vec,
        using=using,
        filter=req.filter,
        params=req.params,
        score_threshold=req.score_threshold,
        limit=req.limit,
        offset=getattr(req, "offset", None),
        with_payload=req.with_payload,
        with_vector=req.with_vector,
        prefetch=None,
        lookup_from=None,
        shard_key=req.shard_key,
    )


def from_recommend(req: RecommendIn | RecommendGroupsIn) -> QueryIn:
    spec = {"positive": req.positive or [], "negative": req.negative or [], "strategy": req.strategy}
    return QueryIn.model_construct(
        query={"recommend": spec},
        using=req.using,
        filter=req.filter,
        params=req.params,
        score_threshold=req.score_threshold,
        limit=req.limit,
        offset=getattr(req, "offset", None),
        with_payload=req.with_payload,
        with_vector=req.with_vector,
        prefetch=None,
        lookup_from=req.lookup_from,
        shard_key=req.shard_key,
    )


def from_discover(req: DiscoverIn) -> QueryIn:
    pairs = [{"positive": p.positive, "negative": p.negative} for p in req.context or []]
    # Without a target the legacy discover endpoint is a context search.
    query_: Any = (
        {"context": pairs} if req.target is None else {"discover": {"target": req.target, "context": pairs}}
    )
    return QueryIn.model_construct(
        query=query_,
        using=req.using,
        filter=req.filter,
        params=req.params,
        score_threshold=None,
        limit=req.limit,
        offset=req.offset,
        with_payload=req.with_payload,
        with_vector=req.with_vector,
        prefetch=None,
        lookup_from=req.lookup_from,
        shard_key=req.shard_key,
    )


Convert = Callable[[Any], QueryIn]


def _single(model: type[Any], convert: Convert) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        col = _col(request)
        req = convert(await body(request, model))
        await _within_budget(request, col, [req], batch=False)
        hits: list[Hit] = await with_shard_keys(req.shard_key, run_query(col, req, _lookup(request)))
        return await ok_built(request, lambda: hits_json(hits, col), len(hits))

    return handler


def _batch(model: type[Any], convert: Convert) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        col = _col(request)
        req = await body(request, model)
        queries = [convert(s) for s in req.searches]
        await _within_budget(request, col, queries, batch=True)
        lookup = _lookup(request)
        results = await asyncio.gather(
            *(with_shard_keys(q.shard_key, run_query(col, q, lookup)) for q in queries)
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
    r.add_post(base + "/search", _single(SearchIn, from_search))
    r.add_post(base + "/search/batch", _batch(SearchBatchIn, from_search))
    r.add_post(base + "/search/groups", _grouped(SearchGroupsIn, from_search))
    r.add_post(base + "/recommend", _single(RecommendIn, from_recommend))
    r.add_post(base + "/recommend/batch", _batch(RecommendBatchIn, from_recommend))
    r.add_post(base + "/recommend/groups", _grouped(RecommendGroupsIn, from_recommend))
    r.add_post(base + "/discover", _single(DiscoverIn, from_discover))
    r.add_post(base + "/discover/batch", _batch(DiscoverBatchIn, from_discover))
