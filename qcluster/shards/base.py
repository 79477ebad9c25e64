"""The shard protocol every replica kind implements (local, remote, proxies), and its value types.

Callers never switch on the kind of shard: they hold a ``ShardOperation``. Vectors travel as
numpy float32 arrays (``[dim]`` for a dense vector, ``[rows, dim]`` for a multivector) or as
``SparseVector`` (uint32 indices + float32 values); payloads as plain JSON-compatible dicts;
filters as Qdrant filter JSON (compiled by ``filters.py`` inside the shard). Every value type here
is a plain dataclass of those, so it can be carried to a remote shard field by field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

from qcluster.shards.clock import ClockMap, ClockTag
from qcluster.shards.operations import UpdateOperation
from qcluster.shards.sparse.vector import SparseVector
from qcluster.types import DEFAULT_VECTOR, PointId

Payload = dict[str, Any]
FilterJson = Mapping[str, Any]
Vector = npt.NDArray[np.float32]
# A dense vector [dim], a multivector [rows, dim] (float32), or a sparse vector.
AnyVector = Vector | SparseVector


@dataclass(frozen=True, slots=True)
class PayloadSelector:
    """Which payload keys to return. ``include=None`` means all keys; an empty selector means none."""

    enabled: bool = True
    include: tuple[str, ...] | None = None
    exclude: tuple[str, ...] = ()

    @classmethod
    def parse(cls, raw: object) -> PayloadSelector:
        """From Qdrant's ``with_payload``: bool | [keys] | {"include": [...]} | {"exclude": [...]}."""
        from qcluster.errors import BadInputError

        if raw is None or raw is False:
            return NO_PAYLOAD
        if raw is True:
            return ALL_PAYLOAD
        if isinstance(raw, list) and all(isinstance(k, str) for k in raw):
            return cls(True, tuple(raw))
        if isinstance(raw, Mapping):
            if "include" in raw and isinstance(raw["include"], list):
                return cls(True, tuple(raw["include"]))
            if "exclude" in raw and isinstance(raw["exclude"], list):
                return cls(True, None, tuple(raw["exclude"]))
        raise BadInputError(
            f"with_payload: expected bool, list of keys, include or exclude, got {raw!r}", "with_payload"
        )


NO_PAYLOAD = PayloadSelector(enabled=False)
ALL_PAYLOAD = PayloadSelector()


@dataclass(frozen=True, slots=True)
class VectorSelector:
    """Which named vectors to return. ``names=None`` means all."""

    enabled: bool = False
    names: tuple[str, ...] | None = None

    @classmethod
    def parse(cls, raw: object) -> VectorSelector:
        from qcluster.errors import BadInputError

        if raw is None or raw is False:
            return NO_VECTORS
        if raw is True:
            return ALL_VECTORS
        if isinstance(raw, list) and all(isinstance(k, str) for k in raw):
            return cls(True, tuple(raw))
        raise BadInputError(
            f"with_vector: expected bool or a list of vector names, got {raw!r}", "with_vector"
        )


NO_VECTORS = VectorSelector(enabled=False)
ALL_VECTORS = VectorSelector(enabled=True)


@dataclass(frozen=True, slots=True)
class QuantizationSearchParams:
    ignore: bool = False
    rescore: bool | None = None
    oversampling: float | None = None


@dataclass(frozen=True, slots=True)
class SearchParams:
    hnsw_ef: int | None = None
    exact: bool = False
    quantization: QuantizationSearchParams | None = None
    indexed_only: bool = False
    # Sparse vectors with the idf modifier: count IDF statistics over the points matching this
    # filter (Qdrant's ``params.idf.corpus``); None = all points of the shard.
    idf_corpus: FilterJson | None = None


@dataclass(frozen=True, slots=True)
class SearchRequest:
    vector: AnyVector
    using: str = DEFAULT_VECTOR
    limit: int = 10
    offset: int = 0
    filter: FilterJson | None = None
    score_threshold: float | None = None
    params: SearchParams = SearchParams()
    with_payload: PayloadSelector = NO_PAYLOAD
    with_vector: VectorSelector = NO_VECTORS


@dataclass(slots=True)
class ScoredPoint:
    id: PointId
    version: int
    score: float
    payload: Payload | None = None
    vector: dict[str, AnyVector] | None = None


@dataclass(slots=True)
class Record:
    id: PointId
    payload: Payload | None = None
    vector: dict[str, AnyVector] | None = None
    order_value: int | float | None = None


@dataclass(frozen=True, slots=True)
class OrderBy:
    key: str
    direction: Literal["asc", "desc"] = "asc"
    start_from: int | float | None = None


@dataclass(frozen=True, slots=True)
class ScrollRequest:
    offset: PointId | None = None
    limit: int = 10
    filter: FilterJson | None = None
    with_payload: PayloadSelector = ALL_PAYLOAD
    with_vector: VectorSelector = NO_VECTORS
    order_by: OrderBy | None = None


@dataclass(slots=True)
class ScrollResult:
    points: list[Record]
    next_page_offset: PointId | None


@dataclass(frozen=True, slots=True)
class CountRequest:
    filter: FilterJson | None = None
    exact: bool = True


@dataclass(frozen=True, slots=True)
class UpdateResult:
    operation_id: int
    status: Literal["acknowledged", "completed"]


@dataclass(slots=True)
class OptimizationProgress:
    name: str
    segment_ids: list[str]
    points: int
    done: int
    started_at: float


@dataclass(slots=True)
class ShardInfo:
    status: Literal["green", "yellow", "grey", "red"]
    points_count: int
    indexed_vectors_count: int
    segments_count: int
    payload_schema: dict[str, Any] = field(default_factory=dict)
    optimizations: list[OptimizationProgress] = field(default_factory=list)
    optimizer_error: str | None = None
    last_applied_version: int = 0
    segments: list[tuple[str, int]] = field(default_factory=list)  # (segment id, live points)


class ShardOperation(Protocol):
    """What every replica (local, remote, proxy) offers. All methods are coroutines. ``tag`` is
    the clock tag of the write (see :mod:`clock`); a replica skips a tag it has applied."""

    async def update(
        self, op: UpdateOperation, wait: bool = True, tag: ClockTag | None = None
    ) -> UpdateResult: ...

    async def search(self, requests: Sequence[SearchRequest]) -> list[list[ScoredPoint]]: ...

    async def scroll(self, request: ScrollRequest) -> ScrollResult: ...

    async def count(self, request: CountRequest) -> int: ...

    async def retrieve(
        self, ids: Sequence[PointId], with_payload: PayloadSelector, with_vector: VectorSelector
    ) -> list[Record]: ...

    async def facet(self, key: str, filter: Any, limit: int, exact: bool) -> list[tuple[Any, int]]: ...

    async def info(self) -> ShardInfo: ...

    async def clock_map(self) -> ClockMap:
        """The highest tick this replica applied per clock (see :mod:`clock`)."""
        ...

    async def close(self) -> None: ...
