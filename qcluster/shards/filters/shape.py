"""The shape of filter JSON (nesting depth, number of conditions), measured without recursion.

The parser, the evaluators and the planner walk a filter recursively, a few stack frames per
level, so a filter nested deeply enough would exhaust the stack. :func:`filter_shape` is the
check that runs first: an iterative walk over the raw JSON that stops as soon as a bound is
passed, so even a hostile filter costs no more than the bound to measure. It looks only at the
structure (``must`` / ``should`` / ``must_not`` / ``min_should.conditions`` / ``nested.filter``);
everything else about the filter is the parser's business.

Depth: the top-level filter is level 1; a condition that is itself a filter, or a ``nested``
condition's inner filter, is one level deeper. Conditions: every item of every clause list, at
every level (a filter used as a condition counts as one, plus its own items), and every vertex
of a ``geo_polygon`` (a point is tested against each edge, so a polygon costs like that many
conditions).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

FILTER_KEYS = frozenset({"must", "should", "must_not", "min_should"})
# Above this nesting the recursive parser and evaluators would come near Python's recursion
# limit (about 4 frames per level, with the request's own frames below): every filter, including
# the ones the query engine builds by wrapping request filters, is refused beyond it.
STACK_SAFE_DEPTH = 160


@dataclass(frozen=True, slots=True)
class FilterShape:
    depth: int
    conditions: int


def is_map(raw: Any) -> TypeGuard[Mapping[str, Any]]:
    """``isinstance(raw, Mapping)``, with JSON's plain dict answered without the ABC check (the
    parsers ask this of every node; the ABC check costs several times a type comparison)."""
    return type(raw) is dict or isinstance(raw, Mapping)


def _clauses(flt: Mapping[str, Any]) -> list[Any]:
    items: list[Any] = []
    for key in ("must", "should", "must_not"):
        raw = flt.get(key)
        if isinstance(raw, list):
            items.extend(raw)
        elif is_map(raw):
            items.append(raw)
    ms = flt.get("min_should")
    if is_map(ms) and isinstance(ms.get("conditions"), list):
        items.extend(ms["conditions"])
    return items


def _inner_filter(cond: Any) -> Mapping[str, Any] | None:
    """The filter one level down from condition ``cond``, if it opens one."""
    if not is_map(cond):
        return None
    nested = cond.get("nested")
    if is_map(nested) and "key" not in cond:
        inner = nested.get("filter")
        return inner if is_map(inner) else None
    if "key" not in cond and all(k in FILTER_KEYS for k in cond):
        return cond
    return None


def _polygon_vertices(cond: Any) -> int:
    poly = cond.get("geo_polygon") if is_map(cond) and "key" in cond else None
    if not is_map(poly):
        return 0
    rings = [poly.get("exterior")]
    interiors = poly.get("interiors")
    if isinstance(interiors, list):
        rings += interiors
    return sum(len(r["points"]) for r in rings if is_map(r) and isinstance(r.get("points"), list))


def filter_shape(raw: Any, max_depth: int, max_conditions: int) -> FilterShape:
    """Depth and condition count of filter JSON ``raw``; the walk stops once either passes its
    bound (the returned figure is then just above the bound, not the full count)."""
    if not is_map(raw):
        return FilterShape(0, 0)
    depth, conditions = 1, 0
    stack: list[tuple[Mapping[str, Any], int]] = [(raw, 1)]
    while stack:
        flt, level = stack.pop()
        for cond in _clauses(flt):
            conditions += 1 + _polygon_vertices(cond)
            if conditions > max_conditions:
                return FilterShape(depth, conditions)
            inner = _inner_filter(cond)
            if inner is not None:
                depth = max(depth, level + 1)
                if depth > max_depth:
                    return FilterShape(depth, conditions)
                stack.append((inner, level + 1))
    return FilterShape(depth, conditions)
