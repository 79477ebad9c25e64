"""The universal query API (``/points/query``) on top of a collection's search/scroll/retrieve.

- nearest (a vector or a point id): ANN search;
- recommend ``average_vector``: one search for ``avg(pos) + (avg(pos) - avg(neg))``;
- recommend ``best_score`` / ``sum_scores``, ``discover``, ``context``: candidate generation with
  ANN searches around the examples, then exact rescoring of the candidates on their stored
  vectors with the strategy's formula (Qdrant walks the graph with that formula; this gives the
  same ranking over the candidates, approximately over the whole collection);
- ``prefetch`` + a vector query: exact rescoring of the prefetched candidates;
- ``fusion`` rrf / dbsf over prefetches; ``order_by``; ``sample: random``.
Example points are excluded from recommend / discover results, as in Qdrant.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from qcluster.collection.collection import Collection
from qcluster.errors import BadInputError, NotFoundError, UnprocessableInputError
from qcluster.models.config import Distance
from qcluster.shards.base import (
    NO_PAYLOAD,
    OrderBy,
    PayloadSelector,
    QuantizationSearchParams,
    ScoredPoint,
    ScrollRequest,
    SearchParams,
    SearchRequest,
    VectorSelector,
)
from qcluster.shards.distance import higher_is_better, preprocess, score_matrix
from qcluster.types import DEFAULT_VECTOR, PointId, parse_point_id

F32 = Any  # numpy float arrays; kept loose here, the shard layer is strictly typed


def search_params(raw: Any) -> SearchParams:
    if raw is None:
        return SearchParams()
    if not isinstance(raw, Mapping):
        raise UnprocessableInputError("params: expected an object", "params")
    q = raw.get("quantization")
    quant = None
    if isinstance(q, Mapping):
        quant = QuantizationSearchParams(
            ignore=bool(q.get("ignore", False)), rescore=q.get("rescore"), oversampling=q.get("oversampling")
        )
    ef = raw.get("hnsw_ef")
    if ef is not None and (not isinstance(ef, int) or ef < 0):
        raise UnprocessableInputError("params.hnsw_ef: expected a non-negative integer", "params.hnsw_ef")
    return SearchParams(
        hnsw_ef=ef,
        exact=bool(raw.get("exact", False)),
        quantization=quant,
        indexed_only=bool(raw.get("indexed_only", False)),
    )


def order_by_spec(spec: Mapping[str, Any], field: str) -> OrderBy:
    direction = spec.get("direction") or "asc"
    if direction not in ("asc", "desc"):
        raise UnprocessableInputError(f"{field}.direction: expected asc or desc", f"{field}.direction")
    start = spec.get("start_from")
    if start is not None and (isinstance(start, bool) or not isinstance(start, int | float)):
        raise UnprocessableInputError(f"{field}.start_from: expected a number", f"{field}.start_from")
    return OrderBy(spec["key"], "desc" if direction == "desc" else "asc", start)


def _limit(raw: Mapping[str, Any], name: str, default: int) -> int:
    value = raw.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UnprocessableInputError(
            f"{name}: value {value!r} invalid, must be a non-negative integer", name
        )
    return value


@dataclass
class QueryContext:
    col: Collection
    using: str
    filter: Mapping[str, Any] | None
    params: SearchParams
    score_threshold: float | None
    limit: int
    offset: int
    with_payload: PayloadSelector
    with_vector: VectorSelector

    @property
    def distance(self) -> Distance:
        return self.col.config.params.vectors[self.using].distance


def context_from(
    col: Collection, raw: Mapping[str, Any], *, default_payload: Any = False, default_limit: int = 10
) -> QueryContext:
    using = raw.get("using") or DEFAULT_VECTOR
    if not isinstance(using, str) or using not in col.config.params.vectors:
        raise BadInputError(f"Not existing vector name error: {using}", "using")
    flt = raw.get("filter")
    if flt is not None and not isinstance(flt, Mapping):
        raise UnprocessableInputError("filter: expected an object", "filter")
    thr = raw.get("score_threshold")
    if thr is not None and not isinstance(thr, int | float):
        raise UnprocessableInputError("score_threshold: expected a number", "score_threshold")
    return QueryContext(
        col=col,
        using=using,
        filter=flt,
        params=search_params(raw.get("params")),
        score_threshold=None if thr is None else float(thr),
        limit=_limit(raw, "limit", default_limit),
        offset=_limit(raw, "offset", 0),
        with_payload=PayloadSelector.parse(raw.get("with_payload", default_payload)),
        with_vector=VectorSelector.parse(raw.get("with_vector", raw.get("with_vectors", False))),
    )


# ---------------------------------------------------------------------------------- vectors
async def resolve_vector(ctx: QueryContext, raw: Any, field: str) -> tuple[F32, PointId | None]:
    """A query vector given inline, or the stored vector of a point id."""
    if isinstance(raw, list):
        if raw and isinstance(raw[0], list):
            raise BadInputError(f"{field}: multivectors are not supported by qcluster yet", field)
        try:
            vec = np.asarray(raw, dtype=np.float32)
        except (TypeError, ValueError):
            raise UnprocessableInputError(f"{field}: expected a list of numbers", field) from None
        dim = ctx.col.config.params.vectors[ctx.using].size
        if vec.ndim != 1 or len(vec) != dim:
            raise BadInputError(f"Vector dimension error: expected dim: {dim}, got {vec.size}", field)
        return vec, None
    if isinstance(raw, Mapping) and "indices" in raw:
        raise BadInputError(f"{field}: sparse vectors are not supported by qcluster yet", field)
    pid = parse_point_id(raw, field)
    recs = await ctx.col.retrieve([pid], NO_PAYLOAD, VectorSelector(True, (ctx.using,)))
    if not recs or not recs[0].vector or ctx.using not in recs[0].vector:
        raise NotFoundError(f"No point with id {pid} found")
    return recs[0].vector[ctx.using], pid


# ---------------------------------------------------------------------------------- execution
async def _nearest(ctx: QueryContext, vec: F32, exclude: set[PointId], extra: int = 0) -> list[ScoredPoint]:
    req = SearchRequest(
        vector=vec,
        using=ctx.using,
        limit=ctx.limit + len(exclude) + extra,
        offset=ctx.offset,
        filter=ctx.filter,
        score_threshold=ctx.score_threshold,
        params=ctx.params,
        with_payload=ctx.with_payload,
        with_vector=ctx.with_vector,
    )
    (hits,) = await ctx.col.search([req])
    return [h for h in hits if h.id not in exclude][: ctx.limit]


async def _candidates(ctx: QueryContext, examples: list[F32], exclude: set[PointId]) -> list[ScoredPoint]:
    k = max(ctx.limit + ctx.offset, 1) * 4 + len(exclude)
    reqs = [
        SearchRequest(vector=v, using=ctx.using, limit=k, filter=ctx.filter, params=ctx.params)
        for v in examples
    ]
    found: dict[PointId, ScoredPoint] = {}
    for hits in await ctx.col.search(reqs):
        for h in hits:
            if h.id not in exclude:
                found.setdefault(h.id, h)
    return list(found.values())


async def _rescore(
    ctx: QueryContext, ids: list[PointId], scorer: Any, flip: bool = False
) -> list[ScoredPoint]:
    """Exact scores (larger is better) for ``ids`` by ``scorer(vectors)``, best first, then
    threshold / offset / limit. ``flip``: the scorer returned negated distances; report distances."""
    if not ids:
        return []
    recs = await ctx.col.retrieve(ids, NO_PAYLOAD, VectorSelector(True, (ctx.using,)))
    recs = [r for r in recs if r.vector and ctx.using in r.vector]
    if not recs:
        return []
    mat = np.stack([r.vector[ctx.using] for r in recs])  # type: ignore[index]
    scores = np.asarray(scorer(mat), dtype=np.float64)
    order = np.argsort(-scores, kind="stable")
    picked: list[tuple[PointId, float]] = []
    for i in order:
        s = -float(scores[i]) if flip else float(scores[i])
        if ctx.score_threshold is not None and (s > ctx.score_threshold if flip else s < ctx.score_threshold):
            continue
        picked.append((recs[int(i)].id, s))
    picked = picked[ctx.offset : ctx.offset + ctx.limit]
    return await _hydrate(ctx, picked)


async def _hydrate(ctx: QueryContext, picked: list[tuple[PointId, float]]) -> list[ScoredPoint]:
    if not picked:
        return []
    recs = {
        r.id: r for r in await ctx.col.retrieve([p for p, _ in picked], ctx.with_payload, ctx.with_vector)
    }
    return [
        ScoredPoint(
            id=pid,
            version=0,
            score=score,
            payload=recs[pid].payload if pid in recs else None,
            vector=recs[pid].vector if pid in recs else None,
        )
        for pid, score in picked
        if pid in recs
    ]


def _sim(ctx: QueryContext, mat: F32, vec: F32) -> F32:
    """Similarity where larger is better (distances negated)."""
    distance: Distance = ctx.col.config.params.vectors[ctx.using].distance
    q = preprocess(vec.reshape(1, -1), distance)
    s = score_matrix(q, mat, distance)[0]
    return s if higher_is_better(distance) else -s


async def _examples(ctx: QueryContext, raw: Any, field: str) -> tuple[list[F32], set[PointId]]:
    if raw is None:
        return [], set()
    if not isinstance(raw, list):
        raise UnprocessableInputError(f"{field}: expected a list of point ids or vectors", field)
    vecs, ids = [], set()
    for i, item in enumerate(raw):
        vec, pid = await resolve_vector(ctx, item, f"{field}[{i}]")
        vecs.append(vec)
        if pid is not None:
            ids.add(pid)
    return vecs, ids


async def recommend(ctx: QueryContext, raw: Mapping[str, Any]) -> list[ScoredPoint]:
    pos, pos_ids = await _examples(ctx, raw.get("positive"), "recommend.positive")
    neg, neg_ids = await _examples(ctx, raw.get("negative"), "recommend.negative")
    exclude = pos_ids | neg_ids
    strategy = raw.get("strategy") or "average_vector"
    if not pos and strategy == "average_vector":
        raise BadInputError(
            "At least one positive vector ID required with this strategy", "recommend.positive"
        )
    if strategy == "average_vector":
        p = preprocess(np.stack(pos), ctx.distance).mean(axis=0)
        target = p if not neg else p + (p - preprocess(np.stack(neg), ctx.distance).mean(axis=0))
        return await _nearest(ctx, target.astype(np.float32), exclude)
    if strategy not in ("best_score", "sum_scores"):
        raise UnprocessableInputError(
            f"recommend.strategy: unknown strategy {strategy!r}", "recommend.strategy"
        )
    cands = await _candidates(ctx, pos or neg, exclude)

    def score(mat: F32) -> F32:
        ps = np.stack([_sim(ctx, mat, v) for v in pos]) if pos else None
        ns = np.stack([_sim(ctx, mat, v) for v in neg]) if neg else None
        if strategy == "sum_scores":
            total = (ps.sum(axis=0) if ps is not None else 0) - (ns.sum(axis=0) if ns is not None else 0)
            return np.asarray(total)
        best_p = ps.max(axis=0) if ps is not None else np.full(len(mat), -np.inf)
        if ns is None:
            return best_p
        best_n = ns.max(axis=0)
        return np.where(best_p > best_n, best_p, -best_n)

    return await _rescore(ctx, [c.id for c in cands], score)


async def _pairs(ctx: QueryContext, raw: Any, field: str) -> tuple[list[tuple[F32, F32]], set[PointId]]:
    pairs, ids = [], set()
    for i, pair in enumerate(raw or []):
        if not isinstance(pair, Mapping):
            raise UnprocessableInputError(f"{field}[{i}]: expected {{positive, negative}}", field)
        p, pid = await resolve_vector(ctx, pair.get("positive"), f"{field}[{i}].positive")
        n, nid = await resolve_vector(ctx, pair.get("negative"), f"{field}[{i}].negative")
        pairs.append((p, n))
        ids |= {x for x in (pid, nid) if x is not None}
    return pairs, ids


async def discover(ctx: QueryContext, raw: Mapping[str, Any]) -> list[ScoredPoint]:
    target, tid = await resolve_vector(ctx, raw.get("target"), "discover.target")
    pairs, ids = await _pairs(ctx, raw.get("context"), "discover.context")
    exclude = ids | ({tid} if tid is not None else set())
    cands = await _candidates(ctx, [target], exclude)

    def score(mat: F32) -> F32:
        rank = np.zeros(len(mat))
        for p, n in pairs:
            sp, sn = _sim(ctx, mat, p), _sim(ctx, mat, n)
            rank += np.where(sp > sn, 1.0, -1.0)
        t = _sim(ctx, mat, target)
        return rank * 1e6 + np.tanh(t)  # rank first, then similarity to the target

    return await _rescore(ctx, [c.id for c in cands], score)


async def context_search(ctx: QueryContext, raw: Any) -> list[ScoredPoint]:
    pairs, ids = await _pairs(ctx, raw, "context")
    cands = await _candidates(ctx, [v for pair in pairs for v in pair], ids)

    def score(mat: F32) -> F32:
        loss = np.zeros(len(mat))
        for p, n in pairs:
            loss += np.minimum(_sim(ctx, mat, p) - _sim(ctx, mat, n) - 0.0, 0.0)
        return loss

    return await _rescore(ctx, [c.id for c in cands], score)


def _fuse(lists: list[list[ScoredPoint]], method: str) -> list[tuple[PointId, float]]:
    totals: dict[PointId, float] = {}
    for hits in lists:
        if method == "rrf":
            for rank, h in enumerate(hits):
                totals[h.id] = totals.get(h.id, 0.0) + 1.0 / (rank + 2)
        else:  # dbsf: normalise each list by mean +- 3 std, then sum
            if not hits:
                continue
            s = np.array([h.score for h in hits])
            mu, sd = s.mean(), s.std()
            lo, hi = mu - 3 * sd, mu + 3 * sd
            for h in hits:
                norm = 0.5 if hi == lo else (h.score - lo) / (hi - lo)
                totals[h.id] = totals.get(h.id, 0.0) + float(norm)
    return sorted(totals.items(), key=lambda kv: -kv[1])


async def _scroll_scored(ctx: QueryContext, order: OrderBy | None) -> list[ScoredPoint]:
    """Points in id order (or by ``order``) as scored points: score is the order value or 0."""
    res = await ctx.col.scroll(
        ScrollRequest(
            limit=ctx.limit + ctx.offset,
            filter=ctx.filter,
            with_payload=ctx.with_payload,
            with_vector=ctx.with_vector,
            order_by=order,
        )
    )
    return [
        ScoredPoint(id=r.id, version=0, score=float(r.order_value or 0), payload=r.payload, vector=r.vector)
        for r in res.points[ctx.offset :]
    ]


async def run_prefetch(col: Collection, raw: Any, outer: QueryContext) -> list[list[ScoredPoint]]:
    items = raw if isinstance(raw, list) else [raw]
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise UnprocessableInputError(f"prefetch[{i}]: expected an object", "prefetch")
        merged = dict(item)
        if outer.filter is not None:
            f = item.get("filter")
            merged["filter"] = outer.filter if f is None else {"must": [outer.filter, f]}
        out.append(await run_query(col, merged, default_payload=False))
    return out


async def run_query(
    col: Collection, raw: Mapping[str, Any], *, default_payload: Any = False
) -> list[ScoredPoint]:
    ctx = context_from(col, raw, default_payload=default_payload)
    query = raw.get("query")
    prefetch = raw.get("prefetch")
    pre = await run_prefetch(col, prefetch, ctx) if prefetch else None
    if isinstance(query, Mapping) and "fusion" in query:
        method = query["fusion"]
        if method not in ("rrf", "dbsf"):
            raise UnprocessableInputError(f"query.fusion: unknown method {method!r}", "query.fusion")
        fused = _fuse(pre or [], method)
        if ctx.score_threshold is not None:
            fused = [f for f in fused if f[1] >= ctx.score_threshold]
        return await _hydrate(ctx, fused[ctx.offset : ctx.offset + ctx.limit])
    if isinstance(query, Mapping) and "rrf" in query:
        fused = _fuse(pre or [], "rrf")
        return await _hydrate(ctx, fused[ctx.offset : ctx.offset + ctx.limit])
    if isinstance(query, Mapping) and "sample" in query:
        res = await col.scroll(ScrollRequest(limit=2**31, filter=ctx.filter, with_payload=NO_PAYLOAD))
        ids = [r.id for r in res.points]
        if pre is not None:
            ids = list({h.id: None for hits in pre for h in hits})
        picked = random.sample(ids, min(ctx.limit, len(ids)))
        return await _hydrate(ctx, [(p, 0.0) for p in picked])
    if isinstance(query, Mapping) and "order_by" in query:
        ob = query["order_by"]
        spec = {"key": ob} if isinstance(ob, str) else ob
        if not isinstance(spec, Mapping) or not isinstance(spec.get("key"), str):
            raise UnprocessableInputError(
                "query.order_by: expected a key or {key, direction}", "query.order_by"
            )
        order = order_by_spec(spec, "query.order_by")
        return await _scroll_scored(ctx, order)
    if query is None:
        if pre is not None:
            merged: dict[PointId, ScoredPoint] = {}
            for hits in pre:
                for h in hits:
                    merged.setdefault(h.id, h)
            return await _hydrate(
                ctx, [(h.id, h.score) for h in merged.values()][ctx.offset : ctx.offset + ctx.limit]
            )
        return await _scroll_scored(ctx, None)
    if isinstance(query, Mapping) and "recommend" in query:
        return await recommend(ctx, query["recommend"])
    if isinstance(query, Mapping) and "discover" in query:
        return await discover(ctx, query["discover"])
    if isinstance(query, Mapping) and "context" in query:
        return await context_search(ctx, query["context"])
    if isinstance(query, Mapping) and "nearest" in query:
        query = query["nearest"]
    if isinstance(query, Mapping):
        raise UnprocessableInputError(f"query: unsupported query kind {sorted(query)}", "query")
    vec, pid = await resolve_vector(ctx, query, "query")
    exclude = {pid} if pid is not None else set()
    if pre is not None:
        ids = list({h.id: None for hits in pre for h in hits})
        flip = not higher_is_better(ctx.distance)
        return await _rescore(ctx, ids, lambda mat: _sim(ctx, mat, vec), flip=flip)
    return await _nearest(ctx, vec, exclude)
