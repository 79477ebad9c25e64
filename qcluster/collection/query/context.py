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
from qcluster.errors import BadInputError, NotFoundError
from qcluster.models.config import Distance
from qcluster.models.query import LookupLocationIn, OrderByIn, SearchParamsIn
from qcluster.shards.base import (
    NO_PAYLOAD,
    OrderBy,
    PayloadSelector,
    QuantizationSearchParams,
    ScoredPoint,
    SearchParams,
    VectorSelector,
)
from qcluster.shards.distance import higher_is_better, preprocess, score_matrix
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
    vector: dict[str, F32] | None = None
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
    def distance(self) -> Distance:
        return self.col.config.params.vectors[self.using].distance

    @property
    def dim(self) -> int:
        return self.col.config.params.vectors[self.using].size

    def passes(self, score: float) -> bool:
        """``score_threshold``: similarities at least it, distances at most it."""
        if self.score_threshold is None:
            return True
        if higher_is_better(self.distance):
            return score >= self.score_threshold
        return score <= self.score_threshold


def search_params(raw: SearchParamsIn | None) -> SearchParams:
    if raw is None:
        return SearchParams()
    q = raw.quantization
    quant = None
    if q is not None:
        quant = QuantizationSearchParams(ignore=q.ignore, rescore=q.rescore, oversampling=q.oversampling)
    return SearchParams(
        hnsw_ef=raw.hnsw_ef, exact=raw.exact, quantization=quant, indexed_only=raw.indexed_only
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
) -> QueryContext:
    name = using or DEFAULT_VECTOR
    if name not in col.config.params.vectors:
        raise BadInputError(f"Not existing vector name error: {name}", "using")
    source, source_vector = col, name
    if lookup_from is not None:
        source = lookup(lookup_from.collection)
        source_vector = lookup_from.vector or name
        params_of = source.config.params.vectors.get(source_vector)
        if params_of is None:
            raise BadInputError(f"Not existing vector name error: {source_vector}", "lookup_from.vector")
        if params_of.size != col.config.params.vectors[name].size:
            raise BadInputError(
                f"Vector dimension error: expected dim: {col.config.params.vectors[name].size}, "
                f"got {params_of.size} (lookup_from {lookup_from.collection})",
                "lookup_from",
            )
    return QueryContext(
        col=col,
        using=name,
        filter=filter,
        params=search_params(params),
        score_threshold=score_threshold,
        limit=10 if limit is None else limit,
        offset=offset or 0,
        with_payload=PayloadSelector.parse(default_payload if with_payload is None else with_payload),
        with_vector=VectorSelector.parse(with_vector),
        lookup=lookup,
        source=source,
        source_vector=source_vector,
        exclude_examples=source is col,
    )


# ---------------------------------------------------------------------------------- examples
def _inline(ctx: QueryContext, raw: list[Any] | F32, field: str) -> F32:
    """An inline example: a JSON list (REST) or a float32 array (gRPC, decoded from packed floats)."""
    multi = raw.ndim == 2 if isinstance(raw, np.ndarray) else bool(raw) and isinstance(raw[0], list)
    if multi:
        raise BadInputError(f"{field}: multivectors are not supported by qcluster", field)
    try:
        vec = np.asarray(raw, dtype=np.float32)
    except (TypeError, ValueError):
        raise BadInputError(f"{field}: expected a list of numbers", field) from None
    if vec.ndim != 1 or len(vec) != ctx.dim:
        raise BadInputError(f"Vector dimension error: expected dim: {ctx.dim}, got {vec.size}", field)
    if not np.isfinite(vec).all():
        raise BadInputError(f"{field}: values must be finite numbers", field)
    return vec


async def resolve_vectors(
    ctx: QueryContext, items: Sequence[tuple[Any, str]]
) -> tuple[list[F32], set[PointId]]:
    """Example vectors in order from ``(raw, field)`` pairs, and the point ids among the examples
    that are excluded from results (only those looked up in the queried collection). One
    retrieve serves every id."""
    found: list[F32 | None] = []
    ids: list[PointId] = []
    slots: list[tuple[int, PointId]] = []
    for raw, where in items:
        if isinstance(raw, list | np.ndarray):
            found.append(_inline(ctx, raw, where))
            continue
        if isinstance(raw, Mapping):
            if "indices" in raw:
                raise BadInputError(f"{where}: sparse vectors are not supported by qcluster", where)
            raise BadInputError(
                f"{where}: inference objects (document, image, object) are not supported by qcluster", where
            )
        pid = parse_point_id(raw, where)
        slots.append((len(found), pid))
        ids.append(pid)
        found.append(None)
    if ids:
        recs = await ctx.source.retrieve(ids, NO_PAYLOAD, VectorSelector(True, (ctx.source_vector,)))
        stored = {
            r.id: r.vector[ctx.source_vector] for r in recs if r.vector and ctx.source_vector in r.vector
        }
        for slot, pid in slots:
            if pid not in stored:
                raise NotFoundError(f"No point with id {pid} found")
            found[slot] = stored[pid]
    vecs = [v for v in found if v is not None]
    return vecs, set(ids) if ctx.exclude_examples else set()


async def resolve_vector(ctx: QueryContext, raw: Any, field: str) -> tuple[F32, PointId | None]:
    vecs, ids = await resolve_vectors(ctx, [(raw, field)])
    return vecs[0], next(iter(ids), None)


def indexed(raws: Sequence[Any] | None, field: str) -> list[tuple[Any, str]]:
    return [(raw, f"{field}[{i}]") for i, raw in enumerate(raws or ())]


def similarity(distance: Distance, mat: F32, vec: F32) -> F32:
    """Similarity of each row of ``mat`` (stored, preprocessed) to ``vec``; larger is better
    (distances are negated)."""
    q = preprocess(vec.reshape(1, -1), distance)
    s: F32 = score_matrix(q, mat, distance)[0]
    return s if higher_is_better(distance) else np.negative(s)


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
