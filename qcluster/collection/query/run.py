"""The universal query (``POST /points/query``): dispatch on the kind of ``query``, prefetches first.

::

    query absent         -> points by id (or the prefetched points, in order)
    [floats] | point id  -> nearest (ANN search; exact rescoring over prefetched points)
    {"nearest", "mmr"}   -> nearest, then maximal-marginal-relevance re-ranking of the candidates
    {"recommend"} {"discover"} {"context"}   -> examples.py
    {"relevance_feedback"} -> feedback.py (Qdrant's naive formula)
    {"order_by"}         -> points ordered by a payload field (range index required)
    {"fusion": rrf|dbsf} {"rrf": {k, weights}}  -> fusion of the prefetch results
    {"sample": "random"} -> random points matching the filter

The request's ``filter`` also applies inside every prefetch. Prefetches run concurrently. Points
named as examples anywhere in the request (on this collection, not via ``lookup_from``) are
excluded from every stage's results, as Qdrant excludes them (a ``must_not has_id`` on the root
filter).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import random
from collections.abc import Mapping, Sequence
from typing import Any

from qcluster.collection.collection import Collection
from qcluster.collection.query import examples, feedback
from qcluster.collection.query.context import (
    Hit,
    Lookup,
    QueryContext,
    hydrate,
    make_context,
    order_by_spec,
    resolve_vector,
)
from qcluster.collection.query.formula import formula_query
from qcluster.collection.query.fusion import DEFAULT_RRF_K, dbsf, mmr, rrf
from qcluster.collection.query.vectors import QueryVector
from qcluster.errors import BadInputError, BadRequestError
from qcluster.models.query import OrderByIn, PrefetchIn, QueryIn
from qcluster.shards.base import NO_PAYLOAD, ScrollRequest, SearchRequest, VectorSelector
from qcluster.types import PointId, parse_point_id

FUSE_ON_THREAD = 10_000  # prefetched points: more are fused on a thread
UNSUPPORTED = {
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
    root: bool = True,
) -> list[Hit]:
    """Run one query (or prefetch) against ``col``; ``lookup`` resolves other collections by
    name (``lookup_from``)."""
    if root:
        examples = referenced_ids(req, col.name)
        if examples:
            outer_filter = merge_filters(outer_filter, {"must_not": [{"has_id": examples}]})
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
        needs_vector=_needs_vector(req.query),
    )
    pre: list[list[Hit]] | None = None
    items = [] if req.prefetch is None else req.prefetch if isinstance(req.prefetch, list) else [req.prefetch]
    if items:
        pre = list(
            await asyncio.gather(*(run_query(col, p, lookup, outer_filter=flt, root=False) for p in items))
        )
    # after the prefetches, as Qdrant resolves every example before it checks the combination
    _check_combination(req)
    return await _dispatch(ctx, req.query, pre)


def _example_ids(query: Any) -> list[Any]:
    """Raw point ids among a query's examples (vectors and other shapes are skipped)."""
    if query is None or isinstance(query, list | float | bool):
        return []
    if not isinstance(query, Mapping):
        return [query]
    raws: list[Any] = []
    if "nearest" in query:
        raws.extend(_example_ids(query["nearest"]))
    spec = query.get("recommend")
    if isinstance(spec, Mapping):
        for key in ("positive", "negative"):
            items = spec.get(key)
            raws.extend(items if isinstance(items, list) else [])
    spec = query.get("discover")
    if isinstance(spec, Mapping):
        raws.append(spec.get("target"))
        raws.extend(_pair_examples(spec.get("context")))
    if "context" in query:
        raws.extend(_pair_examples(query["context"]))
    return [r for r in raws if isinstance(r, int | str) and not isinstance(r, bool)]


def _pair_examples(raw: Any) -> list[Any]:
    pairs = raw if isinstance(raw, list) else [raw]
    return [p.get(k) for p in pairs if isinstance(p, Mapping) for k in ("positive", "negative")]


