"""The typed condition tree of Qdrant's filter language (parsed by ``parse.py``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from qcluster.types import PointId


@dataclass(frozen=True)
class MatchValue:
    value: str | int | bool


@dataclass(frozen=True)
class MatchAny:
    any: tuple[str | int, ...]


@dataclass(frozen=True)
class MatchExcept:
    values: tuple[str | int, ...]


@dataclass(frozen=True)
class MatchText:
    text: str
    phrase: bool = False


@dataclass(frozen=True)
class Range:
    gt: float | None = None
    gte: float | None = None
    lt: float | None = None
    lte: float | None = None
    datetime: bool = False  # bounds were RFC 3339 strings; payload values are parsed the same way

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
    radius: float


@dataclass(frozen=True)
class GeoBox:
    top: float
    left: float
    bottom: float
    right: float


@dataclass(frozen=True)
class GeoPolygon:
    exterior: tuple[tuple[float, float], ...]  # (lon, lat)
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


Check = (
    MatchValue | MatchAny | MatchExcept | MatchText | Range | GeoRadius | GeoBox | GeoPolygon | ValuesCount
)


@dataclass(frozen=True)
class FieldCondition:
    key: str
    check: Check


@dataclass(frozen=True)
class IsEmpty:
    key: str


@dataclass(frozen=True)
class IsNull:
    key: str


@dataclass(frozen=True)
class HasId:
    ids: frozenset[PointId]


@dataclass(frozen=True)
class HasVector:
    name: str


@dataclass(frozen=True)
class Nested:
    key: str
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
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


Condition = FieldCondition | IsEmpty | IsNull | HasId | HasVector | Nested | Filter
