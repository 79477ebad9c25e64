"""Qdrant's filter language: parsing, the reference semantics, vectorised evaluation, estimates.

Modules: ``parse`` (JSON -> condition tree, validation), ``conditions`` (the tree), ``paths`` (key
paths), ``checks`` (what each field check means), ``datetimes``, ``geo``, ``reference`` (the plain
per-point evaluator that defines the semantics), ``evaluate`` (numpy masks over a segment, using
payload indexes), ``estimate`` (cardinality for the planner).
"""

from __future__ import annotations

from typing import Any

from qcluster.shards.filters.conditions import (
    Condition,
    FieldCondition,
    Filter,
    IsEmpty,
    IsNull,
    Nested,
    children,
)
from qcluster.shards.filters.estimate import estimate_cardinality
from qcluster.shards.filters.evaluate import Evaluator, SegmentView, evaluate
from qcluster.shards.filters.parse import parse_condition, parse_filter
from qcluster.shards.filters.reference import matches


def filter_keys(flt: Condition) -> set[str]:
    """Payload keys the filter reads (nested inner keys as ``key[].inner``)."""
    out: set[str] = set()
    if isinstance(flt, Filter):
        for c in children(flt):
            out |= filter_keys(c)
    elif isinstance(flt, Nested):
        out.add(flt.key)
        out |= {f"{flt.array_key}.{k}" for k in filter_keys(flt.filter)}
    elif isinstance(flt, FieldCondition | IsEmpty | IsNull):
        out.add(flt.key)
    return out


def check_index_types(flt: Condition, schemas: dict[str, Any]) -> None:
    """Reject a condition that cannot apply to its field's indexed type (a range on a keyword
    index, ...), naming the key: such a query is a mistake, not an empty result."""
    from qcluster.errors import BadInputError
    from qcluster.shards.payload_index import condition_type_error

    def walk(c: Condition, prefix: str) -> None:
        if isinstance(c, Filter):
            for child in children(c):
                walk(child, prefix)
        elif isinstance(c, Nested):
            walk(c.filter, f"{prefix}{c.array_key}.")
        elif isinstance(c, FieldCondition):
            key = prefix + c.key
            schema = schemas.get(key)
            reason = None if schema is None else condition_type_error(schema, c)
            if reason is not None:
                raise BadInputError(f"filter on `{key}`: {reason}", key)

    walk(flt, "")


__all__ = [
    "Evaluator",
    "Filter",
    "SegmentView",
    "check_index_types",
    "estimate_cardinality",
    "evaluate",
    "filter_keys",
    "matches",
    "parse_condition",
    "parse_filter",
]
