"""The typed condition tree of Qdrant's filter language (built by ``parse.py``).

Every node is a frozen dataclass, so a parsed filter can be shared between threads and used as a
cache key. Field checks (the ``check`` of a :class:`FieldCondition`) are the value-level tests;
their meaning lives in ``checks.py``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from qcluster.shards.filters.paths import Path
from qcluster.types import PointId


# ---------------------------------------------------------------------- value-level checks
@dataclass(frozen=True)
class MatchValue:
    value: str | int | bool


@dataclass(frozen=True)
class MatchAny:
    any: tuple[str, ...] | tuple[int, ...]
    lookup: frozenset[str | int] = field(default=frozenset(), compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "lookup", frozenset(self.any))


@dataclass(frozen=True)
class MatchExcept:
    values: tuple[str, ...] | tuple[int, ...]
    lookup: frozenset[str | int] = field(default=frozenset(), compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "lookup", frozenset(self.values))


@dataclass(frozen=True)
class MatchText:
    """``text`` (all tokens), ``text_any`` (any token) or ``phrase`` (consecutive tokens)."""

    text: str
    mode: str = "text"  # "text" | "text_any" | "phrase"


@dataclass(frozen=True)
class MatchPrefix:
    prefix: str


@dataclass(frozen=True)
class Range:
    """Numeric bounds (floats), or datetime bounds (UTC microseconds) when ``datetime`` is set."""

    gt: float | None = None
    gte: float | None = None
    lt: float | None = None
    lte: float | None = None
    datetime: bool = False

    def test(self, v: float) -> bool:
        return (
            (self.gt is None or v > self.gt)
            and (self.gte is None or v >= self.gte)
            and (self.lt is None or v < self.lt)
            and (self.lte is None or v <= self.lte)
        )


@dataclass(frozen=True)
class GeoRadius:
    lat: float
    lon: float
    radius: float  # meters


@dataclass(frozen=True)
class GeoBox:
    top: float
    left: float
    bottom: float
    right: float


@dataclass(frozen=True)
class GeoPolygon:
    exterior: tuple[tuple[float, float], ...]  # (lon, lat), closed ring
    interiors: tuple[tuple[tuple[float, float], ...], ...] = ()


@dataclass(frozen=True)
class ValuesCount:
    gt: int | None = None
    gte: int | None = None
    lt: int | None = None
    lte: int | None = None

    def test(self, n: int) -> bool:
        return (
            (self.gt is None or n > self.gt)
            and (self.gte is None or n >= self.gte)
            and (self.lt is None or n < self.lt)
            and (self.lte is None or n <= self.lte)
        )


@dataclass(frozen=True)
class EmptyFlag:
    """``{"key": k, "is_empty": flag}`` (the field-condition spelling of is_empty)."""

    flag: bool


@dataclass(frozen=True)
class NullFlag:
    """``{"key": k, "is_null": flag}`` (the field-condition spelling of is_null)."""

    flag: bool


Match = MatchValue | MatchAny | MatchExcept | MatchText | MatchPrefix
GeoCheck = GeoRadius | GeoBox | GeoPolygon
# Checks that hold when ANY value at the key passes (a point passes if one of its values does).
ValueCheck = Match | Range | GeoCheck
Check = ValueCheck | ValuesCount | EmptyFlag | NullFlag


# ---------------------------------------------------------------------- conditions
@dataclass(frozen=True)
class FieldCondition:
    key: str
    path: Path
    check: Check


@dataclass(frozen=True)
class IsEmpty:
    key: str
    path: Path


@dataclass(frozen=True)
class IsNull:
    key: str
    path: Path


@dataclass(frozen=True)
class HasId:
    ids: frozenset[PointId]


@dataclass(frozen=True)
class HasVector:
    name: str


@dataclass(frozen=True)
class Slice:
    """Points whose id hashes into slice ``index`` of ``total`` (a stable partition of the ids)."""

    total: int
    index: int

    def holds(self, point_id: PointId) -> bool:
        return slice_of(point_id, self.total) == self.index


_MIX = 0x9E3779B97F4A7C15
_MASK = (1 << 64) - 1


def slice_of(point_id: PointId, total: int) -> int:
    """The slice of an id: a 64-bit mix of the number (or of the UUID's 128 bits), mod ``total``."""
    if isinstance(point_id, int):
        x = point_id & _MASK
    else:
        u = uuid.UUID(point_id).int
        x = (u ^ (u >> 64)) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    x ^= x >> 31
    return ((x * _MIX) & _MASK) % total


@dataclass(frozen=True)
class Nested:
    """Per-element filter: some object of the array at ``key`` must pass ``filter`` on its own.

    ``array_key`` is ``key`` with a trailing ``[]`` (added when absent); inner keys are relative
    to the element, so an inner key ``k`` reads ``array_key + "." + k`` of the point.
    """

    key: str
    array_key: str
    path: Path  # parsed array_key
    filter: Filter


@dataclass(frozen=True)
class MinShould:
    conditions: tuple[Condition, ...]
    min_count: int


@dataclass(frozen=True)
class Filter:
    must: tuple[Condition, ...] = ()
    should: tuple[Condition, ...] = ()
    must_not: tuple[Condition, ...] = ()
    min_should: MinShould | None = None

    def is_empty(self) -> bool:
        return not (self.must or self.should or self.must_not or self.min_should)


Condition = FieldCondition | IsEmpty | IsNull | HasId | HasVector | Slice | Nested | Filter
# Conditions a payload index may answer (the index of exactly their key).
KeyedCondition = FieldCondition | IsEmpty | IsNull


def children(flt: Filter) -> tuple[Condition, ...]:
    """All direct sub-conditions of a filter, in clause order."""
    ms = flt.min_should.conditions if flt.min_should is not None else ()
    return (*flt.must, *flt.should, *flt.must_not, *ms)
