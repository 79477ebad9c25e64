"""Property tests: on random payloads (nested objects, arrays, nulls, mixed types) and random
filters, vectorised evaluation with payload indexes == without indexes == the reference
evaluator, condition by condition and combined, also after payloads change under the indexes.

Each generated case gives every key a dominant value type ("column") plus noise (other types,
nulls, arrays, nested arrays, missing keys), and draws condition values from the same pools, so
that conditions select some points but not all and indexes meet values of the wrong type.
"""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qcluster.shards.filters import estimate_cardinality, evaluate, matches, parse_filter
from qcluster.shards.filters.conditions import Filter
from qcluster.shards.filters.view import PayloadView
from qcluster.shards.payload_index import files

UUID = "f47ac10b-58cc-4372-a567-0e02b2c3d479"
POOLS: dict[str, list[Any]] = {
    "str": ["x", "y", "z", "", UUID, UUID.upper()],
    "text": ["x y", "Y z", "x", "xy yz", "quick brown fox", "brown fox jumps"],
    "int": [0, 1, 2, 3, -1],
    "num": [0, 1, 2.0, 2.5, -1.5, 3],
    "bool": [True, False],
    "geo": [
        {"lat": 52.5, "lon": 13.4},
        {"lat": 52.51, "lon": 13.41},
        {"lat": 52.4, "lon": 13.9},
        {"lat": -10.0, "lon": 170.0},
        {"lat": 0.0},
    ],
    "date": [
        "2024-01-01",
        "2024-01-01T12:00:00+02:00",
        "2023-12-31T23:59:59Z",
        "2024-01-02 00:00",
        "2024-13-01",
    ],
}
COLUMNS = list(POOLS)
ALL_SCALARS = [v for pool in POOLS.values() for v in pool] + [None]
KEYS = ["a", "b", "o.a", "arr[].a", "arr[]", "arr", "arr[0].a", "o.arr[].b"]
NESTED_KEYS = ["arr", "arr[]", "o.arr"]
INNER_KEYS = ["a", "b", "arr[]"]
INDEX_TYPES: list[Any] = [
    "keyword",
    "integer",
    "float",
    "bool",
    "geo",
    "datetime",
    "uuid",
    "text",
    {"type": "text", "tokenizer": "whitespace", "phrase_matching": True, "lowercase": False},
    {"type": "text", "tokenizer": "prefix", "min_token_len": 1, "max_token_len": 3},
    {"type": "integer", "lookup": False},
    {"type": "integer", "range": False},
]
CLAUSES = {"must", "should", "must_not", "min_should"}


# ---------------------------------------------------------------------- payloads
@functools.cache
def column(kind: str) -> st.SearchStrategy[Any]:
    base = st.sampled_from(POOLS[kind])
    noise = st.sampled_from(ALL_SCALARS)
    return st.one_of(
        base,
        base,
        base,
        st.lists(base, max_size=3),
        noise,
        st.lists(st.one_of(base, noise, st.lists(base, max_size=2)), max_size=3),
        st.none(),
    )


MISSING = object()


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.tuples(strategy, st.integers(0, 5)).map(lambda t: MISSING if t[1] == 3 else t[0])


