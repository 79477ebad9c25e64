"""The commonest filters parsed without the general parser's walk.

Most filters a search carries are a flat list of field conditions: ``match`` on one value or on a
list of values, ``range`` on numbers, under ``must`` / ``should`` / ``must_not``. The general
parser (``parse.py``) checks each node against every kind it may be, builds the path of every
field for its error messages and dispatches per kind: on a filter that changes with every query
that walk costs more than answering the query from the payload indexes.

``simple_filter`` recognises exactly that shape, with plain JSON types only (``dict``, ``list``,
``str``, ``int``, ``float``, ``bool``), and builds the same condition tree the general parser
builds for it. Anything else, including anything the general parser would refuse, is not its
business: it returns None and the general parser decides (so every error is still the general
parser's, naming the field).
"""

from __future__ import annotations

from typing import Any

from qcluster.shards.filters.conditions import Check, FieldCondition, Filter, MatchAny, MatchValue, Range
from qcluster.shards.filters.paths import try_parse_path

I64_MIN, I64_MAX = -(2**63), 2**63 - 1
_CLAUSES = frozenset({"must", "should", "must_not"})
_BOUNDS = frozenset({"gt", "gte", "lt", "lte"})


def simple_filter(raw: Any) -> Filter | None:
    """The parse of a flat filter of simple field conditions; None for any other filter."""
    if type(raw) is not dict or not raw.keys() <= _CLAUSES:
        return None
    parts: dict[str, tuple[FieldCondition, ...]] = {}
    for clause, items in raw.items():
        if items is None:
            continue
        if type(items) is not list:
            return None
        conds = []
        for item in items:
            cond = _field(item)
            if cond is None:
                return None
            conds.append(cond)
        parts[clause] = tuple(conds)
    return Filter(
        must=parts.get("must", ()), should=parts.get("should", ()), must_not=parts.get("must_not", ())
    )


def _field(item: Any) -> FieldCondition | None:
    if type(item) is not dict or len(item) != 2:
        return None
    key = item.get("key")
    if type(key) is not str:
        return None
    check: Check | None
    if "range" in item:
        check = _range(item["range"])
    elif "match" in item:
        check = _match(item["match"])
    else:
        return None
    if check is None:
        return None
    path = try_parse_path(key)
    return None if path is None else FieldCondition(key, path, check)


def _int64(v: Any) -> bool:
    return type(v) is int and I64_MIN <= v <= I64_MAX


def _range(body: Any) -> Range | None:
    if type(body) is not dict or not body.keys() <= _BOUNDS:
        return None
    bounds: dict[str, float] = {}
    for k, v in body.items():
        if _int64(v):
            bounds[k] = float(v)
        elif type(v) is float and v == v:  # (NaN is refused by the general parser)
            bounds[k] = v
        elif v is not None:
            return None
    return Range(bounds.get("gt"), bounds.get("gte"), bounds.get("lt"), bounds.get("lte"))


def _match(body: Any) -> MatchValue | MatchAny | None:
    if type(body) is not dict or len(body) != 1:
        return None
    if "value" in body:
        v = body["value"]
        return MatchValue(v) if type(v) is str or type(v) is bool or _int64(v) else None
    values = body.get("any")
    if type(values) is not list or not values:
        return None
    if all(type(v) is str for v in values) or all(_int64(v) for v in values):
        return MatchAny(tuple(values))
    return None
