"""Qdrant filter JSON -> the typed condition tree, validated.

Every error is a BadInputError whose message starts with the path of the offending field
(``filter.must[0].range.gt: ...``) and whose ``field`` is that path.

Accepted as Qdrant accepts it: ``must`` / ``should`` / ``must_not`` as one condition, a list or
null; a condition that is itself a filter (``{"must": [...]}``, also ``{}`` = match all); a
``range`` whose bounds are all numbers, or all datetime strings (then it is a datetime range);
``null`` for an absent optional field.

Stricter than Qdrant, on purpose (a typo should not silently change a result):

- unknown keys anywhere are rejected (Qdrant ignores them inside conditions);
- a field condition takes exactly one check (Qdrant ORs several together);
- a ``geo_radius`` with a negative radius, or a ``geo_bounding_box`` whose top is below its bottom,
  is rejected (both would match nothing);
- ``has_id`` / ``has_vector`` inside a ``nested`` filter are rejected (Qdrant documents them as
  unsupported there and silently matches nothing).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from qcluster.errors import BadInputError, UnprocessableInputError
from qcluster.shards.filters.conditions import (
    Check,
    Condition,
    EmptyFlag,
    FieldCondition,
    Filter,
    GeoBox,
    GeoPolygon,
    GeoRadius,
    HasId,
    HasVector,
    IsEmpty,
    IsNull,
    Match,
    MatchAny,
    MatchExcept,
    MatchPrefix,
    MatchText,
    MatchValue,
    MinShould,
    Nested,
    NullFlag,
    Range,
    Slice,
    ValuesCount,
    children,
)
from qcluster.shards.filters.datetimes import datetime_micros
from qcluster.shards.filters.parse_fast import simple_filter
from qcluster.shards.filters.paths import array_key, parse_path
from qcluster.shards.filters.remembered import cache_key, recall, remember
from qcluster.shards.filters.shape import STACK_SAFE_DEPTH, filter_shape, is_map
from qcluster.types import parse_point_id

FILTER_KEYS = ("must", "should", "must_not", "min_should")
FIELD_CHECKS = (
    "match",
    "range",
    "geo_radius",
    "geo_bounding_box",
    "geo_polygon",
    "values_count",
    "is_empty",
    "is_null",
)
MATCH_KINDS = ("value", "any", "except", "text", "text_any", "phrase", "prefix")
BOUNDS = ("gt", "gte", "lt", "lte")
FIELD_KEYS = ("key", *FIELD_CHECKS)
I64_MIN, I64_MAX = -(2**63), 2**63 - 1


def _err(path: str, reason: str) -> BadInputError:
    return BadInputError(f"{path}: {reason}", path)


def _object(raw: Any, path: str, what: str, allowed: tuple[str, ...]) -> Mapping[str, Any]:
    if not is_map(raw):
        raise _err(path, f"expected {what}, got {_show(raw)}")
    for k in raw:
        if k not in allowed:
            raise _err(f"{path}.{k}", f"unknown field {k!r}; expected one of {', '.join(allowed)}")
    return raw


def _present(body: Mapping[str, Any], kinds: tuple[str, ...]) -> list[str]:
    """The keys of ``kinds`` set (not null) in ``body``, in the order of ``kinds``."""
    found = [k for k, v in body.items() if v is not None and k in kinds]
    if len(found) > 1:
        found.sort(key=kinds.index)
    return found


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _number(v: Any, path: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise _err(path, f"expected a number, got {_show(v)}")
    f = float(v)
    if math.isnan(f):
        raise _err(path, "expected a number, got NaN")
    return f


# ---------------------------------------------------------------------- field checks
def _match(raw: Any, path: str) -> Match:
    body = _object(raw, path, "a match object", MATCH_KINDS)
    present = _present(body, MATCH_KINDS)
    if not present:
        raise _err(path, f"empty match: expected one of {', '.join(MATCH_KINDS)}")
    if len(present) > 1:
        raise _err(path, f"a match takes exactly one of {', '.join(MATCH_KINDS)}, got {', '.join(present)}")
    kind = present[0]
    value = body[kind]
    sub = f"{path}.{kind}"
    if kind == "value":
        if isinstance(value, float):
            raise _err(sub, f"cannot match a float exactly ({value!r}); use a range condition")
        if not isinstance(value, str | int):
            raise _err(sub, f"expected a string, an integer or a bool, got {_show(value)}")
        if isinstance(value, int) and not isinstance(value, bool) and not I64_MIN <= value <= I64_MAX:
            raise _err(sub, f"integer {value} is outside the 64-bit range")
        return MatchValue(value)
    if kind in ("any", "except"):
        if not isinstance(value, list):
            raise _err(sub, f"expected a list of strings or a list of integers, got {_show(value)}")
        if all(isinstance(v, str) for v in value):
            items: tuple[str, ...] | tuple[int, ...] = tuple(value)
        elif all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            for i, v in enumerate(value):
                if not I64_MIN <= v <= I64_MAX:
                    raise _err(f"{sub}[{i}]", f"integer {v} is outside the 64-bit range")
            items = tuple(value)
        else:
            raise _err(
                sub, "expected a list of strings or a list of integers (not mixed, no bools or floats)"
            )
        return MatchAny(items) if kind == "any" else MatchExcept(items)
    if not isinstance(value, str):
        raise _err(sub, f"expected a string, got {_show(value)}")
    if kind == "prefix":
        return MatchPrefix(value)
    return MatchText(value, mode=kind)


def _range(raw: Any, path: str) -> Range:
    body = _object(raw, path, "a range object with gt / gte / lt / lte", BOUNDS)
    fast: dict[str, float] = {}  # plain 64-bit integers and floats, the common case
    for k, v in body.items():
        if type(v) is int and I64_MIN <= v <= I64_MAX:
            fast[k] = float(v)
        elif type(v) is float and v == v:
            fast[k] = v
        elif v is not None:
            break
    else:
        return Range(fast.get("gt"), fast.get("gte"), fast.get("lt"), fast.get("lte"))
    bounds = {k: v for k, v in body.items() if v is not None}
    if any(isinstance(v, str) for v in bounds.values()):
        conv: dict[str, float] = {}
        for k, v in bounds.items():
            if not isinstance(v, str):
                raise _err(
                    f"{path}.{k}",
                    f"expected an RFC 3339 datetime string like the other bounds, got {_show(v)}",
                )
            micros = datetime_micros(v)
            if micros is None:
                raise _err(
                    f"{path}.{k}",
                    f"{_show(v)} is not a number nor an RFC 3339 datetime (e.g. 2014-01-01T00:00:00Z)",
                )
            conv[k] = micros
        return Range(conv.get("gt"), conv.get("gte"), conv.get("lt"), conv.get("lte"), datetime=True)
    nums = {k: _number(v, f"{path}.{k}") for k, v in bounds.items()}
    return Range(nums.get("gt"), nums.get("gte"), nums.get("lt"), nums.get("lte"))


def _geo_point(raw: Any, path: str) -> tuple[float, float]:
    body = _object(raw, path, "a geo point {lat, lon}", ("lat", "lon"))
    for k in ("lat", "lon"):
        if body.get(k) is None:
            raise _err(path, f"a geo point needs {k!r}")
    lat, lon = _number(body["lat"], f"{path}.lat"), _number(body["lon"], f"{path}.lon")
    if not -90.0 <= lat <= 90.0:
        raise _err(f"{path}.lat", f"latitude {lat} is outside [-90, 90]")
    if not -180.0 <= lon <= 180.0:
        raise _err(f"{path}.lon", f"longitude {lon} is outside [-180, 180]")
    return lat, lon


def _ring(raw: Any, path: str) -> tuple[tuple[float, float], ...]:
    body = _object(raw, path, "a line string {points: [...]}", ("points",))
    pts = body.get("points")
    if not isinstance(pts, list):
        raise _err(f"{path}.points", f"expected a list of geo points, got {_show(pts)}")
    if len(pts) < 4:
        raise _err(f"{path}.points", f"a polygon ring needs at least 4 points, got {len(pts)}")
    ring = []
    for i, p in enumerate(pts):
        lat, lon = _geo_point(p, f"{path}.points[{i}]")
        ring.append((lon, lat))
    if ring[0] != ring[-1]:
        raise _err(
            f"{path}.points", "a polygon ring must be closed: the first and last points must be the same"
        )
    return tuple(ring)


def _values_count(raw: Any, path: str) -> ValuesCount:
    body = _object(raw, path, "an object with gt / gte / lt / lte", BOUNDS)
    out: dict[str, int] = {}
    for k, v in body.items():
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise _err(f"{path}.{k}", f"expected a non-negative integer, got {_show(v)}")
        out[k] = v
    return ValuesCount(**out)


def _check(kind: str, body: Any, sub: str) -> Check:
    if kind == "match":
        return _match(body, sub)
    if kind == "range":
        return _range(body, sub)
    if kind == "geo_radius":
        obj = _object(body, sub, "{center, radius}", ("center", "radius"))
        if obj.get("center") is None or obj.get("radius") is None:
            raise _err(sub, "geo_radius needs center and radius")
        lat, lon = _geo_point(obj["center"], f"{sub}.center")
        radius = _number(obj["radius"], f"{sub}.radius")
        if radius < 0:
            raise _err(f"{sub}.radius", f"radius must not be negative, got {radius}")
        return GeoRadius(lat, lon, radius)
    if kind == "geo_bounding_box":
        obj = _object(body, sub, "{top_left, bottom_right}", ("top_left", "bottom_right"))
        if obj.get("top_left") is None or obj.get("bottom_right") is None:
            raise _err(sub, "geo_bounding_box needs top_left and bottom_right")
        top, left = _geo_point(obj["top_left"], f"{sub}.top_left")
        bottom, right = _geo_point(obj["bottom_right"], f"{sub}.bottom_right")
        if top < bottom:
            raise _err(sub, f"top_left.lat ({top}) is below bottom_right.lat ({bottom})")
        return GeoBox(top, left, bottom, right)
    if kind == "geo_polygon":
        obj = _object(body, sub, "{exterior, interiors}", ("exterior", "interiors"))
        if obj.get("exterior") is None:
            raise _err(sub, "geo_polygon needs an exterior ring")
        interiors_raw = obj.get("interiors") or []
        if not isinstance(interiors_raw, list):
            raise _err(f"{sub}.interiors", f"expected a list of rings, got {_show(interiors_raw)}")
        interiors = tuple(_ring(r, f"{sub}.interiors[{i}]") for i, r in enumerate(interiors_raw))
        return GeoPolygon(_ring(obj["exterior"], f"{sub}.exterior"), interiors)
    if kind == "values_count":
        return _values_count(body, sub)
    if not isinstance(body, bool):
        raise _err(sub, f"expected true or false, got {_show(body)}")
    return EmptyFlag(body) if kind == "is_empty" else NullFlag(body)


def _field(raw: Mapping[str, Any], path: str) -> FieldCondition:
    body = _object(raw, path, "a field condition", FIELD_KEYS)
    key = body["key"]
    p = parse_path(key, f"{path}.key")
    present = _present(body, FIELD_CHECKS)
    if not present:
        raise UnprocessableInputError(
            f"[{path}: At least one field condition must be specified (one of {', '.join(FIELD_CHECKS)} "
            f"on {key!r})]",
            path,
        )
    if len(present) > 1:
        raise _err(
            path,
            f"a field condition takes exactly one check, got {', '.join(present)} on {key!r}; "
            "combine several checks with must / should",
        )
    kind = present[0]
    return FieldCondition(key, p, _check(kind, body[kind], f"{path}.{kind}"))


# ---------------------------------------------------------------------- conditions and filters
def _key_only(body: Any, path: str) -> tuple[str, Any]:
    obj = _object(body, path, "{key}", ("key",))
    if obj.get("key") is None:
        raise _err(path, "expected {key}")
    return obj["key"], parse_path(obj["key"], f"{path}.key")


def parse_condition(raw: Any, path: str) -> Condition:
    if not is_map(raw):
        raise _err(path, f"expected a condition object, got {_show(raw)}")
    if "key" in raw:
        return _field(raw, path)
    if all(k in FILTER_KEYS for k in raw):
        return _parse_filter(raw, path)
    special = [k for k in raw if k in ("is_empty", "is_null", "has_id", "has_vector", "nested", "slice")]
    if len(special) != 1 or len(raw) != 1:
        unknown = [k for k in raw if k not in FILTER_KEYS]
        raise _err(
            path,
            f"unknown condition with field(s) {', '.join(map(repr, unknown))}; expected a field condition "
            "{key, match | range | ...}, is_empty, is_null, has_id, has_vector, nested, or a filter",
        )
    kind = special[0]
    body = raw[kind]
    sub = f"{path}.{kind}"
    if kind == "is_empty":
        key, p = _key_only(body, sub)
        return IsEmpty(key, p)
    if kind == "is_null":
        key, p = _key_only(body, sub)
        return IsNull(key, p)
    if kind == "has_id":
        if not isinstance(body, list):
            raise _err(sub, f"expected a list of point ids, got {_show(body)}")
        return HasId(frozenset(parse_point_id(v, f"{sub}[{i}]") for i, v in enumerate(body)))
    if kind == "has_vector":
        if not isinstance(body, str):
            raise _err(sub, f'expected a vector name ("" for the unnamed vector), got {_show(body)}')
        return HasVector(body)
    if kind == "slice":
        return _slice(body, sub)
    obj = _object(body, sub, "{key, filter}", ("key", "filter"))
    if obj.get("key") is None or "filter" not in obj:
        raise _err(sub, "nested needs key and filter")
    key = obj["key"]
    p = parse_path(key, f"{sub}.key")
    inner = Filter() if obj["filter"] is None else _parse_filter(obj["filter"], f"{sub}.filter")
    _reject_in_nested(inner, f"{sub}.filter")
    akey, apath = array_key(key, p)
    return Nested(key, akey, apath, inner)


def _slice(body: Any, path: str) -> Slice:
    obj = _object(body, path, "{total, index}", ("total", "index"))
    total, index = obj.get("total"), obj.get("index")
    for name, value in (("total", total), ("index", index)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise _err(f"{path}.{name}", f"expected an unsigned integer, got {_show(value)}")
    assert isinstance(total, int) and isinstance(index, int)
    if total == 0:
        raise _err(f"{path}.total", "expected a non-zero unsigned integer, got 0")
    if index >= total:
        raise UnprocessableInputError(
            f"[{path}.index: slice index {index} must be smaller than total {total}]", f"{path}.index"
        )
    return Slice(total, index)


def _reject_in_nested(flt: Filter, path: str) -> None:
    for c in children(flt):
        if isinstance(c, HasId):
            raise _err(path, "has_id is not supported inside a nested filter; put it in an adjacent must")
        if isinstance(c, HasVector | Slice):
            raise _err(
                path,
                "has_vector and slice are not supported inside a nested filter; put them in an adjacent must",
            )
        if isinstance(c, Filter):
            _reject_in_nested(c, path)


def _clauses(raw: Any, path: str) -> tuple[Condition, ...]:
    if raw is None:
        return ()
    if is_map(raw):
        return (parse_condition(raw, path),)
    if not isinstance(raw, list):
        raise _err(path, f"expected a condition or a list of conditions, got {_show(raw)}")
    return tuple(parse_condition(c, f"{path}[{i}]") for i, c in enumerate(raw))


def parse_filter(raw: Any, path: str = "filter") -> Filter:
    """Validate Qdrant filter JSON (None = no filter = match all). Parsed filters are immutable
    and the same filter JSON comes back often (per query: planning and evaluation; across queries:
    a tenant filter), so the last few hundred top-level parses are remembered by their JSON: a
    remembered filter was checked when it was parsed, and comes back without another walk.

    Before any recursion, the nesting is measured iteratively (``shape.py``): a filter deeper
    than the parser can safely recurse is refused whatever the request layer allowed. A flat
    filter of simple field conditions (``parse_fast``) has one level and needs no measuring."""
    if raw is None:
        return Filter()
    key = cache_key(raw, path)
    if key is not None:
        hit = recall(key)
        if hit is not None:
            return hit
    flat = simple_filter(raw) if path == "filter" else None  # one level: nothing to measure
    if flat is not None:
        remember(key, flat)
        return flat
    depth = filter_shape(raw, STACK_SAFE_DEPTH, 2**62).depth
    if depth > STACK_SAFE_DEPTH:
        raise _err(path, f"filter nested more than {STACK_SAFE_DEPTH} levels deep")
    return _parse_and_remember(raw, path, key, simple=False)


def parse_small_filter(raw: Any, key: bytes | None, max_conditions: int) -> Filter | None:
    """``parse_filter`` for a top-level filter of at most ``max_conditions`` conditions (None,
    unparsed, when it has more), not remembered yet: ``key`` is its cache key from
    ``remembered.remembered_filter``. A flat filter of simple field conditions (``parse_fast``)
    is counted from its clause lists; any other gets one bounded walk measuring its shape (a
    filter of that few conditions cannot nest deeper than the parser recurses safely) before the
    parse."""
    if raw is None:
        return Filter()
    tried = type(raw) is dict and _flat_count(raw) <= max_conditions
    if tried:
        flat = simple_filter(raw)  # one level of field conditions: nothing deeper to measure
        if flat is not None:
            remember(key, flat)
            return flat
    shape = filter_shape(raw, STACK_SAFE_DEPTH, max_conditions)
    if shape.conditions > max_conditions:
        return None
    if shape.depth > STACK_SAFE_DEPTH:
        raise _err("filter", f"filter nested more than {STACK_SAFE_DEPTH} levels deep")
    return _parse_and_remember(raw, "filter", key, simple=not tried)


def _flat_count(raw: dict[str, Any]) -> int:
    """The items of a filter's top-level clause lists (its conditions, when it is flat)."""
    n = 0
    for items in raw.values():
        if type(items) is list:
            n += len(items)
    return n


