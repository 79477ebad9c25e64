"""Queries shared by the REST and gRPC surfaces: the universal query (single, batch, groups) and the
legacy search / recommend / discover requests, translated into the universal query.

Each takes the request's ``service.limits`` (``bounds``): a batch of more than
``max_batch_queries`` searches, or a read whose estimated result memory is above
``max_response_mb``, is refused (400 naming the field and the bound) before anything runs."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from qcluster.collection import Collection
from qcluster.collection.query import Group, Hit, Lookup, run_groups, run_query
from qcluster.collection.query.budget import Want, check_budget, groups_wants, query_wants
from qcluster.collection.query.groups import MAX_CANDIDATES
from qcluster.collection.query.matrix import Matrix, search_matrix
from qcluster.collection.read_scope import with_shard_keys
from qcluster.collection.strict import StrictMode, check_query, conditions
from qcluster.errors import FormatError, NotFoundError
from qcluster.models.bounds import refuse_above
from qcluster.models.query import (
    DiscoverIn,
    QueryIn,
    RecommendGroupsIn,
    RecommendIn,
    SearchGroupsIn,
    SearchIn,
    SearchMatrixIn,
    WithLookupIn,
)
from qcluster.settings import LimitsSettings
from qcluster.shards.batching import batch_scope
from qcluster.types import DEFAULT_VECTOR

Timeout = str | float | None  # a request's timeout (seconds): ``?timeout=`` or gRPC's field


async def check_strict(
    col: Collection,
    reqs: Sequence[QueryIn],
    timeout: Timeout = None,
    *,
    batch: bool = False,
    group: tuple[str, int | None, int | None] | None = None,
) -> None:
    """The collection's strict-mode limits on these queries, and their read cost."""
    sm = StrictMode(col)
    if not sm.on:
        return
    sm.timeout(timeout)
    if batch:
        sm.search_batch(len(reqs))
    cost = 0
    for q in reqs:
        if group is not None:
            group_by, group_size, limit = group
            await sm.group_by(group_by)
            sm.query_limit((limit or 10) * (group_size or 3))
            cost += await check_query(sm, q.model_copy(update={"limit": None}))
        else:
            cost += await check_query(sm, q)
    sm.read_cost(cost)


async def query(
    col: Collection, req: QueryIn, lookup: Lookup, bounds: LimitsSettings, timeout: Timeout = None
) -> list[Hit]:
    await check_strict(col, [req], timeout)
    await check_budget(col, query_wants(col, req, ""), bounds)
    return await _run(col, req, lookup)


async def _run(col: Collection, req: QueryIn, lookup: Lookup) -> list[Hit]:
    return await with_shard_keys(req.shard_key, run_query(col, req, lookup))


async def query_batch(
    col: Collection,
    reqs: Sequence[QueryIn],
    lookup: Lookup,
    bounds: LimitsSettings,
    timeout: Timeout = None,
) -> list[list[Hit]]:
    refuse_above("searches", "number of queries", len(reqs), "max_batch_queries", bounds)
    await check_strict(col, reqs, timeout, batch=True)
    wants: list[Want] = []
    for i, q in enumerate(reqs):
        wants += query_wants(col, q, f"searches[{i}].")
    await check_budget(col, wants, bounds)
    with batch_scope():  # one FAISS batch per segment (``shards/batching.py``)
        return list(await asyncio.gather(*(_run(col, q, lookup) for q in reqs)))


async def groups(
    col: Collection,
    req: QueryIn,
    lookup: Lookup,
    *,
    group_by: str,
    group_size: int | None,
    limit: int | None,
    with_lookup: str | WithLookupIn | None,
    bounds: LimitsSettings,
    timeout: Timeout = None,
) -> tuple[list[Group], Collection | None]:
    """The groups, and the collection their ``lookup`` records come from (None without one)."""
    lookup_col = None
    if with_lookup is not None:  # a missing lookup collection is refused before any search
        name = with_lookup if isinstance(with_lookup, str) else with_lookup.collection
        try:
            lookup_col = lookup(name)
        except NotFoundError:
            raise NotFoundError(f"Collection {name} not found") from None  # (Qdrant's wording)
    await check_strict(col, [req], timeout, group=(group_by, group_size, limit))
    await check_budget(col, groups_wants(col, req, group_size or 3, limit or 10, MAX_CANDIDATES), bounds)
    found = await with_shard_keys(
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
    return found, lookup_col


async def matrix(col: Collection, req: SearchMatrixIn, timeout: Timeout = None) -> Matrix:
    """The distance matrix of a sample of points (``collection/query/matrix.py``)."""
    sm = StrictMode(col)
    if sm.on:
        sm.timeout(timeout)
        sm.query_limit((req.sample or 10) * (req.limit or 3))
        await sm.filter(req.filter, write=False)
        sm.read_cost(1 + len(conditions(req.filter)))
    return await search_matrix(col, flt=req.filter, sample=req.sample, limit=req.limit, using=req.using)


# ------------------------------------------------------------------------------ legacy requests
def _named_vector(raw: Any) -> tuple[Any, str | None]:
    """Legacy ``vector``: a vector, or ``{"name", "vector"}`` (a named dense or sparse vector)."""
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
    # Without a target the legacy discover request is a context search.
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
