"""Qdrant filter JSON -> the typed condition tree, with errors that name the offending path."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from qcluster.errors import BadInputError
from qcluster.shards.filters.conditions import (
    Check,
    Condition,
    FieldCondition,
    Filter,
    GeoBox,
    GeoPolygon,
    GeoRadius,
    HasId,
    HasVector,
    IsEmpty,
    IsNull,
    MatchAny,
    MatchExcept,
    MatchText,
    MatchValue,
    MinShould,
    Nested,
    Range,
    ValuesCount,
)
from qcluster.types import parse_point_id

FILTER_KEYS = {"must", "should", "must_not", "min_should"}


def _err(path: str, reason: str) -> BadInputError:
    return BadInputError(f"{path}: {reason}", path)


def parse_datetime(value: Any, path: str = "value") -> float:
    """RFC 3339 (or a date) -> UTC timestamp; naive times are UTC."""
    if not isinstance(value, str):
        raise _err(path, f"expected an RFC 3339 date-time string, got {value!r}")
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    if " " in text and "T" not in text:
        text = text.replace(" ", "T", 1)
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise _err(path, f"{value!r} is not an RFC 3339 date-time") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def try_datetime(value: Any) -> float | None:
    try:
        return parse_datetime(value)
    except BadInputError:
        return None


def _number(v: Any, path: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise _err(path, f"expected a number, got {v!r}")
    return float(v)


def _range(raw: Any, path: str) -> Range:
    if not isinstance(raw, Mapping):
        raise _err(path, "expected an object with gt / gte / lt / lte")
    unknown = set(raw) - {"gt", "gte", "lt", "lte"}
    if unknown:
        raise _err(path, f"unknown range bound {sorted(unknown)[0]!r}")
    bounds = {k: v for k, v in raw.items() if v is not None}
    is_dt = any(isinstance(v, str) for v in bounds.values())
    conv = {
        k: parse_datetime(v, f"{path}.{k}") if is_dt else _number(v, f"{path}.{k}") for k, v in bounds.items()
    }
    return Range(conv.get("gt"), conv.get("gte"), conv.get("lt"), conv.get("lte"), datetime=is_dt)


def _geo_point(raw: Any, path: str) -> tuple[float, float]:
    if not isinstance(raw, Mapping) or "lat" not in raw or "lon" not in raw:
        raise _err(path, "expected a geo point {lat, lon}")
    lat, lon = _number(raw["lat"], f"{path}.lat"), _number(raw["lon"], f"{path}.lon")
    if not -90 <= lat <= 90:
        raise _err(f"{path}.lat", f"latitude {lat} is outside [-90, 90]")
    if not -180 <= lon <= 180:
        raise _err(f"{path}.lon", f"longitude {lon} is outside [-180, 180]")
    return lat, lon


def _ring(raw: Any, path: str) -> tuple[tuple[float, float], ...]:
    pts = raw.get("points") if isinstance(raw, Mapping) else None
    if not isinstance(pts, list) or len(pts) < 4:
        raise _err(path, "a polygon ring needs at least 4 points (closed: first == last)")
    ring = tuple((lon, lat) for lat, lon in (_geo_point(p, f"{path}.points[{i}]") for i, p in enumerate(pts)))
    if ring[0] != ring[-1]:
        raise _err(path, "a polygon ring must be closed: its first and last points must be equal")
    return ring


def _match(raw: Any, path: str) -> Check:
    if not isinstance(raw, Mapping) or len(raw) != 1:
        raise _err(path, "expected exactly one of value, any, except, text, phrase")
    kind, value = next(iter(raw.items()))
    if kind == "value":
        if not isinstance(value, str | int | bool):
            raise _err(f"{path}.value", f"expected a string, integer or bool, got {value!r}")
        return MatchValue(value)
    if kind in ("any", "except"):
        if not isinstance(value, list) or not all(
            isinstance(v, str | int) and not isinstance(v, bool) for v in value
        ):
            raise _err(f"{path}.{kind}", "expected a list of strings or of integers")
        return MatchAny(tuple(value)) if kind == "any" else MatchExcept(tuple(value))
    if kind in ("text", "phrase", "text_any"):
        if not isinstance(value, str):
            raise _err(f"{path}.{kind}", "expected a string")
        return MatchText(value, phrase=kind == "phrase")
    raise _err(path, f"unknown match kind {kind!r}")


def _values_count(raw: Any, path: str) -> ValuesCount:
    if not isinstance(raw, Mapping) or set(raw) - {"gt", "gte", "lt", "lte"}:
        raise _err(path, "expected an object with gt / gte / lt / lte")
    out = {}
    for k, v in raw.items():
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise _err(f"{path}.{k}", "expected a non-negative integer")
        out[k] = v
    return ValuesCount(**out)


def _field(raw: Mapping[str, Any], path: str) -> FieldCondition:
    key = raw["key"]
    if not isinstance(key, str) or not key:
        raise _err(f"{path}.key", "expected a non-empty payload key")
    checks = [k for k in raw if k != "key" and raw[k] is not None]
    if len(checks) != 1:
        raise _err(
            path,
            f"field condition on {key!r} needs exactly one of match, range, geo_radius, "
            f"geo_bounding_box, geo_polygon, values_count (got {sorted(checks)})",
        )
    kind = checks[0]
    body = raw[kind]
    sub = f"{path}.{kind}"
    if kind == "match":
        return FieldCondition(key, _match(body, sub))
    if kind == "range":
        return FieldCondition(key, _range(body, sub))
    if kind == "datetime_range":
        rng = _range(body, sub)
        if not rng.datetime and any(b is not None for b in (rng.gt, rng.gte, rng.lt, rng.lte)):
            raise _err(sub, "datetime_range bounds must be RFC 3339 strings")
        return FieldCondition(key, Range(rng.gt, rng.gte, rng.lt, rng.lte, datetime=True))
    if kind == "geo_radius":
        if not isinstance(body, Mapping) or "center" not in body or "radius" not in body:
            raise _err(sub, "expected {center: {lat, lon}, radius}")
        lat, lon = _geo_point(body["center"], f"{sub}.center")
        radius = _number(body["radius"], f"{sub}.radius")
        if radius < 0:
            raise _err(f"{sub}.radius", "must not be negative")
        return FieldCondition(key, GeoRadius(lat, lon, radius))
    if kind == "geo_bounding_box":
        if not isinstance(body, Mapping) or "top_left" not in body or "bottom_right" not in body:
            raise _err(sub, "expected {top_left, bottom_right}")
        top, left = _geo_point(body["top_left"], f"{sub}.top_left")
        bottom, right = _geo_point(body["bottom_right"], f"{sub}.bottom_right")
        return FieldCondition(key, GeoBox(top, left, bottom, right))
    if kind == "geo_polygon":
        if not isinstance(body, Mapping) or "exterior" not in body:
            raise _err(sub, "expected {exterior, interiors}")
        interiors = tuple(
            _ring(r, f"{sub}.interiors[{i}]") for i, r in enumerate(body.get("interiors") or [])
        )
        return FieldCondition(key, GeoPolygon(_ring(body["exterior"], f"{sub}.exterior"), interiors))
    if kind == "values_count":
        return FieldCondition(key, _values_count(body, sub))
    raise _err(path, f"unknown field condition {kind!r}")


def _key_only(body: Any, path: str) -> str:
    if not isinstance(body, Mapping) or not isinstance(body.get("key"), str):
        raise _err(path, "expected {key}")
    return str(body["key"])


def parse_condition(raw: Any, path: str) -> Condition:
    if not isinstance(raw, Mapping):
        raise _err(path, f"expected a condition object, got {raw!r}")
    if "key" in raw:
        return _field(raw, path)
    if raw.keys() <= FILTER_KEYS:
        return parse_filter(raw, path)
    if len(raw) != 1:
        raise _err(path, f"unknown condition with keys {sorted(raw)}")
    kind, body = next(iter(raw.items()))
    if kind == "is_empty":
        return IsEmpty(_key_only(body, f"{path}.is_empty"))
    if kind == "is_null":
        return IsNull(_key_only(body, f"{path}.is_null"))
    if kind == "has_id":
        if not isinstance(body, list):
            raise _err(f"{path}.has_id", "expected a list of point ids")
        return HasId(frozenset(parse_point_id(v, f"{path}.has_id[{i}]") for i, v in enumerate(body)))
    if kind == "has_vector":
        if not isinstance(body, str):
            raise _err(f"{path}.has_vector", "expected a vector name")
        return HasVector(body)
    if kind == "nested":
        if not isinstance(body, Mapping) or not isinstance(body.get("key"), str) or "filter" not in body:
            raise _err(f"{path}.nested", "expected {key, filter}")
        inner = parse_filter(body["filter"], f"{path}.nested.filter")
        _no_has_id(inner, f"{path}.nested.filter")
        return Nested(body["key"], inner)
    if kind == "filter":
        return parse_filter(body, f"{path}.filter")
    raise _err(path, f"unknown condition {kind!r}")


def _no_has_id(flt: Filter, path: str) -> None:
    for cond in (
        *flt.must,
        *flt.should,
        *flt.must_not,
        *(flt.min_should.conditions if flt.min_should else ()),
    ):
        if isinstance(cond, HasId):
            raise _err(path, "has_id is not allowed inside a nested filter")
        if isinstance(cond, Filter):
            _no_has_id(cond, path)


def _clauses(raw: Any, path: str) -> tuple[Condition, ...]:
    if raw is None:
        return ()
    if isinstance(raw, Mapping):
        return (parse_condition(raw, path),)
    if not isinstance(raw, list):
        raise _err(path, "expected a condition or a list of conditions")
    return tuple(parse_condition(c, f"{path}[{i}]") for i, c in enumerate(raw))


def parse_filter(raw: Any, path: str = "filter") -> Filter:
    if raw is None:
        return Filter()
    if not isinstance(raw, Mapping):
        raise _err(path, f"expected a filter object, got {raw!r}")
    unknown = set(raw) - FILTER_KEYS
    if unknown:
        raise _err(
            path, f"unknown field {sorted(unknown)[0]!r}; a filter takes must, should, must_not, min_should"
        )
    min_should = None
    ms = raw.get("min_should")
    if ms is not None:
        if not isinstance(ms, Mapping) or "conditions" not in ms or "min_count" not in ms:
            raise _err(f"{path}.min_should", "expected {conditions, min_count}")
        count = ms["min_count"]
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise _err(f"{path}.min_should.min_count", "expected a non-negative integer")
        min_should = MinShould(_clauses(ms["conditions"], f"{path}.min_should.conditions"), count)
    return Filter(
        must=_clauses(raw.get("must"), f"{path}.must"),
        should=_clauses(raw.get("should"), f"{path}.should"),
        must_not=_clauses(raw.get("must_not"), f"{path}.must_not"),
        min_should=min_should,
    )
