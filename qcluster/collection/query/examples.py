"""Example-based queries: recommend (``average_vector``, ``best_score``, ``sum_scores``), discover
and context, with Qdrant's scoring formulas.

How results are found: Qdrant scores every visited point with the strategy's formula while it
walks the HNSW graph. qcluster instead

1. generates candidates with the shard's ANN search around seed vectors (the examples, and for
   the linear cases the combined direction ``sum(pos) - sum(neg)``), within the query's filter;
2. rescores every candidate exactly on its stored vector with the strategy's formula (one
   retrieve with vectors, then numpy), and keeps the best ``offset + limit``.

Over the candidates the ranking is Qdrant's; over the whole collection it is approximate, as
Qdrant's graph walk is too. ``average_vector`` needs no rescoring: it is one nearest search for
``avg(pos) + (avg(pos) - avg(neg))``. With ``prefetch``, the prefetched points are the candidates.
Example points are excluded from the results when they come from the queried collection.
Vectors of every kind work the same way (``vectors.py`` scores them); a nearest query over
prefetched points is an exact search restricted to those ids, so the shards score it as they
score any nearest query (IDF included).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from qcluster.collection.query.context import (
    Hit,
    QueryContext,
    hydrate,
    indexed,
    resolve_vectors,
)
from qcluster.collection.query.vectors import QueryVector, Stored, average, direction, pos_minus_neg
from qcluster.errors import BadInputError, UnprocessableInputError
from qcluster.shards.base import NO_PAYLOAD, SearchRequest, VectorSelector
from qcluster.types import PointId

Arr = npt.NDArray[Any]  # scores: float32 or float64
Scorer = Callable[[Stored], Arr]


def fast_sigmoid(x: Arr) -> Arr:
    out: Arr = x / (1.0 + np.abs(x))
    return out


def scaled_sigmoid(x: Arr) -> Arr:
    out: Arr = 0.5 * (fast_sigmoid(x) + 1.0)
    return out


async def nearest(ctx: QueryContext, vec: QueryVector, exclude: set[PointId]) -> list[Hit]:
    """One ANN search, skipping ``exclude``; ``offset`` applies after the exclusion."""
    req = SearchRequest(
        vector=vec,
        using=ctx.using,
        limit=ctx.offset + ctx.limit + len(exclude),
        filter=ctx.filter,
        score_threshold=ctx.score_threshold,
        params=ctx.params,
        with_payload=ctx.with_payload,
        with_vector=ctx.with_vector,
    )
    (hits,) = await ctx.col.search([req])
    kept = [Hit.of(h) for h in hits if h.id not in exclude]
    return kept[ctx.offset : ctx.offset + ctx.limit]


async def candidates(ctx: QueryContext, seeds: Sequence[QueryVector], exclude: set[PointId]) -> list[PointId]:
    """Ids found by ANN searches around ``seeds`` (within the filter), first-seen order."""
    k = max(ctx.offset + ctx.limit, 1) * 4 + len(exclude) + 16
    reqs = [
        SearchRequest(vector=v, using=ctx.using, limit=k, filter=ctx.filter, params=ctx.params) for v in seeds
    ]
    found: dict[PointId, None] = {}
    for hits in await ctx.col.search(reqs):
        for h in hits:
            if h.id not in exclude:
                found.setdefault(h.id, None)
    return list(found)


async def rescore(ctx: QueryContext, ids: Sequence[PointId], scorer: Scorer) -> list[Hit]:
    """Score ``ids`` exactly on their stored vectors; ``scorer`` returns larger-is-better scores.
    Then threshold, offset, limit."""
    if not ids:
        return []
    found = await ctx.col.retrieve(ids, NO_PAYLOAD, VectorSelector(True, (ctx.using,)))
    recs = [r for r in found if r.vector and ctx.using in r.vector]
    if not recs:
        return []

    def pick() -> list[tuple[PointId, float]]:
        stored = ctx.stored([r.vector[ctx.using] for r in recs if r.vector])
        scores = np.asarray(scorer(stored), dtype=np.float64)
        order = np.argsort(-scores, kind="stable")
        picked: list[tuple[PointId, float]] = []
        for i in order:
            score = float(scores[i])
            if ctx.score_threshold is not None and score < ctx.score_threshold:
                continue
            picked.append((recs[int(i)].id, score))
            if len(picked) >= ctx.offset + ctx.limit:
                break
        return picked

    # big candidate sets are scored and ranked off the event loop (numpy releases the GIL)
    picked = await asyncio.to_thread(pick) if len(recs) > 2048 else pick()
    return await hydrate(ctx, picked[ctx.offset :])


def _stack_sims(stored: Stored, vecs: Sequence[QueryVector]) -> Arr:
    return np.stack([stored.sims(v) for v in vecs]) if vecs else np.zeros((0, len(stored)))


# ---------------------------------------------------------------------------------- recommend
async def recommend(ctx: QueryContext, raw: Any, prefetched: list[PointId] | None) -> list[Hit]:
    if not isinstance(raw, Mapping):
        raise BadInputError("recommend: expected {positive, negative, strategy}", "query.recommend")
    pos_raw, neg_raw = raw.get("positive") or [], raw.get("negative") or []
    if not isinstance(pos_raw, list) or not isinstance(neg_raw, list):
        raise BadInputError("recommend: positive and negative must be lists of examples", "query.recommend")
    strategy = raw.get("strategy") or "average_vector"
    if strategy not in ("average_vector", "best_score", "sum_scores"):
        raise BadInputError(
            f"recommend.strategy: unknown variant `{strategy}`, expected one of `average_vector`, "
            "`best_score`, `sum_scores`",
            "query.recommend.strategy",
        )
    vecs, exclude = await resolve_vectors(
        ctx, indexed(pos_raw, "recommend.positive") + indexed(neg_raw, "recommend.negative")
    )
    pos, neg = vecs[: len(pos_raw)], vecs[len(pos_raw) :]
    if strategy == "average_vector":
        if not pos:
            raise UnprocessableInputError(
                "[query.recommend.positive: Positive vectors should not be empty with `average` strategy]",
                "query.recommend.positive",
            )
        kind = ctx.kind
        target = average(kind, pos)
        if neg:
            target = pos_minus_neg(kind, target, average(kind, neg))
        if prefetched is not None:
            return await _rescore_nearest(ctx, prefetched, target)
        return await nearest(ctx, target, exclude)
    if not pos and not neg:
        raise UnprocessableInputError(
            "[query.recommend: At least one positive or negative example is required]", "query.recommend"
        )

    def best_score(stored: Stored) -> Arr:
        # the closest example decides: sigmoid(its similarity), negated when it is a negative
        if not neg:
            return scaled_sigmoid(_stack_sims(stored, pos).max(axis=0))
        best_n = _stack_sims(stored, neg).max(axis=0)
        if not pos:
            return -scaled_sigmoid(best_n)
        best_p = _stack_sims(stored, pos).max(axis=0)
        out: Arr = np.where(best_p > best_n, scaled_sigmoid(best_p), -scaled_sigmoid(best_n))
        return out

    def sum_scores(stored: Stored) -> Arr:
        out: Arr = _stack_sims(stored, pos).sum(axis=0) - _stack_sims(stored, neg).sum(axis=0)
        return out

    if prefetched is not None:
        ids = [p for p in prefetched if p not in exclude]
    else:
        ids = await candidates(ctx, _recommend_seeds(ctx, pos, neg), exclude)
    return await rescore(ctx, ids, best_score if strategy == "best_score" else sum_scores)


def _recommend_seeds(ctx: QueryContext, pos: list[QueryVector], neg: list[QueryVector]) -> list[QueryVector]:
    """Where good candidates lie: around each positive; and, where a point's summed similarity
    is linear in its vector (dense Cosine / Dot, sparse), along ``sum(pos) - sum(neg)``."""
    seeds = list(pos)
    toward = direction(ctx.kind, ctx.distance, pos, neg)
    if toward is not None:
        seeds.append(toward)
    return seeds or list(neg)


async def _rescore_nearest(ctx: QueryContext, ids: list[PointId], vec: QueryVector) -> list[Hit]:
    """A nearest query restricted to ``ids`` (and the query's filter), scored exactly by the
    shards: the same scores (and versions) as the query without prefetch, IDF included."""
    if not ids:
        return []
    flt: dict[str, Any] = {"must": [{"has_id": list(ids)}]}
    if ctx.filter is not None:
        flt["must"].append(ctx.filter)
    req = SearchRequest(
        vector=vec,
        using=ctx.using,
        limit=ctx.offset + ctx.limit,
        filter=flt,
        score_threshold=ctx.score_threshold,
        params=dataclasses.replace(ctx.params, exact=True),
        with_payload=ctx.with_payload,
        with_vector=ctx.with_vector,
    )
    (hits,) = await ctx.col.search([req])
    return [Hit.of(h) for h in hits][ctx.offset :]


# ---------------------------------------------------------------------------------- discover / context
def _pair_items(raw: Any, field: str) -> list[tuple[Any, str]]:
    pairs = raw if isinstance(raw, list) else ([] if raw is None else [raw])
    items: list[tuple[Any, str]] = []
    for i, pair in enumerate(pairs):
        if not isinstance(pair, Mapping) or "positive" not in pair or "negative" not in pair:
            raise BadInputError(f"{field}[{i}]: expected {{positive, negative}}", f"{field}[{i}]")
        items.append((pair["positive"], f"{field}[{i}].positive"))
        items.append((pair["negative"], f"{field}[{i}].negative"))
    return items


async def discover(ctx: QueryContext, raw: Any, prefetched: list[PointId] | None) -> list[Hit]:
    """Score = (number of pairs whose positive is closer than its negative, minus the others)
    + a sigmoid of the similarity to the target: context first, then closeness to the target."""
    if not isinstance(raw, Mapping) or "target" not in raw:
        raise BadInputError("discover: expected {target, context}", "query.discover")
    items = [(raw["target"], "discover.target"), *_pair_items(raw.get("context"), "discover.context")]
    vecs, exclude = await resolve_vectors(ctx, items)
    target, flat = vecs[0], vecs[1:]
    pairs = list(zip(flat[0::2], flat[1::2], strict=True))

    def score(stored: Stored) -> Arr:
        rank = np.zeros(len(stored))
        for p, n in pairs:
            rank += np.where(stored.sims(p) > stored.sims(n), 1.0, -1.0)
        out: Arr = rank + scaled_sigmoid(stored.sims(target))
        return out

    if prefetched is not None:
        ids = [p for p in prefetched if p not in exclude]
    else:
        ids = await candidates(ctx, [target, *(p for p, _ in pairs)], exclude)
    return await rescore(ctx, ids, score)


async def context_search(ctx: QueryContext, raw: Any, prefetched: list[PointId] | None) -> list[Hit]:
    """Score = sum over pairs of ``fast_sigmoid(min(sim(pos) - sim(neg) - eps, 0))``: 0 inside
    the zone closer to every positive, negative and smoothly lower outside it."""
    items = _pair_items(raw, "context")
    if not items:
        raise BadInputError("context: at least one {positive, negative} pair is required", "query.context")
    vecs, exclude = await resolve_vectors(ctx, items)
    pairs = list(zip(vecs[0::2], vecs[1::2], strict=True))
    eps = float(np.finfo(np.float32).eps)

    def score(stored: Stored) -> Arr:
        loss = np.zeros(len(stored))
        for p, n in pairs:
            diff = stored.sims(p) - stored.sims(n) - eps
            loss += fast_sigmoid(np.minimum(diff, 0.0))
        out: Arr = loss
        return out

    if prefetched is not None:
        ids = [p for p in prefetched if p not in exclude]
    else:
        ids = await candidates(ctx, [p for p, _ in pairs], exclude)
    return await rescore(ctx, ids, score)


async def nearest_over(ctx: QueryContext, ids: list[PointId], vec: QueryVector) -> list[Hit]:
    """A nearest query over prefetched candidates: exact scores on ``using``."""
    return await _rescore_nearest(ctx, ids, vec)
