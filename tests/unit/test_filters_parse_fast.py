"""The shortcut parser for flat filters (``parse_fast.simple_filter``) against the general parser
on random filter JSON, valid and not: whenever the shortcut answers, the general parser accepts
the filter and builds an equal tree; whatever the general parser refuses, the shortcut leaves to
it (so every error is still the general parser's)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from qcluster.errors import QClusterError
from qcluster.shards.filters.conditions import FieldCondition, MatchAny, Range
from qcluster.shards.filters.parse import _parse_filter, parse_filter
from qcluster.shards.filters.parse_fast import simple_filter

SCALARS: list[Any] = [
    "red", "", 0, 7, -3, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1, True, False, 1.5, -0.0,
    float("nan"), float("inf"), None, [1], {"a": 1},
]  # fmt: skip


def _pick(rng: np.random.Generator, items: list[Any]) -> Any:
    return items[int(rng.integers(0, len(items)))]


def _value_list(rng: np.random.Generator) -> Any:
    kind = int(rng.integers(0, 5))
    n = int(rng.integers(0, 4))
    if kind == 0:
        return [f"v{int(rng.integers(0, 9))}" for _ in range(n)]
    if kind == 1:
        return [int(rng.integers(-5, 5)) for _ in range(n)]
    if kind == 2:
        return [_pick(rng, SCALARS) for _ in range(n)]
    return _pick(rng, SCALARS)


def _check(rng: np.random.Generator) -> tuple[str, Any]:
    kind = int(rng.integers(0, 6))
    if kind <= 1:
        body: dict[str, Any] = {}
        for b in ("gt", "gte", "lt", "lte"):
            if rng.random() < 0.4:
                body[b] = _pick(rng, SCALARS) if rng.random() < 0.4 else float(rng.integers(0, 100))
        if rng.random() < 0.1:
            body["above"] = 1
        return "range", body if rng.random() < 0.95 else _pick(rng, SCALARS)
    if kind == 2:
        return "match", {"value": _pick(rng, SCALARS)}
    if kind == 3:
        body = {"any": _value_list(rng)}
        if rng.random() < 0.15:
            body["value"] = _pick(rng, [None, 1, "x"])
        return "match", body
    if kind == 4:
        return "match", {"except": _value_list(rng)} if rng.random() < 0.5 else {"text": "a b"}
    return _pick(rng, ["values_count", "is_empty", "geo_radius"]), {"gt": 1}


def _condition(rng: np.random.Generator) -> Any:
    r = rng.random()
    if r < 0.05:
        return _pick(rng, SCALARS)
    if r < 0.1:
        return {"has_id": [1, 2]}
    if r < 0.15:
        return {"must": [{"key": "a", "match": {"value": 1}}]}  # a filter as a condition
    cond: dict[str, Any] = {"key": _pick(rng, ["a", "b.c", "d[]", "a b", "", "e[x]", 5, None])}
    kind, body = _check(rng)
    cond[kind] = body
    if rng.random() < 0.1:
        cond[_pick(rng, ["match", "range", "extra"])] = {"value": 1}
    return cond


def _filter(rng: np.random.Generator) -> Any:
    if rng.random() < 0.03:
        return _pick(rng, SCALARS)
    out: dict[str, Any] = {}
    for clause in ("must", "should", "must_not", "min_should", "mustt"):
        p = 0.7 if clause == "must" else 0.3 if clause in ("should", "must_not") else 0.04
        if rng.random() < p:
            r = rng.random()
            if r < 0.08:
                out[clause] = None
            elif r < 0.14:
                out[clause] = _condition(rng)  # one condition, not a list
            else:
                out[clause] = [_condition(rng) for _ in range(int(rng.integers(0, 4)))]
    return out


@pytest.mark.parametrize("seed", range(4))
def test_the_shortcut_agrees_with_the_general_parser(seed: int) -> None:
    rng = np.random.default_rng(seed)
    answered = refused = 0
    for _ in range(1500):
        raw = _filter(rng)
        fast = simple_filter(raw)
        try:
            general = _parse_filter(raw, "filter")
        except QClusterError:
            assert fast is None, raw  # refused filters are left to the general parser's error
            refused += 1
            continue
        if fast is not None:
            assert fast == general, raw
            assert repr(fast) == repr(general), raw  # same types too (1 vs 1.0 vs True)
            answered += 1
    assert answered >= 150 and refused >= 150  # both sides of the shortcut are exercised


def test_the_shortcut_builds_the_documented_tree() -> None:
    raw = {
        "must": [{"key": "price", "range": {"gte": 5, "lt": 7.5}}],
        "should": [{"key": "tag", "match": {"any": ["a", "b"]}}],
        "must_not": [{"key": "n", "match": {"value": 3}}],
    }
    flt = simple_filter(raw)
    assert flt is not None and flt == parse_filter(raw)
    (price,) = flt.must
    assert isinstance(price, FieldCondition) and price.path == ("price",)
    assert price.check == Range(gte=5.0, lt=7.5)
    tag = flt.should[0]
    assert isinstance(tag, FieldCondition) and isinstance(tag.check, MatchAny)
    assert tag.check.lookup == frozenset({"a", "b"})  # the lookup set the evaluators use
    assert simple_filter({"must": [{"key": "p", "range": {"gt": float("nan")}}]}) is None
    assert simple_filter({"min_should": {"conditions": [], "min_count": 1}}) is None
