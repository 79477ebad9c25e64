"""What every query kind needs: the resolved request fields (``QueryContext``), search parameters,
order-by specs, the query's result type (``Hit``), and example resolution (an inline vector or the
stored vector of a point id, possibly from another collection via ``lookup_from``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from qcluster.collection.collection import Collection
from qcluster.collection.query.vectors import Kind, QueryVector, Stored, check_stored, parse_inline
from qcluster.errors import BadInputError, NotFoundError
from qcluster.models.config import Distance
from qcluster.models.query import LookupLocationIn, OrderByIn, SearchParamsIn
from qcluster.shards.base import (
    NO_PAYLOAD,
    AnyVector,
    OrderBy,
    PayloadSelector,
    QuantizationSearchParams,
    ScoredPoint,
    SearchParams,
    VectorSelector,
)
from qcluster.shards.distance import higher_is_better
from qcluster.types import DEFAULT_VECTOR, PointId, parse_point_id

F32 = npt.NDArray[np.float32]
Lookup = Callable[[str], Collection]


@dataclass(slots=True)
class Hit:
    """One query result (Qdrant's ScoredPoint, with ``order_value`` for order-by queries)."""

    id: PointId
    score: float
    version: int = 0
    payload: dict[str, Any] | None = None
    vector: dict[str, AnyVector] | None = None
    order_value: int | float | None = None

    @classmethod
    def of(cls, p: ScoredPoint) -> Hit:
        return cls(p.id, p.score, p.version, p.payload, p.vector)


@dataclass(slots=True)
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
    lookup: Lookup
    source: Collection  # where example point ids are looked up
    source_vector: str
    exclude_examples: bool = field(default=True)

    @property
    def kind(self) -> Kind:
        return vector_kind(self.col, self.using)

    @property
    def distance(self) -> Distance:
        return self.col.config.distance_of(self.using)

    @property
    def dim(self) -> int:
        params = self.col.config.params.vectors.get(self.using)
        return 0 if params is None else params.size

    @property
    def higher_better(self) -> bool:
        """Scores of this query: larger is better (similarities, sparse dot products) or smaller
        (Euclid / Manhattan distances, also as multivector scores report them)."""
        return self.kind == "sparse" or higher_is_better(self.distance)

    def stored(self, values: list[QueryVector]) -> Stored:
        return Stored.of(self.kind, self.distance, values)

    def passes(self, score: float) -> bool:
        """``score_threshold``: similarities at least it, distances at most it."""
        if self.score_threshold is None:
            return True
        if self.higher_better:
            return score >= self.score_threshold
        return score <= self.score_threshold


def vector_kind(col: Collection, name: str) -> Kind:
    params = col.config.params.vectors.get(name)
    if params is None:
        return "sparse"
    return "multi" if params.multi else "dense"


def has_vector(col: Collection, name: str) -> bool:
    return name in col.config.params.vectors or name in (col.config.params.sparse_vectors or {})


def search_params(raw: SearchParamsIn | None) -> SearchParams:
    if raw is None:
        return SearchParams()
    q = raw.quantization
    quant = None
    if q is not None:
        quant = QuantizationSearchParams(ignore=q.ignore, rescore=q.rescore, oversampling=q.oversampling)
    corpus = raw.idf.corpus if raw.idf is not None and not isinstance(raw.idf, str) else None
    return SearchParams(
        hnsw_ef=raw.hnsw_ef,
        exact=raw.exact,
        quantization=quant,
        indexed_only=raw.indexed_only,
        idf_corpus=corpus,
    )


def datetime_micros(text: str, field: str) -> int:
    """UTC microseconds since the epoch for an RFC 3339 / ISO 8601 datetime string."""
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadInputError(
            f"{field}: expected a number or an RFC 3339 datetime, got {text!r}", field
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return int(parsed.timestamp() * 1_000_000)


def order_by_spec(spec: str | OrderByIn, field: str) -> OrderBy:
    if isinstance(spec, str):
        return OrderBy(spec)
    start = spec.start_from
    if isinstance(start, str):
        start = datetime_micros(start, f"{field}.start_from")
    return OrderBy(spec.key, spec.direction or "asc", start)


def make_context(
    col: Collection,
    lookup: Lookup,
    *,
    using: str | None,
    filter: Mapping[str, Any] | None,
    params: SearchParamsIn | None,
    score_threshold: float | None,
    limit: int | None,
    offset: int | None,
    with_payload: Any,
    with_vector: Any,
    lookup_from: LookupLocationIn | None,
    default_payload: Any = False,
    needs_vector: bool = True,
) -> QueryContext:
    """The resolved request; ``using`` is checked only when the query reads vectors (fusion,
    order_by, sample and plain listings do not)."""
    name = using or DEFAULT_VECTOR
    if needs_vector and not has_vector(col, name):
        raise BadInputError(f"Not existing vector name error: {name}", "using")
    source, source_vector = col, name
    if lookup_from is not None and needs_vector:
        try:
            source = lookup(lookup_from.collection)
        except NotFoundError:
            raise NotFoundError(f"Collection {lookup_from.collection} not found") from None
        source_vector = lookup_from.vector or name
        # an unknown name is reported once the example points are found (a missing point is a 404 first)
        if has_vector(source, source_vector):
            _check_lookup_kind(col, name, source, source_vector, lookup_from.collection)
    with_vector_sel = VectorSelector.parse(with_vector)
    for vname in with_vector_sel.names or ():
        if not has_vector(col, vname):
            raise BadInputError(f"Not existing vector name error: {vname}", "with_vector")
    return QueryContext(
        col=col,
        using=name,
        filter=filter,
        params=search_params(params),
        score_threshold=score_threshold,
        limit=10 if limit is None else limit,
        offset=offset or 0,
        with_payload=PayloadSelector.parse(default_payload if with_payload is None else with_payload),
        with_vector=with_vector_sel,
        lookup=lookup,
        source=source,
        source_vector=source_vector,
        exclude_examples=source is col,
    )


def _check_lookup_kind(
    col: Collection, name: str, source: Collection, source_vector: str, where: str
) -> None:
    """The looked-up vector must be of the queried vector's kind and size."""
    kind, source_kind = vector_kind(col, name), vector_kind(source, source_vector)
    own = col.config.params.vectors.get(name)
    other = source.config.params.vectors.get(source_vector)
    if kind != source_kind or (own is not None and other is not None and own.size != other.size):
        expected = own.size if own is not None else 0
        got = other.size if other is not None else 0
        raise BadInputError(
            f"Vector dimension error: expected dim: {expected}, got {got} (lookup_from {where})",
            "lookup_from",
        )


# ---------------------------------------------------------------------------------- examples
async def resolve_vectors(
    ctx: QueryContext, items: Sequence[tuple[Any, str]]
) -> tuple[list[QueryVector], set[PointId]]:
    """Example vectors in order from ``(raw, field)`` pairs, and the point ids among the examples
    that are excluded from results (only those looked up in the queried collection). One
    retrieve serves every id."""
    found: list[QueryVector | None] = []
    ids: list[PointId] = []
    slots: list[tuple[int, PointId]] = []
    kind = ctx.kind
    for raw, where in items:
        if isinstance(raw, list | Mapping | np.ndarray):
            found.append(parse_inline(kind, ctx.dim, raw, where))
            continue
        pid = parse_point_id(raw, where)
        slots.append((len(found), pid))
        ids.append(pid)
        found.append(None)
    if ids:
        recs = await ctx.source.retrieve(ids, NO_PAYLOAD, VectorSelector(True, (ctx.source_vector,)))
        stored = {
            r.id: r.vector[ctx.source_vector] for r in recs if r.vector and ctx.source_vector in r.vector
        }
        known = {r.id for r in recs}
        for _, pid in slots:
            if pid not in known:
                raise NotFoundError(f"No point with id {pid} found")
        if not has_vector(ctx.source, ctx.source_vector):
            raise BadInputError(f"Not existing vector name error: {ctx.source_vector}", "lookup_from.vector")
        for slot, pid in slots:
            if pid not in stored:
                raise NotFoundError(f"No point with id {pid} found")
            found[slot] = check_stored(kind, stored[pid], f"point {pid}")
    vecs = [v for v in found if v is not None]
    return vecs, set(ids) if ctx.exclude_examples else set()


async def resolve_vector(ctx: QueryContext, raw: Any, field: str) -> tuple[QueryVector, PointId | None]:
    vecs, ids = await resolve_vectors(ctx, [(raw, field)])
    return vecs[0], next(iter(ids), None)


def indexed(raws: Sequence[Any] | None, field: str) -> list[tuple[Any, str]]:
    return [(raw, f"{field}[{i}]") for i, raw in enumerate(raws or ())]


async def hydrate(ctx: QueryContext, picked: Sequence[tuple[PointId, float]]) -> list[Hit]:
    """Hits for ``(id, score)`` pairs with the payload and vectors the query asked for."""
    if not picked:
        return []
    if not ctx.with_payload.enabled and not ctx.with_vector.enabled:
        return [Hit(pid, score) for pid, score in picked]
    recs = {
        r.id: r for r in await ctx.col.retrieve([p for p, _ in picked], ctx.with_payload, ctx.with_vector)
    }
    return [
        Hit(pid, score, payload=recs[pid].payload, vector=recs[pid].vector)
        for pid, score in picked
        if pid in recs
    ]
