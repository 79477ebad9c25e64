"""REST request models of the read endpoints: query (and batch / groups), the legacy search /
recommend / discover endpoints, scroll, count, facet.

``query`` stays raw JSON (a vector, a point id, or one of the query kinds): the query engine
(``collection/query``) reads it, because its variants are told apart by shape, not by a tag.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BeforeValidator, Field, ValidationInfo, model_validator

from qcluster.models.bounds import bound_error, bounded_length, check_prefetch, limits_of, prefetch_shape
from qcluster.models.common import (
    FilterIn,
    Limit,
    PointIdIn,
    Req,
    Usize,
    one_or_many,
    tag,
    tagged,
    with_vector_field,
)

QUERIES = bounded_length("max_batch_queries", "number of queries")
EXAMPLES = bounded_length("max_points_per_request", "number of examples")


def _check_examples(value: Any, info: ValidationInfo) -> Any:
    """The example lists inside a raw ``query`` (recommend / discover / context), bounded like
    the id lists of other requests, before any of them is looked up."""
    if not isinstance(value, dict):
        return value
    bound = limits_of(info).max_points_per_request
    lists: list[Any] = []
    rec = value.get("recommend")
    if isinstance(rec, dict):
        lists += [rec.get("positive"), rec.get("negative")]
    disc = value.get("discover")
    if isinstance(disc, dict):
        lists.append(disc.get("context"))
    lists.append(value.get("context"))
    count = sum(len(x) for x in lists if isinstance(x, list))
    if count > bound:
        raise bound_error("number of examples", count, "max_points_per_request", bound)
    return value


QueryAny = Annotated[Any, BeforeValidator(_check_examples)]


class QuantizationParamsIn(Req):
    ignore: bool = False
    rescore: bool | None = None
    oversampling: Annotated[float, Field(ge=1.0)] | None = None


class IdfCorpusIn(Req):
    corpus: FilterIn


IdfIn = Annotated[
    Annotated[Literal["global"], tag("global")] | Annotated[IdfCorpusIn, tag("corpus")],
    tagged(lambda v: "global" if isinstance(v, str) else "corpus", '"global" or {corpus: filter}'),
]


class SearchParamsIn(Req):
    hnsw_ef: Limit | None = None
    exact: bool = False
    quantization: QuantizationParamsIn | None = None
    indexed_only: bool = False
    acorn: Any = None
    idf: IdfIn | None = None


class LookupLocationIn(Req):
    collection: str
    vector: str | None = None


class OrderByIn(Req):
    key: str
    direction: Literal["asc", "desc"] | None = None
    start_from: int | float | str | None = None


OrderByInterface = Annotated[
    Annotated[str, tag("key")] | Annotated[OrderByIn, tag("object")],
    tagged(lambda v: "key" if isinstance(v, str) else "object", "a payload key or {key, direction}"),
]


class PrefetchIn(Req):
    prefetch: PrefetchList | None = None
    query: QueryAny = None
    using: str | None = None
    filter: FilterIn | None = None
    params: SearchParamsIn | None = None
    score_threshold: float | None = None
    limit: Limit | None = None
    lookup_from: LookupLocationIn | None = None


PrefetchList = Annotated[
    Annotated[PrefetchIn, tag("one")] | Annotated[list[PrefetchIn], tag("many")],
    tagged(one_or_many, "a prefetch or a list of prefetches"),
]
PrefetchIn.model_rebuild()


class QueryIn(PrefetchIn):
    offset: Usize | None = None
    with_vector: Any = with_vector_field(None)
    with_payload: Any = None
    shard_key: Any = None  # a shard key or a list of keys (custom sharding)

    @model_validator(mode="before")
    @classmethod
    def _prefetch_bounds(cls, data: Any, info: ValidationInfo) -> Any:
        """The prefetch tree's depth and size, measured before pydantic recurses into it."""
        return check_prefetch(data, info)


class QueryBatchIn(Req):
    searches: Annotated[list[QueryIn], QUERIES]

    @model_validator(mode="before")
    @classmethod
    def _queries_with_prefetches(cls, data: Any, info: ValidationInfo) -> Any:
        """Every prefetch is a search too: the batch bound counts them."""
        limits = limits_of(info)
        bound = limits.max_batch_queries
        searches = data.get("searches") if isinstance(data, dict) else None
        if not isinstance(searches, list) or len(searches) > bound:
            return data  # the list's own bound reports it
        total = len(searches)
        for search in searches:
            total += prefetch_shape(search, limits.max_prefetch_depth, limits.max_prefetches)[1]
            if total > bound:
                raise bound_error(
                    "number of queries, prefetches included", total, "max_batch_queries", bound, walked=True
                )
        return data