def referenced_ids(req: PrefetchIn, collection: str) -> list[PointId]:
    """Point ids used as examples in ``req`` or any nested prefetch, looked up in ``collection``."""
    found: dict[PointId, None] = {}

    def walk(r: PrefetchIn) -> None:
        if r.lookup_from is None or r.lookup_from.collection == collection:
            for raw in _example_ids(r.query):
                with contextlib.suppress(BadInputError):  # reported by the query itself
                    found[parse_point_id(raw, "query")] = None
        subs = [] if r.prefetch is None else r.prefetch if isinstance(r.prefetch, list) else [r.prefetch]
        for sub in subs:
            walk(sub)

    walk(req)
    return list(found)


_NO_VECTOR_KINDS = ("fusion", "rrf", "order_by", "sample", "formula")


def _needs_vector(query: Any) -> bool:
    if query is None:
        return False
    return not (isinstance(query, Mapping) and any(k in query for k in _NO_VECTOR_KINDS))


def _check_combination(req: PrefetchIn) -> None:
    """Qdrant's rules on what a query may combine."""
    query = req.query
    if query is None:
        if req.prefetch is not None:
            raise BadRequestError(
                "A query is needed to merge the prefetches. Can't have prefetches without defining a query.",
                "query",
            )
        if req.score_threshold is not None:
            raise BadRequestError(
                "A query is needed to use the score_threshold. Can't have score_threshold without "
                "defining a query.",
                "score_threshold",
            )
        return
    if isinstance(query, Mapping):
        if "order_by" in query and req.score_threshold is not None:
            raise BadRequestError("Can't use score_threshold with an order_by query.", "score_threshold")
        if ("fusion" in query or "rrf" in query) and req.using is not None:
            raise BadRequestError("Fusion queries cannot be combined with the 'using' field.", "using")


def _ids(pre: Sequence[Sequence[Hit]]) -> list[PointId]:
    return list({h.id: None for hits in pre for h in hits})


async def _dispatch(ctx: QueryContext, query: Any, pre: list[list[Hit]] | None) -> list[Hit]:
    prefetched = None if pre is None else _ids(pre)
    if query is None:
        if pre is None:
            return await scroll_hits(ctx, None)
        merged = {h.id: h.score for hits in pre for h in hits}
        return await hydrate(ctx, list(merged.items())[ctx.offset : ctx.offset + ctx.limit])
    if isinstance(query, Mapping) and "indices" not in query:
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
        if "relevance_feedback" in query:
            return await feedback.relevance_feedback(ctx, query["relevance_feedback"], prefetched)
        if "order_by" in query:
            return await _order_by(ctx, query["order_by"], prefetched)
        if "fusion" in query or "rrf" in query:
            return await _fusion(ctx, query, pre)
        if "sample" in query:
            return await _sample(ctx, query["sample"], prefetched)
        if "formula" in query:
            return await formula_query(ctx, query, pre)
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
    ctx: QueryContext, vec: QueryVector, raw: Any, prefetched: list[PointId] | None, exclude: set[PointId]
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
    recs = [r for r in recs if r.vector and ctx.using in r.vector and r.id in scores]
    if not recs:
        return []
    stored = ctx.stored([r.vector[ctx.using] for r in recs if r.vector])

    def pick() -> list[int]:
        return mmr(stored.sims(vec), stored.sims_to, float(diversity), wanted)

    order = await asyncio.to_thread(pick) if len(stored) > 256 else pick()
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
    """Random points; ``offset`` is ignored without prefetch (the output is not stable anyway)
    and skips that many of the drawn points over prefetched ones, as Qdrant does."""
    if raw != "random":
        raise BadInputError(f"query.sample: unknown variant {raw!r}, expected `random`", "query.sample")
    offset = ctx.offset
    if prefetched is None:
        res = await ctx.col.scroll(ScrollRequest(limit=2**62, filter=ctx.filter, with_payload=NO_PAYLOAD))
        pool = [r.id for r in res.points]
        offset = 0
    else:
        pool = prefetched
    picked = random.sample(pool, min(offset + ctx.limit, len(pool)))[offset:]
    return await hydrate(ctx, [(p, 0.0) for p in picked])
