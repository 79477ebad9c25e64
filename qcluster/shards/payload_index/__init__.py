"""Payload indexes: keyword, integer, float, bool, geo, text, datetime, uuid.

One index covers one key of one segment. Every index answers the conditions it can with numpy
masks that equal the reference evaluator's answer exactly (``base.py`` explains how values of
other types are kept so that this holds); for the rest ``mask`` returns None and the evaluator
scans payloads.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from qcluster.shards.filters.conditions import (
    Check,
    FieldCondition,
    GeoBox,
    GeoPolygon,
    GeoRadius,
    IsEmpty,
    IsNull,
    MatchAny,
    MatchExcept,
    MatchPrefix,
    MatchText,
    MatchValue,
    Range,
)
from qcluster.shards.payload_index.base import FieldIndex
from qcluster.shards.payload_index.geo import GeoIndex
from qcluster.shards.payload_index.inverted import BoolIndex, KeywordIndex, UuidIndex
from qcluster.shards.payload_index.numeric import DatetimeIndex, FloatIndex, IntegerIndex
from qcluster.shards.payload_index.schema import FieldSchema, parse_field_schema
from qcluster.shards.payload_index.text import TextAnalyzer, TextIndex

_KINDS: dict[str, type[FieldIndex]] = {
    "keyword": KeywordIndex,
    "integer": IntegerIndex,
    "float": FloatIndex,
    "bool": BoolIndex,
    "geo": GeoIndex,
    "text": TextIndex,
    "datetime": DatetimeIndex,
    "uuid": UuidIndex,
}
RANGE_KINDS = ("integer", "float", "datetime")
FACET_KINDS = ("keyword", "integer", "bool", "uuid")


def build_index(
    key: str, schema: FieldSchema, payloads: Iterable[tuple[int, dict[str, Any] | None]] = ()
) -> FieldIndex:
    """An index of ``schema``'s type on ``key`` over ``payloads`` (offset, payload) (BadInputError
    if ``key`` is not a valid path)."""
    index = _KINDS[schema.type](key, schema)
    for offset, payload in payloads:
        if payload is not None:
            index.add(offset, payload)
    return index


def _needs(check: Check) -> tuple[tuple[str, ...], str]:
    """The index types that serve ``check`` and how to name the check in a message."""
    if isinstance(check, MatchValue):
        v = check.value
        if isinstance(v, bool):
            return ("bool",), "a match on a bool"
        if isinstance(v, int):
            return ("integer",), "a match on an integer"
        return ("keyword", "uuid"), "a match on a keyword"
    if isinstance(check, MatchAny | MatchExcept):
        items = check.any if isinstance(check, MatchAny) else check.values
        what = "any" if isinstance(check, MatchAny) else "except"
        if items and not isinstance(items[0], str):
            return ("integer",), f"a match {what} on integers"
        return ("keyword", "uuid"), f"a match {what} on keywords"
    if isinstance(check, MatchText):
        return ("text",), f"a full-text {check.mode} match"
    if isinstance(check, MatchPrefix):
        return ("keyword",), "a prefix match"
    if isinstance(check, Range):
        if check.datetime:
            return ("datetime",), "a datetime range"
        return ("integer", "float"), "a range"
    if isinstance(check, GeoRadius | GeoBox | GeoPolygon):
        return ("geo",), "a geo condition"
    return tuple(_KINDS), "this condition"


def condition_type_error(
    schema: FieldSchema, condition: FieldCondition | IsEmpty | IsNull | Check
) -> str | None:
    """Why an index of ``schema`` is the wrong type for ``condition`` (None when it fits).

    Used to reject requests that name an index which cannot serve them (for example a range on a
    keyword index) instead of silently scanning. is_empty / is_null / values_count fit any index.
    """
    if isinstance(condition, IsEmpty | IsNull):
        return None
    check = condition.check if isinstance(condition, FieldCondition) else condition
    kinds, what = _needs(check)
    if schema.type not in kinds:
        return f"{what} needs an index of type {' or '.join(kinds)}, but the key's index is {schema.type}"
    if schema.type == "integer":
        if isinstance(check, Range) and not schema.flag("range", True):
            return f"{what} needs an integer index with range enabled (it has range: false)"
        if not isinstance(check, Range) and not schema.flag("lookup", True):
            return f"{what} needs an integer index with lookup enabled (it has lookup: false)"
    if isinstance(check, MatchText) and check.mode == "phrase" and not schema.flag("phrase_matching", False):
        return "a phrase match needs a text index created with phrase_matching: true"
    return None


__all__ = [
    "FACET_KINDS",
    "RANGE_KINDS",
    "BoolIndex",
    "DatetimeIndex",
    "FieldIndex",
    "FieldSchema",
    "FloatIndex",
    "GeoIndex",
    "IntegerIndex",
    "KeywordIndex",
    "TextAnalyzer",
    "TextIndex",
    "UuidIndex",
    "build_index",
    "condition_type_error",
    "parse_field_schema",
]
