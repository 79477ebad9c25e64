"""The planner's index-only view of a filter (``filters/select.py``): offsets listed from payload
indexes equal the evaluator's mask, budgets are honoured, estimates bound the truth, and the
index hooks behind them (posting sizes, sorted-value counts) agree with masks."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from qcluster.shards.filters import Filter, evaluate, parse_filter
from qcluster.shards.filters import select as selection
from qcluster.shards.filters.view import PayloadView
from qcluster.shards.payload_index.postings import sorted_union

N = 400


def _view(seed: int) -> PayloadView:
    rng = np.random.default_rng(seed)
    payloads: list[dict[str, Any] | None] = []
    for i in range(N):
        p: dict[str, Any] = {
            "color": ["red", "green", "blue", "gray"][int(rng.integers(0, 4))],
            "n": int(rng.integers(0, 50)),
            "x": float(rng.random()),
        }
        if i % 7 == 0:
            p["color"] = ["red", "blue"]  # several values: a point in two posting lists
        if i % 11 == 0:
            p["n"] = [int(rng.integers(0, 50)), int(rng.integers(0, 50))]
        if i % 13 == 0:
            p["x"] = "not a number"  # a value of another type in a float index
        if i % 29 == 0:
            p = None  # type: ignore[assignment]
        payloads.append(p)
    view = PayloadView(payloads)
    view.add_index("color", "keyword")
    view.add_index("n", "integer")
    view.add_index("x", "float")
    return view


def _leaf(rng: np.random.Generator) -> dict[str, Any]:
    kind = int(rng.integers(0, 6))
    if kind == 0:
        return {
            "key": "color",
            "match": {"value": ["red", "green", "blue", "gray", "pink"][int(rng.integers(0, 5))]},
        }
    if kind == 1:
        return {"key": "color", "match": {"any": ["red", "gray"][: int(rng.integers(1, 3))]}}
    if kind == 2:
        lo = int(rng.integers(0, 50))
        return {"key": "n", "range": {"gte": lo, "lt": lo + int(rng.integers(1, 20))}}
    if kind == 3:
        return {"key": "n", "match": {"any": [int(v) for v in rng.integers(0, 50, 3)]}}
    if kind == 4:
        return {"key": "x", "range": {"lt": float(rng.random())}}
    return {"has_id": [int(v) for v in rng.integers(0, N, 5)]}


def _filter(rng: np.random.Generator, depth: int = 0) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for clause in ("must", "should", "must_not"):
        if rng.random() < (0.8 if clause == "must" else 0.35):
            parts = []
            for _ in range(int(rng.integers(1, 3))):
                parts.append(_filter(rng, depth + 1) if depth < 1 and rng.random() < 0.25 else _leaf(rng))
            out[clause] = parts
    return out or {"must": [_leaf(rng)]}


@pytest.mark.parametrize("seed", range(6))
def test_offsets_equal_the_evaluated_mask(seed: int) -> None:
    view = _view(seed)
    rng = np.random.default_rng(100 + seed)
    listed = 0
    for _ in range(60):
        flt = parse_filter(_filter(rng))
        want = np.flatnonzero(evaluate(flt, view))
        got = selection.offsets(flt, view, N)
        if got is None:
            continue
        listed += 1
        assert got.tolist() == want.tolist(), flt
        budget = int(rng.integers(0, N))
        capped = selection.offsets(flt, view, N, budget)
        assert capped is None or capped.tolist() == want.tolist()
    assert listed >= 30  # most generated filters are index-answerable


@pytest.mark.parametrize("seed", range(4))
def test_member_equals_the_evaluated_mask_on_any_offsets(seed: int) -> None:
    view = _view(seed)
    rng = np.random.default_rng(300 + seed)
    answered = 0
    for _ in range(60):
        flt = parse_filter(_filter(rng))
        want = evaluate(flt, view)
        offsets = np.unique(rng.integers(0, N, int(rng.integers(0, 200))))
        got = selection.member(flt, view, offsets)
        if got is None:
            continue
        answered += 1
        assert got.tolist() == want[offsets].tolist(), flt
    assert answered >= 12  # many generated filters are answered by index lookups


def _negates(flt: Any) -> bool:
    if not isinstance(flt, Filter):
        return False
    return bool(flt.must_not) or any(_negates(c) for c in (*flt.must, *flt.should))


@pytest.mark.parametrize("seed", range(4))
def test_estimates_bound_the_truth(seed: int) -> None:
    view = _view(seed)
    rng = np.random.default_rng(200 + seed)
    for _ in range(60):
        flt = parse_filter(_filter(rng))
        est = selection.estimate(flt, view, N)
        if est is None:
            continue
        truth = int(np.count_nonzero(evaluate(flt, view)))
        lo, exp, hi = est
        assert lo <= exp <= hi
        # leaf counts include points with several values more than once, and HasId counts ids:
        # the upper bound holds for filters without must_not (a complement flips the over-count)
        if not _negates(flt):
            assert truth <= hi, (flt, est, truth)


def test_budget_is_checked_before_gathering() -> None:
    view = _view(0)
    idx = view.field_index("n")
    assert idx is not None
    wide = parse_filter({"must": [{"key": "n", "range": {"gte": 0}}]}).must[0]
    narrow = parse_filter({"must": [{"key": "n", "match": {"value": 7}}]}).must[0]
    assert idx.offsets(wide, N, budget=10) is None  # type: ignore[arg-type]
    got = idx.offsets(narrow, N, budget=N)  # type: ignore[arg-type]
    want = idx.mask(narrow, N)  # type: ignore[arg-type]
    assert got is not None and want is not None
    assert got.tolist() == np.flatnonzero(want).tolist()
    assert idx.estimate(narrow) == len(got)  # type: ignore[arg-type]


def test_sorted_union_is_a_sorted_set_union() -> None:
    rng = np.random.default_rng(1)
    for size in (50, 5000):
        arrays = [np.sort(rng.choice(size, int(rng.integers(0, 40)), replace=False)) for _ in range(4)]
        got = sorted_union([a.astype(np.int64) for a in arrays], size)
        want = np.unique(np.concatenate(arrays)) if arrays else np.empty(0)
        assert got.tolist() == want.tolist()


def test_member_lookups_equal_the_mask() -> None:
    rng = np.random.default_rng(4)
    payloads: list[dict[str, Any] | None] = [
        {"price": int(rng.integers(0, 1000)), "f": float(rng.random()), "k": f"v{int(rng.integers(0, 9))}"}
        for _ in range(N)
    ]
    view = PayloadView(payloads)
    for key, schema in (("price", "integer"), ("f", "float"), ("k", "keyword")):
        view.add_index(key, schema)
    conds = [
        {"key": "price", "range": {"gte": 100, "lt": 300}},
        {"key": "price", "match": {"any": [5, 17, 999]}},
        {"key": "f", "range": {"gt": 0.25, "lte": 0.5}},
        {"key": "k", "match": {"value": "v3"}},
        {"key": "k", "match": {"any": ["v1", "v8"]}},
    ]
    offsets = np.sort(rng.choice(N + 50, 120, replace=False)).astype(np.int64)  # some past the end
    for raw in conds:
        c = parse_filter({"must": [raw]}).must[0]
        idx = view.field_index(raw["key"])
        assert idx is not None
        got = idx.member(c, offsets)  # type: ignore[arg-type]
        mask = idx.mask(c, N + 50)  # type: ignore[arg-type]
        assert got is not None and mask is not None, raw
        assert got.tolist() == mask[offsets].tolist(), raw
    view.set_payload(3, {"price": 150})  # a change since the build: per-offset lookups defer to masks
    c = parse_filter({"must": [conds[0]]}).must[0]
    price = view.field_index("price")
    assert price is not None
    assert price.member(c, offsets) is None  # type: ignore[arg-type]


def test_member_leaves_many_values_to_a_mask() -> None:
    """A match on many values would cost a binary search per value: marking their postings in a
    mask is cheaper, so per-offset lookups decline (None) and the caller builds the mask."""
    payloads: list[dict[str, Any] | None] = [{"k": f"v{i % 40}"} for i in range(N)]
    view = PayloadView(payloads)
    view.add_index("k", "keyword")
    idx = view.field_index("k")
    assert idx is not None
    offsets = np.arange(0, N, 7, dtype=np.int64)
    few = parse_filter({"must": [{"key": "k", "match": {"any": ["v1", "v2"]}}]}).must[0]
    many = parse_filter({"must": [{"key": "k", "match": {"any": [f"v{i}" for i in range(30)]}}]}).must[0]
    got = idx.member(few, offsets)  # type: ignore[arg-type]
    assert got is not None and got.tolist() == [int(o) % 40 in (1, 2) for o in offsets]
    assert idx.member(many, offsets) is None  # type: ignore[arg-type]


def test_range_lookups_on_unsorted_far_and_empty_offsets() -> None:
    """Per-offset range lookups (``SortedValues.contains``) in any order, past the largest
    indexed offset, at offsets without a value, and on an index holding no values at all."""
    rng = np.random.default_rng(8)
    payloads: list[dict[str, Any] | None] = [
        None if i % 5 == 0 else {"price": int(rng.integers(0, 100))} for i in range(N)
    ]
    view = PayloadView(payloads)
    view.add_index("price", "integer")
    idx = view.field_index("price")
    assert idx is not None
    offsets = rng.permutation(N + 40)[:150].astype(np.int64)  # unsorted, some past the end
    for bounds in ({"gte": 10, "lt": 60}, {"gt": 90}, {"lte": 0}, {"gt": 50, "lt": 20}):
        c = parse_filter({"must": [{"key": "price", "range": bounds}]}).must[0]
        got = idx.member(c, offsets)  # type: ignore[arg-type]
        mask = idx.mask(c, N + 40)  # type: ignore[arg-type]
        assert got is not None and mask is not None
        assert got.tolist() == mask[offsets].tolist(), bounds
    empty = PayloadView([{"other": 1} for _ in range(20)])
    empty.add_index("price", "integer")
    none = empty.field_index("price")
    assert none is not None
    c = parse_filter({"must": [{"key": "price", "range": {"gte": 0}}]}).must[0]
    got = none.member(c, np.arange(25, dtype=np.int64))  # type: ignore[arg-type]
    assert got is not None and not got.any() and len(got) == 25