def obj(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({k: maybe(v) for k, v in fields.items()}).map(
        lambda d: {k: v for k, v in d.items() if v is not MISSING}
    )


@functools.cache
def payloads(col_a: str, col_b: str) -> st.SearchStrategy[dict[str, Any] | None]:
    a, b = column(col_a), column(col_b)
    element = st.one_of(
        obj(a=a, b=b, arr=st.lists(b, max_size=2)), obj(a=a, b=b), st.sampled_from(ALL_SCALARS)
    )
    arr = st.one_of(st.lists(element, max_size=3), st.lists(element, max_size=3), a)
    o = st.one_of(obj(a=a, arr=st.lists(element, max_size=2)), a)
    point = obj(a=a, b=b, arr=arr, o=o)
    # a payload-less point now and then (one_of would pick the simpler None far too often)
    return st.tuples(point, st.integers(0, 15)).map(lambda t: None if t[1] == 7 else t[0])


# ---------------------------------------------------------------------- conditions
@functools.cache
def check_kinds(col: str) -> list[st.SearchStrategy[dict[str, Any]]]:
    """Check strategies whose values mostly come from the key's column pool."""
    pool = [v for v in POOLS[col] if isinstance(v, str | int) and not isinstance(v, bool)]
    str_pool = [v for v in pool if isinstance(v, str)] or POOLS["str"]
    int_pool = [v for v in pool if isinstance(v, int)] or POOLS["int"]
    strs = st.one_of(st.sampled_from(str_pool), st.sampled_from(POOLS["str"] + POOLS["text"] + POOLS["date"]))
    ints = st.one_of(st.sampled_from(int_pool), st.sampled_from(POOLS["int"]))
    numbers = st.sampled_from([*POOLS["num"], -1, 1e300])
    dates = st.sampled_from(["2023-12-31", "2024-01-01T00:00:00Z", "2024-01-01T10:00:00Z", "2024-01-02"])
    words = st.sampled_from(["x", "x y", "y z", "Y", "", "brown fox", "fox brown", "qu", "xy"])

    def rng(bound: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
        return st.fixed_dictionaries({}, optional={"gt": bound, "gte": bound, "lt": bound, "lte": bound})

    def ring(lo_lat: float, lo_lon: float, hi_lat: float, hi_lon: float) -> dict[str, Any]:
        corners = [(lo_lon, lo_lat), (hi_lon, lo_lat), (hi_lon, hi_lat), (lo_lon, hi_lat), (lo_lon, lo_lat)]
        return {"points": [{"lon": x, "lat": y} for x, y in corners]}

    if col == "bool":
        exact: st.SearchStrategy[Any] = st.one_of(st.booleans(), strs, ints)
    elif col in ("int", "num"):
        exact = st.one_of(ints, ints, strs, st.booleans())
    else:
        exact = st.one_of(strs, strs, ints, st.booleans())
    return [
        st.builds(lambda v: {"match": {"value": v}}, exact),
        st.builds(
            lambda v: {"match": {"any": v}}, st.one_of(st.lists(strs, max_size=4), st.lists(ints, max_size=3))
        ),
        st.builds(
            lambda v: {"match": {"except": v}},
            st.one_of(st.lists(strs, max_size=4), st.lists(ints, max_size=3)),
        ),
        st.builds(lambda k, t: {"match": {k: t}}, st.sampled_from(["text", "text_any", "phrase"]), words),
        st.builds(lambda t: {"match": {"prefix": t}}, st.sampled_from(["x", "", "20", "f4", "qu"])),
        st.builds(lambda r: {"range": r}, rng(numbers)),
        st.builds(lambda r: {"range": r}, rng(dates).filter(bool)),
        st.builds(
            lambda r: {"geo_radius": {"center": {"lat": 52.5, "lon": 13.4}, "radius": r}},
            st.sampled_from([0.0, 500.0, 2000.0, 40000.0, 2e7]),
        ),
        st.sampled_from(
            [
                {
                    "geo_bounding_box": {
                        "top_left": {"lat": 52.505, "lon": 13.0},
                        "bottom_right": {"lat": 52.0, "lon": 14.0},
                    }
                },
                {
                    "geo_bounding_box": {
                        "top_left": {"lat": 0.0, "lon": 160.0},
                        "bottom_right": {"lat": -20.0, "lon": -170.0},
                    }
                },
            ]
        ),
        st.builds(
            lambda interiors: {
                "geo_polygon": {"exterior": ring(52.0, 13.0, 53.0, 14.0), "interiors": interiors}
            },
            st.sampled_from([None, [], [ring(52.505, 13.405, 52.52, 13.42)], [ring(52.4, 13.4, 52.5, 13.9)]]),
        ),
        st.builds(lambda r: {"values_count": r}, rng(st.integers(0, 3))),
        st.builds(lambda f: {"is_empty": f}, st.booleans()),
        st.builds(lambda f: {"is_null": f}, st.booleans()),
    ]


def column_of(key: str, cols: dict[str, str]) -> str:
    return cols["b"] if key.endswith("b") else cols["a"]


@functools.cache
def keyed_check(key: str, col: str) -> st.SearchStrategy[dict[str, Any]]:
    check = st.sampled_from(check_kinds(col)).flatmap(lambda s: s)
    return check.map(lambda c: {"key": key, **c})


@functools.cache
def field_condition(col_a: str, col_b: str, keys: tuple[str, ...]) -> st.SearchStrategy[dict[str, Any]]:
    cols = {"a": col_a, "b": col_b}

    def with_check(key: str) -> st.SearchStrategy[dict[str, Any]]:
        return keyed_check(key, column_of(key, cols))

    keyed = st.sampled_from(keys).flatmap(with_check)
    return st.one_of(
        keyed,
        keyed,
        st.builds(lambda k: {"is_empty": {"key": k}}, st.sampled_from(keys)),
        st.builds(lambda k: {"is_null": {"key": k}}, st.sampled_from(keys)),
    )


def filters_of(leaf: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    def extend(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
        clause = st.lists(children, max_size=2)
        return st.builds(
            lambda must, should, must_not, ms, count: {
                "must": must,
                "should": should,
                "must_not": must_not,
                **({"min_should": {"conditions": ms, "min_count": min(count, len(ms))}} if ms else {}),
            },
            clause,
            clause,
            clause,
            st.lists(children, max_size=3),
            st.integers(1, 2),
        )

    return st.recursive(leaf, extend, max_leaves=5).map(lambda c: c if set(c) <= CLAUSES else {"must": [c]})


@functools.cache
def point_leaf(col_a: str, col_b: str) -> st.SearchStrategy[dict[str, Any]]:
    nested = st.builds(
        lambda k, f: {"nested": {"key": k, "filter": f}},
        st.sampled_from(NESTED_KEYS),
        filters_of(field_condition(col_a, col_b, tuple(INNER_KEYS))),
    )
    fields = field_condition(col_a, col_b, tuple(KEYS))
    return st.one_of(
        fields,
        fields,
        fields,
        st.builds(lambda ids: {"has_id": ids}, st.lists(st.integers(0, 22), max_size=4)),
        st.builds(lambda v: {"has_vector": v}, st.sampled_from(["", "v", "missing"])),
        nested,
    )


@functools.cache
def combined_filters(col_a: str, col_b: str) -> st.SearchStrategy[dict[str, Any]]:
    return filters_of(point_leaf(col_a, col_b))


@functools.cache
def single_filters(col_a: str, col_b: str) -> st.SearchStrategy[dict[str, Any]]:
    return point_leaf(col_a, col_b).map(lambda c: {"must": [c]})


Case = tuple[list[Any], dict[str, Any], dict[str, Any], list[bool]]


@st.composite
def cases(draw: st.DrawFn, combined: bool) -> Case:
    col_a, col_b = draw(st.sampled_from(COLUMNS)), draw(st.sampled_from(COLUMNS))
    points = draw(st.lists(payloads(col_a, col_b), min_size=4, max_size=20))
    flt = draw(combined_filters(col_a, col_b) if combined else single_filters(col_a, col_b))
    index_keys = draw(st.sets(st.sampled_from([*KEYS, "arr[].b", "o.arr[].b"])))
    indexes = {k: draw(st.sampled_from(INDEX_TYPES)) for k in sorted(index_keys)}
    has_v = draw(st.lists(st.booleans(), min_size=len(points), max_size=len(points)))
    return points, flt, indexes, has_v


# ---------------------------------------------------------------------- checks
def view_of(points: list[Any], has_v: list[bool], indexes: dict[str, Any] | None) -> PayloadView:
    view = PayloadView(points, vectors={"": [True] * len(points), "v": has_v})
    for key, schema in (indexes or {}).items():
        view.add_index(key, schema)
    return view


def reference(flt: Filter, view: PayloadView) -> list[int]:
    return [
        o
        for o in range(view.size)
        if matches(
            flt, view.point_id(o), view.payload(o), lambda n, o=o: view.has_vector(o, n), view.text_index
        )
    ]


def check_all_agree(
    points: list[Any], raw: dict[str, Any], indexes: dict[str, Any], has_v: list[bool]
) -> None:
    flt = parse_filter(raw)
    plain = view_of(points, has_v, None)
    indexed = view_of(points, has_v, indexes)
    got_plain = np.flatnonzero(evaluate(flt, plain)).tolist()
    got_indexed = np.flatnonzero(evaluate(flt, indexed)).tolist()
    assert got_plain == reference(flt, plain)
    assert got_indexed == reference(flt, indexed)
    if not any(idx.kind == "text" for idx in indexed.indexes.values()):
        assert got_indexed == got_plain  # only a full-text index changes what a condition means
    for view, got in ((plain, got_plain), (indexed, got_indexed)):
        lo, exp, hi = estimate_cardinality(flt, view, None, sample_size=3)
        assert lo <= len(got) <= hi
        assert lo <= exp <= hi


SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(cases(combined=False))
def test_single_conditions_agree(case: Case) -> None:
    check_all_agree(*case)


@SETTINGS
@given(cases(combined=True))
def test_combined_filters_agree(case: Case) -> None:
    check_all_agree(*case)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases(combined=True), st.data())
def test_indexes_stay_exact_under_updates(case: Case, data: st.DataObject) -> None:
    points, raw, indexes, has_v = case
    fresh = payloads(data.draw(st.sampled_from(COLUMNS)), data.draw(st.sampled_from(COLUMNS)))
    updates = data.draw(st.lists(st.tuples(st.integers(0, len(points) - 1), fresh), min_size=1, max_size=8))
    flt = parse_filter(raw)
    indexed = view_of(points, has_v, indexes)
    evaluate(flt, indexed)  # build sorted arrays / caches before the payloads change
    for off, new in updates:
        indexed.set_payload(off, new)
    assert np.flatnonzero(evaluate(flt, indexed)).tolist() == reference(flt, indexed)
    # persisted and reloaded indexes answer the same
    reloaded = PayloadView(indexed.payloads, vectors={"": [True] * len(points), "v": has_v})
    with tempfile.TemporaryDirectory() as tmp:
        for key, idx in indexed.indexes.items():
            files.save(idx, Path(tmp), token=1)
            back = files.load(Path(tmp), key, idx.schema, token=1)
            assert back is not None
            reloaded.indexes[key] = back
    assert np.flatnonzero(evaluate(flt, reloaded)).tolist() == reference(flt, indexed)