class WithLookupIn(Req):
    collection: str
    with_payload: Any = None
    with_vectors: Any = Field(None, validation_alias=AliasChoices("with_vectors", "with_vector"))


WithLookupInterface = Annotated[
    Annotated[str, tag("name")] | Annotated[WithLookupIn, tag("object")],
    tagged(lambda v: "name" if isinstance(v, str) else "object", "a collection name or {collection, ...}"),
]


class GroupsIn(Req):
    group_by: str
    group_size: Limit | None = None
    limit: Limit | None = None
    with_lookup: WithLookupInterface | None = None


class QueryGroupsIn(QueryIn, GroupsIn):
    pass


# ------------------------------------------------------------------ legacy (1.18) endpoints
class _LegacyBase(Req):
    filter: FilterIn | None = None
    params: SearchParamsIn | None = None
    with_payload: Any = None
    with_vector: Any = with_vector_field(None)
    score_threshold: float | None = None
    shard_key: Any = None  # a shard key or a list of keys (custom sharding)


# ``top``: the legacy requests' older name for ``limit`` (Qdrant still reads it)
LIMIT_OR_TOP = Field(validation_alias=AliasChoices("limit", "top"))


class SearchIn(_LegacyBase):
    vector: Any
    limit: Limit = LIMIT_OR_TOP
    offset: Usize | None = None


class SearchBatchIn(Req):
    searches: Annotated[list[SearchIn], QUERIES]


class SearchGroupsIn(_LegacyBase):
    vector: Any
    group_by: str
    group_size: Limit
    limit: Limit
    with_lookup: WithLookupInterface | None = None


class _RecommendBase(_LegacyBase):
    positive: Annotated[list[Any], EXAMPLES] | None = None
    negative: Annotated[list[Any], EXAMPLES] | None = None
    strategy: Literal["average_vector", "best_score", "sum_scores"] | None = None
    using: str | None = None
    lookup_from: LookupLocationIn | None = None


class RecommendIn(_RecommendBase):
    limit: Limit = LIMIT_OR_TOP
    offset: Usize | None = None


class RecommendBatchIn(Req):
    searches: Annotated[list[RecommendIn], QUERIES]


class RecommendGroupsIn(_RecommendBase):
    group_by: str
    group_size: Limit
    limit: Limit
    with_lookup: WithLookupInterface | None = None


class ContextPairIn(Req):
    positive: Any
    negative: Any


class DiscoverIn(Req):
    target: Any = None
    context: Annotated[list[ContextPairIn], EXAMPLES] | None = None
    filter: FilterIn | None = None
    params: SearchParamsIn | None = None
    limit: Limit = LIMIT_OR_TOP
    offset: Usize | None = None
    with_payload: Any = None
    with_vector: Any = with_vector_field(None)
    using: str | None = None
    lookup_from: LookupLocationIn | None = None
    shard_key: Any = None  # a shard key or a list of keys (custom sharding)


class DiscoverBatchIn(Req):
    searches: Annotated[list[DiscoverIn], QUERIES]


class SearchMatrixIn(Req):
    shard_key: Any = None
    filter: FilterIn | None = None
    sample: Annotated[int, Field(ge=2)] | None = None
    limit: Limit | None = None
    using: str | None = None


# ------------------------------------------------------------------ scroll / count / facet / retrieve
class ScrollIn(Req):
    offset: PointIdIn | None = None
    limit: Limit | None = None
    filter: FilterIn | None = None
    with_payload: Any = None
    with_vector: Any = with_vector_field(False)
    order_by: OrderByInterface | None = None
    shard_key: Any = None  # a shard key or a list of keys (custom sharding)


class CountIn(Req):
    filter: FilterIn | None = None
    exact: bool = True
    shard_key: Any = None  # a shard key or a list of keys (custom sharding)


class FacetIn(Req):
    key: str
    limit: Limit | None = None
    filter: FilterIn | None = None
    exact: bool | None = None
    shard_key: Any = None  # a shard key or a list of keys (custom sharding)
