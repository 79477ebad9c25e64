"""Semantics of one field check against the values found at its key (shared by the reference
evaluator and the scan fallback of the vectorised evaluator).

Decisions where Qdrant's documentation is silent:
- types are strict: ``match value 1`` does not match ``"1"`` or ``true``; ranges see ints and
  floats but not bools or strings; datetime ranges see RFC 3339 strings only;
- ``except`` matches a point whose key is missing or empty, or that holds at least one value
  outside the list;
- ``values_count`` counts non-null values (an array counts its elements);
- ``is_empty``: missing key, null, or an array with no non-null element; ``is_null``: the key
  holds null itself;
- full-text ``text`` without a text index is a substring match; with one, every query token
  must be among the value's tokens (``phrase``: consecutively), tokenised as the index says.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from typing import Any

from qcluster.shards.filters.conditions import (
    Check,
    GeoBox,
    GeoPolygon,
    GeoRadius,
    MatchAny,
    MatchExcept,
    MatchText,
    MatchValue,
    Range,
    ValuesCount,
)
from qcluster.shards.filters.parse import try_datetime

EARTH_RADIUS_M = 6371008.8
Tokenizer = Callable[[str], list[str]]
_WORD = re.compile(r"\w+", re.UNICODE)


def word_tokens(text: str, lowercase: bool = True) -> list[str]:
    return _WORD.findall(text.lower() if lowercase else text)


def same(x: Any, v: Any) -> bool:
    if isinstance(v, bool):
        return isinstance(x, bool) and x == v
    if isinstance(v, int):
        return isinstance(x, int) and not isinstance(x, bool) and x == v
    return isinstance(x, str) and x == v


def is_number(x: Any) -> bool:
    return (
        isinstance(x, int | float)
        and not isinstance(x, bool)
        and not (isinstance(x, float) and math.isnan(x))
    )


def geo_of(x: Any) -> tuple[float, float] | None:
    if isinstance(x, dict) and is_number(x.get("lat")) and is_number(x.get("lon")):
        return float(x["lat"]), float(x["lon"])
    return None


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def in_ring(lon: float, lat: float, ring: Sequence[tuple[float, float]]) -> bool:
    inside = False
    j = len(ring) - 1
    for i in range(len(ring)):
        xi, yi = ring[i]
        xj, yj = ring[j]
        if (yi > lat) != (yj > lat) and lon < (xj - xi) * (lat - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside


def in_geo(check: GeoRadius | GeoBox | GeoPolygon, lat: float, lon: float) -> bool:
    if isinstance(check, GeoRadius):
        return haversine_m(check.lat, check.lon, lat, lon) <= check.radius
    if isinstance(check, GeoBox):
        if not check.bottom <= lat <= check.top:
            return False
        if check.left <= check.right:
            return check.left <= lon <= check.right
        return lon >= check.left or lon <= check.right  # crosses the antimeridian
    return in_ring(lon, lat, check.exterior) and not any(in_ring(lon, lat, r) for r in check.interiors)


def text_matches(check: MatchText, value: str, tokenizer: Tokenizer | None) -> bool:
    if tokenizer is None:
        return check.text in value
    want = tokenizer(check.text)
    have = tokenizer(value)
    if not check.phrase:
        return set(want) <= set(have)
    if not want:
        return True
    n = len(want)
    return any(have[i : i + n] == want for i in range(len(have) - n + 1))


def check_values(check: Check, vals: list[Any], tokenizer: Tokenizer | None = None) -> bool:
    if isinstance(check, MatchValue):
        return any(same(x, check.value) for x in vals)
    if isinstance(check, MatchAny):
        return any(same(x, a) for x in vals for a in check.any)
    if isinstance(check, MatchExcept):
        present = [x for x in vals if x is not None]
        return not present or any(not any(same(x, a) for a in check.values) for x in present)
    if isinstance(check, MatchText):
        return any(isinstance(x, str) and text_matches(check, x, tokenizer) for x in vals)
    if isinstance(check, Range):
        if check.datetime:
            stamps = (try_datetime(x) for x in vals if isinstance(x, str))
            return any(t is not None and check.test(t) for t in stamps)
        return any(is_number(x) and check.test(float(x)) for x in vals)
    if isinstance(check, ValuesCount):
        return check.test(sum(1 for x in vals if x is not None))
    points = (geo_of(x) for x in vals)
    return any(p is not None and in_geo(check, p[0], p[1]) for p in points)
