"""Qdrant's gRPC ``Filter`` -> the filter JSON the REST API takes (and the shards compile), so
both surfaces share one filter parser, its checks and its error messages.

Shapes that differ between the two: a gRPC condition is a oneof (``field`` / ``is_empty`` /
``has_id`` / ``filter`` / ``is_null`` / ``nested`` / ``has_vector``); a gRPC ``Match`` names its
kind (``keyword`` / ``integer`` / ``boolean`` -> ``value``, ``keywords`` / ``integers`` -> ``any``,
``except_*`` -> ``except``); ``datetime_range`` is REST's ``range`` with RFC 3339 bounds. Every
check a ``FieldCondition`` sets is passed on, so the shared parser refuses more than one as it does
for REST. Kinds qcluster lacks (``slice``, ``substring``) pass through under their own names and
are refused by the parser, naming them.
"""

from __future__ import annotations

from typing import Any

from qcluster.api.public_grpc.values import point_ids, timestamp_text
from qcluster.api.public_grpc.wire import pb

_BOUNDS = ("lt", "gt", "gte", "lte")
_MATCH_SCALAR = {
    "keyword": "value",
    "integer": "value",
    "boolean": "value",
    "text": "text",
    "phrase": "phrase",
    "text_any": "text_any",
    "prefix": "prefix",
    "substring": "substring",
}


def filter_json(f: pb.Filter) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("must", "should", "must_not"):
        conditions = getattr(f, key)
        if conditions:
            out[key] = [condition_json(c) for c in conditions]
    if f.HasField("min_should"):
        ms = f.min_should
        out["min_should"] = {
            "conditions": [condition_json(c) for c in ms.conditions],
            "min_count": ms.min_count,
        }
    return out


def optional_filter(msg: Any, field: str = "filter") -> dict[str, Any] | None:
    """The filter in ``msg.<field>`` when it is set, else None (no filter: every point)."""
    return filter_json(getattr(msg, field)) if msg.HasField(field) else None


def condition_json(c: pb.Condition) -> dict[str, Any]:
    kind = c.WhichOneof("condition_one_of")
    if kind == "field":
        return _field_json(c.field)
    if kind == "is_empty":
        return {"is_empty": {"key": c.is_empty.key}}
    if kind == "is_null":
        return {"is_null": {"key": c.is_null.key}}
    if kind == "has_id":
        return {"has_id": point_ids(c.has_id.has_id, "has_id")}
    if kind == "filter":
        return filter_json(c.filter)
    if kind == "nested":
        return {"nested": {"key": c.nested.key, "filter": filter_json(c.nested.filter)}}
    if kind == "has_vector":
        return {"has_vector": c.has_vector.has_vector}
    if kind == "slice":
        return {"slice": {"total": c.slice.total, "index": c.slice.index}}
    return {}  # an empty condition matches every point, like an empty filter


def _bounds(msg: Any, conv: Any = None) -> dict[str, Any]:
    return {b: (conv(getattr(msg, b)) if conv else getattr(msg, b)) for b in _BOUNDS if msg.HasField(b)}


def _geo(p: pb.GeoPoint) -> dict[str, float]:
    return {"lon": p.lon, "lat": p.lat}


def _ring(line: pb.GeoLineString) -> dict[str, Any]:
    return {"points": [_geo(p) for p in line.points]}


def _match_json(m: pb.Match) -> dict[str, Any]:
    kind = m.WhichOneof("match_value")
    if kind in _MATCH_SCALAR:
        return {_MATCH_SCALAR[kind]: getattr(m, kind)}
    if kind == "keywords":
        return {"any": list(m.keywords.strings)}
    if kind == "integers":
        return {"any": list(m.integers.integers)}
    if kind == "except_keywords":
        return {"except": list(m.except_keywords.strings)}
    if kind == "except_integers":
        return {"except": list(m.except_integers.integers)}
    return {}


def _field_json(fc: pb.FieldCondition) -> dict[str, Any]:
    out: dict[str, Any] = {"key": fc.key}
    if fc.HasField("match"):
        out["match"] = _match_json(fc.match)
    if fc.HasField("range"):
        out["range"] = _bounds(fc.range)
    if fc.HasField("datetime_range"):
        out["range"] = _bounds(fc.datetime_range, timestamp_text)
    if fc.HasField("geo_bounding_box"):
        box = fc.geo_bounding_box
        out["geo_bounding_box"] = {"top_left": _geo(box.top_left), "bottom_right": _geo(box.bottom_right)}
    if fc.HasField("geo_radius"):
        out["geo_radius"] = {"center": _geo(fc.geo_radius.center), "radius": fc.geo_radius.radius}
    if fc.HasField("geo_polygon"):
        poly = fc.geo_polygon
        out["geo_polygon"] = {
            "exterior": _ring(poly.exterior),
            "interiors": [_ring(r) for r in poly.interiors],
        }
    if fc.HasField("values_count"):
        out["values_count"] = _bounds(fc.values_count)
    if fc.HasField("is_empty"):
        out["is_empty"] = fc.is_empty
    if fc.HasField("is_null"):
        out["is_null"] = fc.is_null
    return out
