"""The universal query (``POST /points/query``): dispatch on the kind of ``query``, prefetches first.

::

    query absent         -> points by id (or the prefetched points, in order)
    [floats] | point id  -> nearest (ANN search; exact rescoring over prefetched points)
    {"nearest", "mmr"}   -> nearest, then maximal-marginal-relevance re-ranking of the candidates
    {"recommend"} {"discover"} {"context"}   -> examples.py
    {"order_by"}         -> points ordered by a payload field (range index required)
    {"fusion": rrf|dbsf} {"rrf": {k, weights}}  -> fusion of the prefetch results
    {"sample": "random"} -> random points matching the filter

The request's ``filter`` also applies inside every prefetch. Prefetches run concurrently.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import random
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from qcluster.collection.collection import Collection
from qcluster.collection.query import examples
from qcluster.collection.query.context import (
    Hit,
    Lookup,
    QueryContext,
    hydrate,
    make_context,
    order_by_spec,
    resolve_vector,
    similarity,
)
from qcluster.collection.query.fusion import DEFAULT_RRF_K, dbsf, mmr, rrf
from qcluster.errors import BadInputError
from qcluster.models.query import OrderByIn, PrefetchIn, QueryIn
from qcluster.shards.base import NO_PAYLOAD, ScrollRequest, SearchRequest, VectorSelector
from qcluster.types import PointId

FUSE_ON_THREAD = 10_000  # prefetched points: more are fused on a thread
UNSUPPORTED = {
    "formula": "formula queries",
    "relevance_feedback": "relevance feedback queries",
    "indices": "sparse vectors",
    "text": "inference (document) queries",
    "image": "inference (image) queries",
    "object": "inference (object) queries",
}


def merge_filters(
    outer: Mapping[str, Any] | None, inner: Mapping[str, Any] | None
) -> Mapping[str, Any] | None:
    if outer is None:
        return inner
    if inner is None:
        return outer
    return {"must": [outer, inner]}


async def run_query(
    col: Collection,
    req: PrefetchIn,
    lookup: Lookup,
    *,
    outer_filter: Mapping[str, Any] | None = None,
    default_payload: Any = False,
) -> list[Hit]:
    """Run one query (or prefetch) against ``col``; ``lookup`` resolves other collections by
    name (``lookup_from``)."""
    flt = merge_filters(outer_filter, req.filter)
    offset, with_payload, with_vector = None, False, False
    if isinstance(req, QueryIn):  # a prefetch returns ids and scores only
        offset, with_payload, with_vector = req.offset, req.with_payload, req.with_vector
    ctx = make_context(
        col,
        lookup,
        using=req.using,
        filter=flt,
        params=req.params,
        score_threshold=req.score_threshold,
        limit=req.limit,
        offset=offset,
        with_payload=with_payload,
        with_vector=with_vector,
        lookup_from=req.lookup_from,
        default_payload=default_payload,
    )
    pre: list[list[Hit]] | None = None
    if req.prefetch is not None:
        items = req.prefetch if isinstance(req.prefetch, list) else [req.prefetch]
        pre = list(await asyncio.gather(*(run_query(col, p, lookup, outer_filter=flt) for p in items)))
    return await _dispatch(ctx, req.query, pre)


def _ids(pre: Sequence[Sequence[Hit]]) -> list[PointId]:
    return list({h.id: None for hits in pre for h in hits})


async def _dispatch(ctx: QueryContext, query: Any, pre: list[list[Hit]] | None) -> list[Hit]:
    prefetched = None if pre is None else _ids(pre)
    if query is None:
        if pre is None:
            return await scroll_hits(ctx, None)
        merged = {h.id: h.score for hits in pre for h in hits}
        return await hydrate(ctx, list(merged.items())[ctx.offset : ctx.offset + ctx.limit])
    if isinstance(query, Mapping):
        for key, what in UNSUPPORTED.items():
            if key in query:
                raise BadInputError(f"query: {what} are not supported by qcluster", f"query.{key}")
        if "nearest" in query:
            return await _nearest(ctx, query["nearest"], query.get("mmr"), prefetched)
        if "recommend" in query:
            return await examples.recommend(ctx, query["recommend"], prefetched)
        if "discover" in query:
            return await examples.discover(ctx, query["discover"], prefetched)
        if "context" in query:
            return await examples.context_search(ctx, query["context"], prefetched)
        if "order_by" in query:
            return await _order_by(ctx, query["order_by"], prefetched)
        if "fusion" in query or "rrf" in query:
            return await _fusion(ctx, query, pre)
        if "sample" in query:
            return await _sample(ctx, query["sample"], prefetched)
        raise BadInputError(
            f"query: unknown query kind {sorted(query)}; expected a vector, a point id, or one of "
            "nearest, recommend, discover, context, order_by, fusion, rrf, sample",
            "query",
        )
    return await _nearest(ctx, query, None, prefetched)


async def _nearest(ctx: QueryContext, raw: Any, mmr_raw: Any, prefetched: list[PointId] | None) -> list[Hit]:
    vec, pid = await resolve_vector(ctx, raw, "query")
    if mmr_raw is not None:
        return await _mmr(ctx, vec, mmr_raw, prefetched, {pid} if pid is not None else set())
    if prefetched is not None:
        return await examples.nearest_over(ctx, prefetched, vec)
    return await examples.nearest(ctx, vec, {pid} if pid is not None else set())


async def _mmr(
    ctx: QueryContext, vec: Any, raw: Any, prefetched: list[PointId] | None, exclude: set[PointId]
) -> list[Hit]:
    """Candidates (the nearest ``candidates_limit``, or the prefetched points), then MMR picks
    ``offset + limit`` of them; each hit keeps its own query score."""
    if not isinstance(raw, Mapping):
        raise BadInputError("query.mmr: expected {diversity, candidates_limit}", "query.mmr")
    diversity = raw.get("diversity")
    diversity = 0.5 if diversity is None else diversity
    if isinstance(diversity, bool) or not isinstance(diversity, int | float) or not 0 <= diversity <= 1:
        raise BadInputError("query.mmr.diversity: expected a number from 0 to 1", "query.mmr.diversity")
    wanted = ctx.offset + ctx.limit
    pool = raw.get("candidates_limit")
    pool = wanted if pool is None else pool
    if isinstance(pool, bool) or not isinstance(pool, int) or not 0 <= pool <= 16384:
        raise BadInputError("query.mmr.candidates_limit: expected an integer from 0 to 16384", "query.mmr")
    if prefetched is None:
        req = SearchRequest(
            vector=vec,
            using=ctx.using,
            limit=max(pool, wanted) + len(exclude),
            filter=ctx.filter,
            score_threshold=ctx.score_threshold,
            params=ctx.params,
        )
        (found,) = await ctx.col.search([req])
        scores = {h.id: h.score for h in found if h.id not in exclude}
    else:
        exact = await examples.nearest_over(
            dataclasses.replace(ctx, limit=len(prefetched), offset=0), prefetched, vec
        )
        scores = {h.id: h.score for h in exact}
    recs = await ctx.col.retrieve(list(scores), NO_PAYLOAD, VectorSelector(True, (ctx.using,)))
    recs = [r for r in recs if r.vector and ctx.using in r.vector]
    if not recs:
        return []
    mat = np.stack([r.vector[ctx.using] for r in recs])  # type: ignore[index]

    def pick() -> list[int]:
        relevance = similarity(ctx.distance, mat, vec).astype(np.float64)
        return mmr(relevance, lambda i: similarity(ctx.distance, mat, mat[i]), float(diversity), wanted)

    order = await asyncio.to_thread(pick) if len(mat) > 256 else pick()
    picked = [(recs[i].id, scores[recs[i].id]) for i in order][ctx.offset :]
    return await hydrate(ctx, picked)


async def _fusion(ctx: QueryContext, query: Mapping[str, Any], pre: list[list[Hit]] | None) -> list[Hit]:
    if pre is None:
        raise BadInputError("fusion queries need `prefetch`: they combine the prefetch results", "prefetch")
    lists = [[(h.id, h.score) for h in hits] for hits in pre]
    fused = await _fuse(query, lists)
    if ctx.score_threshold is not None:
        fused = [(p, s) for p, s in fused if s >= ctx.score_threshold]
    return await hydrate(ctx, fused[ctx.offset : ctx.offset + ctx.limit])


async def _fuse(
    query: Mapping[str, Any], lists: list[list[tuple[PointId, float]]]
) -> list[tuple[PointId, float]]:
    """The fused ranking; long prefetch results are fused off the event loop."""
    if "rrf" in query:
        spec = query["rrf"]
        if not isinstance(spec, Mapping):
            raise BadInputError("query.rrf: expected {k, weights}", "query.rrf")
        k = spec.get("k")
        k = DEFAULT_RRF_K if k is None else k
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise BadInputError("query.rrf.k: expected a positive integer", "query.rrf.k")
        weights = spec.get("weights")
        if weights is not None and (
            not isinstance(weights, list) or not all(isinstance(w, int | float) for w in weights)
        ):
            raise BadInputError("query.rrf.weights: expected a list of numbers", "query.rrf.weights")
        fuse = functools.partial(rrf, lists, k, weights)
    elif query["fusion"] == "rrf":
        fuse = functools.partial(rrf, lists)
    elif query["fusion"] == "dbsf":
        fuse = functools.partial(dbsf, lists)
    else:
        raise BadInputError(
            f"query.fusion: unknown variant `{query['fusion']}`, expected one of `rrf`, `dbsf`",
            "query.fusion",
        )
    if sum(map(len, lists)) > FUSE_ON_THREAD:
        return await asyncio.to_thread(fuse)
    return fuse()


async def scroll_hits(
    ctx: QueryContext, order: OrderByIn | str | None, limit: int | None = None
) -> list[Hit]:
    """Points in id order (or ordered by a payload field); score 0, or the order value."""
    spec = None if order is None else order_by_spec(order, "query.order_by")
    res = await ctx.col.scroll(
        ScrollRequest(
            limit=limit if limit is not None else ctx.offset + ctx.limit,
            filter=ctx.filter,
            with_payload=ctx.with_payload,
            with_vector=ctx.with_vector,
            order_by=spec,
        )
    )
    return [
        Hit(
            r.id,
            float(r.order_value) if r.order_value is not None else 0.0,
            payload=r.payload,
            vector=r.vector,
            order_value=r.order_value,
        )
        for r in res.points[ctx.offset :]
    ]


def _order_spec(raw: Any) -> OrderByIn | str:
    if isinstance(raw, str):
        return raw
    if isinstance(raw, Mapping) and isinstance(raw.get("key"), str):
        try:
            return OrderByIn.model_validate(raw, strict=True)
        except ValueError:
            pass
    raise BadInputError(
        "query.order_by: expected a payload key or {key, direction: asc|desc, start_from}", "query.order_by"
    )


async def _order_by(ctx: QueryContext, raw: Any, prefetched: list[PointId] | None) -> list[Hit]:
    spec = _order_spec(raw)
    if prefetched is None:
        return await scroll_hits(ctx, spec)
    # Over prefetched points: the same ordered scroll, restricted to them.
    ctx.filter = merge_filters(ctx.filter, {"must": [{"has_id": prefetched}]})
    return await scroll_hits(ctx, spec)


async def _sample(ctx: QueryContext, raw: Any, prefetched: list[PointId] | None) -> list[Hit]:
    if raw != "random":
        raise BadInputError(f"query.sample: unknown variant {raw!r}, expected `random`", "query.sample")
    if prefetched is None:
        res = await ctx.col.scroll(ScrollRequest(limit=2**62, filter=ctx.filter, with_payload=NO_PAYLOAD))
        pool = [r.id for r in res.points]
    else:
        pool = prefetched
    picked = random.sample(pool, min(ctx.limit, len(pool)))
    return await hydrate(ctx, [(p, 0.0) for p in picked])
