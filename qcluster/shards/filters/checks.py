"""What one field check means for the values found at its key (Qdrant's semantics).

``raw`` below is the list of values at the key (see ``paths.raw_values``: one per path match,
arrays kept whole); ``flat`` is that list with arrays flattened one level.

Value checks (match, range, geo): the point passes when ANY flat value passes; a missing key
(no raw values) never passes. Per value, types are strict, as in Qdrant:

- ``match value``: a string equals a string, an integer an integer (``1`` does not match ``1.0``,
  ``"1"`` or ``true``), a bool a bool;
- ``match any``: the value is one of the list (strings with strings, integers with integers);
- ``match except``: the value is not one of the list; ``null`` never passes, and a value of
  another type than the list (a bool, a float, an object, a nested array) always passes. So a
  missing key, ``null`` and ``[]`` do not pass ``except``; ``["a", 5]`` passes ``except ["a"]``;
- ``text`` / ``phrase`` without a text index: the string contains the text (substring, case
  sensitive); ``text_any``: it contains any whitespace-separated word of the text. With a text
  index on the key, the index's tokenizer decides (see ``payload_index/text.py``);
- ``prefix``: the string starts with the prefix;
- ``range``: numbers (integers and floats, never bools) compared as doubles; a datetime range
  compares strings that parse as datetimes (``datetimes.py``), in UTC microseconds;
- geo: see ``geo.py``.

Shape checks: ``values_count`` counts per raw value (``null`` 0, an array its length, anything else
1; a missing key counts 0) and passes when any raw value's count is in range; ``is_empty``: every
raw value is ``null`` or ``[]`` (a missing key is empty; ``[null]`` is not); ``is_null``: some raw
value is ``null`` itself (``[null]`` is not null; a missing key is not null).
"""

from __future__ import annotations

from typing import Any, Protocol

from qcluster.shards.filters.conditions import (
    Check,
    EmptyFlag,
    GeoBox,
    GeoPolygon,
    GeoRadius,
    MatchAny,
    MatchExcept,
    MatchPrefix,
    MatchText,
    MatchValue,
    NullFlag,
    Range,
    ValueCheck,
    ValuesCount,
)
from qcluster.shards.filters.datetimes import datetime_micros
from qcluster.shards.filters.geo import geo_point, values_pass
from qcluster.shards.filters.numbers import as_number, is_int


class TextMatcher(Protocol):
    """What a full-text index offers the evaluators: its verdict on a point's strings."""

    def text_match(self, check: MatchText, strings: list[str]) -> bool: ...


def same(x: Any, v: str | int | bool) -> bool:
    """``match value`` for one stored value."""
    if isinstance(v, bool):
        return isinstance(x, bool) and x == v
    if isinstance(v, int):
        return is_int(x) and x == v
    return isinstance(x, str) and x == v


def except_passes(
    x: Any, values: tuple[str, ...] | tuple[int, ...], lookup: frozenset[str | int] | None = None
) -> bool:
    """``match except`` for one stored value."""
    if lookup is None:
        lookup = frozenset(values)
    if x is None:
        return False
    strings = not values or isinstance(values[0], str)
    if isinstance(x, str):
        return not strings or x not in lookup
    if is_int(x):
        return strings or x not in lookup
    return True


def value_passes(check: ValueCheck, x: Any) -> bool:
    """Does one flat value pass a value check (text checks: the no-index substring rule)?"""
    if isinstance(check, MatchValue):
        return same(x, check.value)
    if isinstance(check, MatchAny):
        if isinstance(x, str):
            return bool(check.any) and isinstance(check.any[0], str) and x in check.lookup
        if is_int(x):
            return bool(check.any) and is_int(check.any[0]) and x in check.lookup
        return False
    if isinstance(check, MatchExcept):
        return except_passes(x, check.values, check.lookup)
    if isinstance(check, MatchText):
        if not isinstance(x, str):
            return False
        if check.mode == "text_any":
            return any(word in x for word in check.text.split())
        return check.text in x
    if isinstance(check, MatchPrefix):
        return isinstance(x, str) and x.startswith(check.prefix)
    if isinstance(check, Range):
        if check.datetime:
            t = datetime_micros(x)
            return t is not None and check.test(t)
        n = as_number(x)
        return n is not None and check.test(n)
    assert isinstance(check, GeoRadius | GeoBox | GeoPolygon)
    p = geo_point(x)
    return p is not None and values_pass(check, [p])


def raw_count(v: Any) -> int:
    if v is None:
        return 0
    if isinstance(v, list):
        return len(v)
    return 1


def is_empty_raw(raw: list[Any]) -> bool:
    return all(v is None or (isinstance(v, list) and not v) for v in raw)


def is_null_raw(raw: list[Any]) -> bool:
    return any(v is None for v in raw)


def empty_flag_passes(flag: bool, raw: list[Any]) -> bool:
    """``{"key": k, "is_empty": flag}``: per raw value, missing key -> ``flag``."""
    if not raw:
        return flag
    for v in raw:
        empty = v is None or (isinstance(v, list) and not v)
        if empty == flag:
            return True
    return False


def null_flag_passes(flag: bool, raw: list[Any]) -> bool:
    """``{"key": k, "is_null": flag}``: per raw value, missing key -> ``not flag``."""
    if not raw:
        return not flag
    for v in raw:
        nullish = v is None or (isinstance(v, list) and any(x is None for x in v))
        if nullish == flag:
            return True
    return False


def check_raw(check: Check, raw: list[Any], text: TextMatcher | None = None) -> bool:
    """A field check against the raw values at its key (``text``: the key's text index, if any)."""
    if isinstance(check, ValuesCount):
        if not raw:
            return check.test(0)
        return any(check.test(raw_count(v)) for v in raw)
    if isinstance(check, EmptyFlag):
        return empty_flag_passes(check.flag, raw)
    if isinstance(check, NullFlag):
        return null_flag_passes(check.flag, raw)
    flat: list[Any] = []
    for v in raw:
        if isinstance(v, list):
            flat.extend(v)
        else:
            flat.append(v)
    if isinstance(check, MatchText) and text is not None:
        strings = [x for x in flat if isinstance(x, str)]
        return bool(strings) and text.text_match(check, strings)
    if isinstance(check, GeoRadius | GeoBox | GeoPolygon):
        points = [p for p in (geo_point(x) for x in flat) if p is not None]
        return values_pass(check, points)
    return any(value_passes(check, x) for x in flat)
