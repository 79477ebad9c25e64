"""Qdrant's filter language: parsing, the reference semantics, vectorised evaluation, estimates.

Modules: ``parse`` (JSON -> condition tree, validation), ``conditions`` (the tree), ``paths`` (key
paths), ``checks`` (what each field check means), ``datetimes``, ``geo``, ``reference`` (the plain
per-point evaluator that defines the semantics), ``evaluate`` (numpy masks over a segment, using
payload indexes), ``estimate`` (cardinality for the planner).
"""

from __future__ import annotations

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


__all__ = [
    "Evaluator",
    "Filter",
    "SegmentView",
    "estimate_cardinality",
    "evaluate",
    "filter_keys",
    "matches",
    "parse_condition",
    "parse_filter",
]
