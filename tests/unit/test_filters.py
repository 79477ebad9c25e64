"""Filter language: Qdrant's documented examples, bad input, and indexed == scanned == reference."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qcluster.errors import BadInputError
from qcluster.shards.filters import evaluate, matches, parse_filter
from qcluster.shards.payload_index import build_index, parse_field_schema
from qcluster.shards.segment import Segment


def segment(payloads: list[dict[str, Any] | None], indexes: dict[str, Any] | None = None) -> Segment:
    seg = Segment(Path("/nonexistent"), "t", {"": 2}, appendable=True)
    n = len(payloads)
    seg.put_many(list(range(n)), {"": (np.ones((n, 2), np.float32), None)}, list(payloads), 1)
    for key, schema in (indexes or {}).items():
        seg.add_field_index(build_index(key, parse_field_schema(schema)))
    return seg


def select(
    payloads: list[dict[str, Any] | None], flt: dict[str, Any], indexes: dict[str, Any] | None = None
) -> list[int]:
    seg = segment(payloads, indexes)
    mask = evaluate(parse_filter(flt), seg)
    got = [int(i) for i in np.flatnonzero(mask)]
    ref = [i for i, p in enumerate(payloads) if matches(parse_filter(flt), i, p, lambda n: True)]
    if not indexes or not any(
        (isinstance(s, dict) and s.get("type") == "text") or s == "text" for s in indexes.values()
    ):
        assert got == ref
    return got


CITIES = [
    {"id": 1, "city": "London", "color": "green"},
    {"id": 2, "city": "London", "color": "red"},
    {"id": 3, "city": "London", "color": "blue"},
    {"id": 4, "city": "Berlin", "color": "red"},
    {"id": 5, "city": "Moscow", "color": "green"},
    {"id": 6, "city": "Moscow", "color": "blue"},
]


@pytest.mark.parametrize("indexed", [False, True])
def test_documented_clauses(indexed: bool) -> None:
    idx = {"city": "keyword", "color": "keyword"} if indexed else None
    must = {
        "must": [{"key": "city", "match": {"value": "London"}}, {"key": "color", "match": {"value": "red"}}]
    }
    assert select(CITIES, must, idx) == [1]
    should = {
        "should": [{"key": "city", "match": {"value": "London"}}, {"key": "color", "match": {"value": "red"}}]
    }
    assert select(CITIES, should, idx) == [0, 1, 2, 3]
    must_not = {
        "must_not": [
            {"key": "city", "match": {"value": "London"}},
            {"key": "color", "match": {"value": "red"}},
        ]
    }
    assert select(CITIES, must_not, idx) == [4, 5]
    combo = {
        "must": [{"key": "city", "match": {"value": "London"}}],
        "must_not": [{"key": "color", "match": {"value": "red"}}],
    }
    assert select(CITIES, combo, idx) == [0, 2]
    nested_clause = {
        "must_not": [
            {
                "must": [
                    {"key": "city", "match": {"value": "London"}},
                    {"key": "color", "match": {"value": "red"}},
                ]
            }
        ]
    }
    assert select(CITIES, nested_clause, idx) == [0, 2, 3, 4, 5]
    ms = {
        "min_should": {
            "conditions": [
                {"key": "city", "match": {"value": "London"}},
                {"key": "color", "match": {"value": "red"}},
                {"key": "color", "match": {"value": "green"}},
            ],
            "min_count": 2,
        }
    }
    assert select(CITIES, ms, idx) == [0, 1]
    assert select(CITIES, {"must": [{"key": "color", "match": {"any": ["red", "blue"]}}]}, idx) == [
        1,
        2,
        3,
        5,
    ]
    assert select(CITIES, {"must": [{"key": "color", "match": {"except": ["red", "blue"]}}]}, idx) == [0, 4]
    assert select(CITIES, {"must": [{"has_id": [1, 3, 5]}]}, idx) == [1, 3, 5]


def test_nested_cities_example() -> None:
    # Qdrant 1.2 release notes: array of objects, conditions must hold for the same element
    dinosaurs = [
        {"dinosaur": "t-rex", "diet": [{"food": "leaves", "likes": False}, {"food": "meat", "likes": True}]},
        {
            "dinosaur": "diplodocus",
            "diet": [{"food": "leaves", "likes": True}, {"food": "meat", "likes": False}],
        },
    ]
    flat = {
        "must": [
            {"key": "diet[].food", "match": {"value": "meat"}},
            {"key": "diet[].likes", "match": {"value": True}},
        ]
    }
    assert select(dinosaurs, flat) == [0, 1]  # flattened arrays: both match
    nested = {
        "must": [
            {
                "nested": {
                    "key": "diet",
                    "filter": {
                        "must": [
                            {"key": "food", "match": {"value": "meat"}},
                            {"key": "likes", "match": {"value": True}},
                        ]
                    },
                }
            }
        ]
    }
    assert select(dinosaurs, nested) == [0]
    countries = [
        {
            "country": {
                "name": "Germany",
                "cities": [
                    {"name": "Berlin", "population": 3.7, "sightseeing": ["Brandenburg Gate", "Reichstag"]},
                    {"name": "Munich", "population": 1.5, "sightseeing": ["Marienplatz", "Olympiapark"]},
                ],
            }
        },
        {
            "country": {
                "name": "Japan",
                "cities": [
                    {"name": "Tokyo", "population": 9.3, "sightseeing": ["Tokyo Tower", "Tokyo Skytree"]},
                    {
                        "name": "Osaka",
                        "population": 2.7,
                        "sightseeing": ["Osaka Castle", "Universal Studios Japan"],
                    },
                ],
            }
        },
    ]
    assert select(countries, {"should": [{"key": "country.cities[].population", "range": {"gte": 9.0}}]}) == [
        1
    ]
    assert select(
        countries, {"should": [{"key": "country.cities[].sightseeing", "match": {"value": "Osaka Castle"}}]}
    ) == [1]
    assert select(countries, {"must": [{"key": "country.name", "match": {"value": "Germany"}}]}) == [0]
    assert select(countries, {"must": [{"key": "country.cities[].name", "values_count": {"gt": 1}}]}) == [
        0,
        1,
    ]


@pytest.mark.parametrize("indexed", [False, True])
def test_ranges_geo_datetime_text_counts(indexed: bool) -> None:
    payloads: list[dict[str, Any] | None] = [
        {
            "price": 10,
            "loc": {"lon": 13.40, "lat": 52.52},
            "at": "2024-01-01T10:00:00Z",
            "t": "Good cheap food",
            "tags": ["a", "b"],
        },
        {
            "price": 25.5,
            "loc": {"lon": 2.35, "lat": 48.86},
            "at": "2024-06-01",
            "t": "expensive food",
            "tags": [],
        },
        {"price": None, "loc": [{"lon": -0.12, "lat": 51.50}], "at": "not a date", "t": 5, "tags": ["c"]},
        {"other": True},
        None,
    ]
    idx = {"price": "float", "loc": "geo", "at": "datetime", "tags": "keyword"} if indexed else None
    assert select(payloads, {"must": [{"key": "price", "range": {"gte": 10, "lt": 25.5}}]}, idx) == [0]
    assert select(payloads, {"must": [{"key": "price", "range": {"gt": 10}}]}, idx) == [1]
    berlin = {"lon": 13.40, "lat": 52.52}
    assert select(
        payloads, {"must": [{"key": "loc", "geo_radius": {"center": berlin, "radius": 1000.0}}]}, idx
    ) == [0]
    box = {"top_left": {"lon": -1.0, "lat": 53.0}, "bottom_right": {"lon": 14.0, "lat": 48.0}}
    assert select(payloads, {"must": [{"key": "loc", "geo_bounding_box": box}]}, idx) == [0, 1, 2]
    poly = {
        "exterior": {
            "points": [
                {"lon": -5, "lat": 45},
                {"lon": 5, "lat": 45},
                {"lon": 5, "lat": 55},
                {"lon": -5, "lat": 55},
                {"lon": -5, "lat": 45},
            ]
        }
    }
    assert select(payloads, {"must": [{"key": "loc", "geo_polygon": poly}]}, idx) == [1, 2]
    dt = {"must": [{"key": "at", "range": {"gte": "2024-03-01T00:00:00Z"}}]}
    assert select(payloads, dt, idx) == [1]
    assert select(payloads, {"must": [{"key": "at", "datetime_range": {"lt": "2024-03-01"}}]}, idx) == [0]
    assert select(payloads, {"must": [{"key": "t", "match": {"text": "food"}}]}, idx) == [0, 1]
    assert select(payloads, {"must": [{"is_empty": {"key": "tags"}}]}, idx) == [1, 3, 4]
    assert select(payloads, {"must": [{"is_null": {"key": "price"}}]}, idx) == [2]
    assert select(payloads, {"must": [{"key": "tags", "values_count": {"gte": 2}}]}, idx) == [0]
    assert select(payloads, {"must": [{"has_vector": ""}]}, idx) == [0, 1, 2, 3, 4]


def test_text_index_uses_tokens() -> None:
    payloads: list[dict[str, Any] | None] = [
        {"t": "The Quick brown fox"},
        {"t": "quickly"},
        {"t": "brown quick"},
    ]
    idx = {"t": {"type": "text", "tokenizer": "word", "lowercase": True}}
    assert select(payloads, {"must": [{"key": "t", "match": {"text": "quick"}}]}) == [
        1,
        2,
    ]  # substring, case-sensitive
    assert select(payloads, {"must": [{"key": "t", "match": {"text": "quick brown"}}]}, idx) == [0, 2]
    assert select(payloads, {"must": [{"key": "t", "match": {"phrase": "quick brown"}}]}, idx) == [0]


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ({"must": [{"key": "a", "nonsense": 1}]}, "filter.must[0]"),
        ({"must": [{"bogus": {}}]}, "unknown condition"),
        ({"mus": []}, "unknown field 'mus'"),
        ({"must": [{"key": "a", "range": {"gte": "abc"}}]}, "RFC 3339"),
        ({"must": [{"key": "a", "range": {"gte": 1, "foo": 2}}]}, "unknown range bound"),
        ({"must": [{"key": "a", "geo_radius": {"center": {"lat": 95, "lon": 0}, "radius": 1}}]}, "latitude"),
        ({"must": [{"key": "a", "match": {}}]}, "exactly one"),
        ({"must": [{"key": "a", "match": {"value": [1]}}]}, "match.value"),
        ({"must": [{"has_id": ["not-a-uuid"]}]}, "has_id[0]"),
        (
            {"must": [{"nested": {"key": "x", "filter": {"must": [{"has_id": [1]}]}}}]},
            "not allowed inside a nested",
        ),
        ({"must": "text"}, "expected a condition"),
    ],
)
def test_bad_filters(raw: dict[str, Any], needle: str) -> None:
    with pytest.raises(BadInputError) as info:
        parse_filter(raw)
    assert needle in info.value.message


# ---------------------------------------------------------------------------------------- properties
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.sampled_from([0.5, 2.5, -1.5]),
    st.sampled_from(["a", "b", "c", "2024-01-02T00:00:00Z"]),
)
leaf = st.one_of(
    scalars,
    st.lists(scalars, max_size=3),
    st.fixed_dictionaries({"lat": st.sampled_from([10.0, 50.0]), "lon": st.sampled_from([5.0, 20.0])}),
)
payload_st = st.one_of(
    st.none(),
    st.dictionaries(
        st.sampled_from(["k", "n", "g", "d"]),
        st.one_of(
            leaf,
            st.dictionaries(st.sampled_from(["k", "n"]), leaf, max_size=2),
            st.lists(st.dictionaries(st.sampled_from(["k", "n"]), leaf, max_size=2), max_size=2),
        ),
        max_size=4,
    ),
)
key_st = st.sampled_from(["k", "n", "g", "d", "d.k", "d[].n", "d.n"])
field_cond = st.one_of(
    st.builds(
        lambda k, v: {"key": k, "match": {"value": v}},
        key_st,
        st.one_of(st.booleans(), st.integers(-5, 5), st.sampled_from(["a", "b"])),
    ),
    st.builds(
        lambda k, v: {"key": k, "match": {"any": v}},
        key_st,
        st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=2),
    ),
    st.builds(
        lambda k, v: {"key": k, "match": {"any": v}},
        key_st,
        st.lists(st.integers(-5, 5), min_size=1, max_size=2),
    ),
    st.builds(
        lambda k, v: {"key": k, "match": {"except": v}},
        key_st,
        st.lists(st.sampled_from(["a", "b"]), min_size=1, max_size=2),
    ),
    st.builds(
        lambda k, lo, hi: {"key": k, "range": {"gte": lo, "lt": hi}},
        key_st,
        st.integers(-5, 5),
        st.integers(-5, 6),
    ),
    st.builds(lambda k: {"key": k, "range": {"gte": "2024-01-01T00:00:00Z"}}, key_st),
    st.builds(
        lambda k: {"key": k, "geo_radius": {"center": {"lat": 50.0, "lon": 20.0}, "radius": 1000.0}}, key_st
    ),
    st.builds(lambda k, n: {"key": k, "values_count": {"gte": n}}, key_st, st.integers(0, 3)),
    st.builds(lambda k: {"is_empty": {"key": k}}, key_st),
    st.builds(lambda k: {"is_null": {"key": k}}, key_st),
    st.builds(lambda ids: {"has_id": ids}, st.lists(st.integers(0, 12), max_size=3)),
)
filter_st = st.recursive(
    st.builds(
        lambda m, s, n: {"must": m, "should": s, "must_not": n},
        st.lists(field_cond, max_size=2),
        st.lists(field_cond, max_size=2),
        st.lists(field_cond, max_size=1),
    ),
    lambda inner: st.builds(
        lambda m, s: {"must": m, "should": s}, st.lists(inner, max_size=2), st.lists(inner, max_size=2)
    ),
    max_leaves=4,
)
INDEX_SETS = [
    {},
    {"k": "keyword", "n": "integer", "g": "geo", "d": "datetime"},
    {"k": "integer", "n": "float", "d.k": "keyword", "d[].n": "bool"},
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(payload_st, min_size=1, max_size=12), filter_st, st.sampled_from(INDEX_SETS))
def test_indexed_equals_reference(
    payloads: list[dict[str, Any] | None], flt: dict[str, Any], idx: dict[str, str]
) -> None:
    parsed = parse_filter(flt)
    ref = [i for i, p in enumerate(payloads) if matches(parsed, i, p, lambda n: True)]
    for indexes in ({}, idx):
        got = [int(i) for i in np.flatnonzero(evaluate(parsed, segment(payloads, indexes)))]
        assert got == ref, (indexes, flt)


def test_index_reads_while_the_update_thread_writes() -> None:
    """Search threads read payload indexes while the update thread changes them."""
    import threading

    from qcluster.shards.filters.conditions import MatchAny, Range

    kw = build_index("k", parse_field_schema("keyword"))
    num = build_index("n", parse_field_schema("integer"))
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        i = 0
        while not stop.is_set() and i < 20000:
            off = i % 500
            for idx in (kw, num):
                idx.remove(off)
                idx.add(off, {"k": f"v{i % 7}", "n": i % 13})
            i += 1

    def reader() -> None:
        try:
            for _ in range(300):
                kw.mask(MatchAny(("v1", "v2")), 500)
                num.mask(Range(gte=3, lt=9), 500)
                kw.facet(None, 5)
                num.order_values(7)
        except BaseException as exc:  # a "changed size during iteration" would land here
            errors.append(exc)

    w = threading.Thread(target=writer)
    readers = [threading.Thread(target=reader) for _ in range(2)]
    w.start()
    for r in readers:
        r.start()
    for r in readers:
        r.join()
    stop.set()
    w.join()
    assert errors == []
    assert kw.points_count() == 500 and num.points_count() == 500