def _parse_and_remember(raw: Any, path: str, key: bytes | None, simple: bool = True) -> Filter:
    # the commonest shape without the general walk (``parse_fast``, unless ``simple`` says it
    # was tried already); errors are not cached
    parsed = simple_filter(raw) if simple and path == "filter" else None
    if parsed is None:
        parsed = _parse_filter(raw, path)
    remember(key, parsed)
    return parsed


def _parse_filter(raw: Any, path: str) -> Filter:
    body = _object(raw, path, "a filter object", FILTER_KEYS)
    min_should = None
    ms = body.get("min_should")
    if ms is not None:
        sub = f"{path}.min_should"
        obj = _object(ms, sub, "{conditions, min_count}", ("conditions", "min_count"))
        if obj.get("conditions") is None or obj.get("min_count") is None:
            raise _err(sub, "min_should needs conditions and min_count")
        if not isinstance(obj["conditions"], list):
            raise _err(f"{sub}.conditions", f"expected a list of conditions, got {_show(obj['conditions'])}")
        count = obj["min_count"]
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise _err(f"{sub}.min_count", f"expected an integer >= 1, got {_show(count)}")
        min_should = MinShould(_clauses(obj["conditions"], f"{sub}.conditions"), count)
    return Filter(
        must=_clauses(body.get("must"), f"{path}.must"),
        should=_clauses(body.get("should"), f"{path}.should"),
        must_not=_clauses(body.get("must_not"), f"{path}.must_not"),
        min_should=min_should,
    )
