"""Filter language on Qdrant's documented examples: every condition type, with and without
payload indexes; every answer is also checked against the reference evaluator."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from qcluster.shards.filters import estimate_cardinality, evaluate, filter_keys, matches, parse_filter
from qcluster.shards.filters.view import PayloadView
from qcluster.types import PointId


def select(
    payloads: list[dict[str, Any] | None],
    flt: dict[str, Any],
    indexes: dict[str, Any] | None = None,
    ids: list[PointId] | None = None,
    vectors: dict[str, list[bool]] | None = None,
) -> list[PointId]:
    """Ids of the points passing ``flt``; asserts evaluate == reference (given the same indexes)."""
    view = PayloadView(payloads, ids=ids, vectors=vectors)
    for key, schema in (indexes or {}).items():
        view.add_index(key, schema)
    parsed = parse_filter(flt)
    mask = evaluate(parsed, view)
    got = [view.point_id(int(o)) for o in np.flatnonzero(mask)]
    ref = [
        view.point_id(o)
        for o in range(view.size)
        if matches(
            parsed, view.point_id(o), view.payload(o), lambda n, o=o: view.has_vector(o, n), view.text_index
        )
    ]
    assert got == ref
    lo, exp, hi = estimate_cardinality(parsed, view, None)
    assert lo <= len(got) <= hi and lo <= exp <= hi
    return got


CITIES = [
    {"city": "London", "color": "green"},
    {"city": "London", "color": "red"},
    {"city": "London", "color": "blue"},
    {"city": "Berlin", "color": "red"},
    {"city": "Moscow", "color": "green"},
    {"city": "Moscow", "color": "blue"},
]
CITY_IDS: list[PointId] = [1, 2, 3, 4, 5, 6]
CITY_INDEXES = [None, {"city": "keyword", "color": "keyword"}]


def london_red() -> list[dict[str, Any]]:
    return [{"key": "city", "match": {"value": "London"}}, {"key": "color", "match": {"value": "red"}}]


@pytest.mark.parametrize("indexes", CITY_INDEXES)
def test_clauses_documented(indexes: dict[str, Any] | None) -> None:
    def run(flt: dict[str, Any]) -> list[PointId]:
        return select(list(CITIES), flt, indexes, ids=CITY_IDS)

    assert run({"must": london_red()}) == [2]
    assert run({"should": london_red()}) == [1, 2, 3, 4]
    assert run({"must_not": london_red()}) == [5, 6]
    assert run(
        {
            "must": [{"key": "city", "match": {"value": "London"}}],
            "must_not": [{"key": "color", "match": {"value": "red"}}],
        }
    ) == [1, 3]
    assert run({"must_not": [{"must": london_red()}]}) == [1, 3, 4, 5, 6]
    assert run({"must": [{"has_id": [1, 3, 5, 7, 9, 11]}]}) == [1, 3, 5]


@pytest.mark.parametrize("indexes", CITY_INDEXES)
def test_min_should_and_single_condition_clauses(indexes: dict[str, Any] | None) -> None:
    def run(flt: dict[str, Any]) -> list[PointId]:
        return select(list(CITIES), flt, indexes, ids=CITY_IDS)

    two_of = {
        "min_should": {
            "conditions": [
                {"key": "city", "match": {"value": "London"}},
                {"key": "color", "match": {"value": "red"}},
                {"key": "color", "match": {"value": "green"}},
            ],
            "min_count": 2,
        }
    }
    assert run(two_of) == [1, 2]
    # a clause may hold one condition instead of a list; null clauses are absent
    assert run({"must": {"key": "city", "match": {"value": "Berlin"}}, "should": None}) == [4]
    assert run({}) == CITY_IDS
    assert run({"must": [{}]}) == CITY_IDS  # an empty filter as a condition matches everything
    # min_count above the number of conditions matches nothing
    assert (
        run({"min_should": {"conditions": [{"key": "city", "match": {"value": "Berlin"}}], "min_count": 2}})
        == []
    )


@pytest.mark.parametrize("indexes", [None, {"color": "keyword", "count": "integer", "ok": "bool"}])
def test_match_value_any_except(indexes: dict[str, Any] | None) -> None:
    payloads: list[dict[str, Any] | None] = [
        {"color": "red", "count": 0, "ok": True},
        {"color": ["black", "green"], "count": 5, "ok": False},
        {"color": ["yellow"], "count": [0, 7]},
        {"color": "blue", "count": 0.0},
        {"count": "0"},
        None,
    ]

    def run(flt: dict[str, Any]) -> list[PointId]:
        return select(payloads, flt, indexes)

    assert run({"must": [{"key": "color", "match": {"value": "red"}}]}) == [0]
    assert run({"must": [{"key": "count", "match": {"value": 0}}]}) == [0, 2]  # not 0.0, not "0"
    assert run({"must": [{"key": "ok", "match": {"value": False}}]}) == [1]
    # documented: ["black", "green"] matches any ["black", "yellow"]
    assert run({"must": [{"key": "color", "match": {"any": ["black", "yellow"]}}]}) == [1, 2]
    # documented: ["black", "green"] passes except ["black", "yellow"] ("green" is neither)
    assert run({"must": [{"key": "color", "match": {"except": ["black", "yellow"]}}]}) == [0, 1, 3]
    assert run({"must": [{"key": "count", "match": {"any": [5, 7]}}]}) == [1, 2]
    # except on integers: 0.0 is a float (passes), "0" a string (passes), 0 is excluded
    assert run({"must": [{"key": "count", "match": {"except": [0]}}]}) == [1, 2, 3, 4]


NESTED_COUNTRIES = [
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


@pytest.mark.parametrize(
    "indexes",
    [
        None,
        {
            "country.name": "keyword",
            "country.cities[].population": "float",
            "country.cities[].sightseeing": "keyword",
        },
    ],
)
def test_nested_keys_documented(indexes: dict[str, Any] | None) -> None:
    def run(flt: dict[str, Any]) -> list[PointId]:
        return select(list(NESTED_COUNTRIES), flt, indexes, ids=[1, 2])

    assert run({"should": [{"key": "country.name", "match": {"value": "Germany"}}]}) == [1]
    assert run({"should": [{"key": "country.cities[].population", "range": {"gte": 9.0}}]}) == [2]
    assert run({"should": [{"key": "country.cities[].sightseeing", "match": {"value": "Osaka Castle"}}]}) == [
        2
    ]
    # `.key` does not descend into arrays (Qdrant's path semantics): `[]` is required
    assert run({"should": [{"key": "country.cities.population", "range": {"gte": 0}}]}) == []
    assert run({"should": [{"key": "country.cities[1].name", "match": {"value": "Osaka"}}]}) == [2]


DINOSAURS = [
    {"dinosaur": "t-rex", "diet": [{"food": "leaves", "likes": False}, {"food": "meat", "likes": True}]},
    {"dinosaur": "diplodocus", "diet": [{"food": "leaves", "likes": True}, {"food": "meat", "likes": False}]},
]


@pytest.mark.parametrize("indexes", [None, {"diet[].food": "keyword", "diet[].likes": "bool"}])
def test_nested_object_filter_documented(indexes: dict[str, Any] | None) -> None:
    def run(flt: dict[str, Any]) -> list[PointId]:
        return select(list(DINOSAURS), flt, indexes, ids=[1, 2])

    flat = {
        "must": [
            {"key": "diet[].food", "match": {"value": "meat"}},
            {"key": "diet[].likes", "match": {"value": True}},
        ]
    }
    assert run(flat) == [1, 2]
    inner = {
        "must": [{"key": "food", "match": {"value": "meat"}}, {"key": "likes", "match": {"value": True}}]
    }
    assert run({"must": [{"nested": {"key": "diet", "filter": inner}}]}) == [1]
    assert run({"must": [{"nested": {"key": "diet[]", "filter": inner}}]}) == [1]  # with or without []
    # documented workaround for has_id: an adjacent must
    assert run({"must": [{"nested": {"key": "diet", "filter": inner}}, {"has_id": [1]}]}) == [1]
    assert run({"must": [{"nested": {"key": "diet", "filter": inner}}, {"has_id": [2]}]}) == []
    # must_not around a nested filter, and must_not inside it
    assert run({"must_not": [{"nested": {"key": "diet", "filter": inner}}]}) == [2]
    no_meat = {
        "must_not": [{"key": "food", "match": {"value": "meat"}}],
        "must": [{"key": "likes", "match": {"value": True}}],
    }
    assert run({"must": [{"nested": {"key": "diet", "filter": no_meat}}]}) == [2]


RELEASE_1_2 = [
    # The 1.2 release notes show this point with "country" and "cities" side by side but filter on
    # `country.cities`; here the cities are under "country" so that the documented filter applies.
    {
        "country": {
            "name": "Japan",
            "cities": [
                {"name": "Tokyo", "population": 9.3, "area": 2194},
                {"name": "Osaka", "population": 2.7, "area": 223},
                {"name": "Kyoto", "population": 1.5, "area": 827.8},
            ],
        }
    },
    {"country": {"name": "Atlantis", "cities": [{"name": "Poseidonia", "population": 2.5, "area": 600}]}},
    {"country": {"name": "Nowhere", "cities": {"name": "NotAnArray", "population": 5, "area": 700}}},
]


@pytest.mark.parametrize(
    "indexes", [None, {"country.cities[].population": "float", "country.cities[].area": {"type": "float"}}]
)
def test_nested_cities_release_notes(indexes: dict[str, Any] | None) -> None:
    def run(flt: dict[str, Any]) -> list[PointId]:
        return select(list(RELEASE_1_2), flt, indexes)

    population = {"key": "population", "range": {"gte": 2}}
    area = {"key": "area", "range": {"gt": 500, "lte": 1000}}
    flat = {
        "must": [
            {"key": "country.cities[].population", "range": {"gte": 2}},
            {"key": "country.cities[].area", "range": {"gt": 500, "lte": 1000}},
        ]
    }
    # Japan passes the flat filter (Tokyo/Osaka pass the first condition, Kyoto the second)
    assert run(flat) == [0, 1]
    nested = {"must": [{"nested": {"key": "country.cities", "filter": {"must": [population, area]}}}]}
    # ... but no single Japanese city passes both; a nested key holding an object (not an array)
    # matches nothing, as in Qdrant
    assert run(nested) == [1]


@pytest.mark.parametrize("indexes", [None, {"description": "text"}])
def test_full_text_documented(indexes: dict[str, Any] | None) -> None:
    payloads: list[dict[str, Any] | None] = [
        {"description": "Good cheap hardware, runs fast"},
        {"description": ["good performance", "cheap"]},
        {"description": "Goodbye to cheapness"},
        {"description": "quick brown fox"},
        {"description": 42},
    ]

    def run(flt: dict[str, Any]) -> list[PointId]:
        return select(payloads, flt, indexes)

    good_cheap = run({"must": [{"key": "description", "match": {"text": "good cheap"}}]})
    any_word = run({"must": [{"key": "description", "match": {"text_any": "good cheap"}}]})
    if indexes is None:
        # no index: a substring match, case sensitive
        assert good_cheap == []
        assert run({"must": [{"key": "description", "match": {"text": "cheap"}}]}) == [0, 1, 2]
        assert any_word == [0, 1, 2]  # "good" or "cheap" as substrings ("Goodbye" has neither case)
        assert run({"must": [{"key": "description", "match": {"phrase": "brown fox"}}]}) == [3]
    else:
        # text index: all tokens, lowercased, over all strings of the point
        assert good_cheap == [0, 1]
        assert any_word == [0, 1]  # "Goodbye" / "cheapness" are other tokens
        # phrase needs phrase_matching: true on the index (documented); otherwise nothing matches
        assert run({"must": [{"key": "description", "match": {"phrase": "brown fox"}}]}) == []


def test_phrase_with_phrase_matching_index() -> None:
    payloads: list[dict[str, Any] | None] = [
        {"t": "the quick brown fox"},
        {"t": "the fox is brown"},
        {"t": ["quick brown", "fox"]},
    ]
    idx = {"t": {"type": "text", "phrase_matching": True}}
    assert select(payloads, {"must": [{"key": "t", "match": {"phrase": "brown fox"}}]}, idx) == [0]
    assert select(payloads, {"must": [{"key": "t", "match": {"phrase": "fox brown"}}]}, idx) == []
    assert select(payloads, {"must": [{"key": "t", "match": {"text": "fox brown"}}]}, idx) == [0, 1, 2]


@pytest.mark.parametrize(
    "indexes", [None, {"price": "float"}, {"price": {"type": "integer", "lookup": False}}]
)
def test_range_documented(indexes: dict[str, Any] | None) -> None:
    payloads: list[dict[str, Any] | None] = [
        {"price": 0.5},
        {"price": 1},
        {"price": [0.1, 11.99]},
        {"price": 5.0},
        {"price": "3"},
        {"price": True},
        {},
    ]

    def run(rng: dict[str, Any]) -> list[PointId]:
        return select(payloads, {"must": [{"key": "price", "range": rng}]}, indexes)

    assert run({"gt": None, "gte": 1.0, "lt": None, "lte": 5.0}) == [1, 3]
    assert run({"gt": 1, "lt": 5}) == []
    assert run({"gte": 11}) == [2]
    assert run({}) == [0, 1, 2, 3]  # any number


@pytest.mark.parametrize("indexes", [None, {"date": "datetime"}])
def test_datetime_range_documented(indexes: dict[str, Any] | None) -> None:
    payloads: list[dict[str, Any] | None] = [
        {"date": "2023-02-08T10:49:00Z"},
        {"date": "2023-02-08T11:49:00+01:00"},  # the same instant
        {"date": "2023-02-08T10:49:01"},  # naive = UTC
        {"date": "2024-01-31 10:14:31Z"},
        {"date": "2024-01-31T10:14:31.000001Z"},
        {"date": "2023-06-01"},
        {"date": "not a date"},
        {"date": 1675853340},
    ]
    flt = {
        "must": [
            {
                "key": "date",
                "range": {
                    "gt": "2023-02-08T10:49:00Z",
                    "gte": None,
                    "lt": None,
                    "lte": "2024-01-31 10:14:31Z",
                },
            }
        ]
    }
    assert select(payloads, flt, indexes) == [2, 3, 5]
    same_instant = {
        "must": [{"key": "date", "range": {"gte": "2023-02-08T10:49:00", "lte": "2023-02-08T10:49:00+00:00"}}]
    }
    assert select(payloads, same_instant, indexes) == [0, 1]


@pytest.mark.parametrize("indexes", [None, {"uid": "uuid"}, {"uid": "keyword"}])
def test_uuid_match_documented(indexes: dict[str, Any] | None) -> None:
    u = "f47ac10b-58cc-4372-a567-0e02b2c3d479"
    payloads: list[dict[str, Any] | None] = [
        {"uid": u},
        {"uid": u.upper()},
        {"uid": [u, "x"]},
        {"uid": "other"},
    ]
    assert select(payloads, {"must": [{"key": "uid", "match": {"value": u}}]}, indexes) == [0, 2]
    # strings compare exactly, as without an index
    assert select(payloads, {"must": [{"key": "uid", "match": {"value": u.upper()}}]}, indexes) == [1]
    assert select(payloads, {"must": [{"key": "uid", "match": {"except": [u]}}]}, indexes) == [1, 2, 3]


GEO_POINTS: list[dict[str, Any] | None] = [
    {"location": {"lon": 13.42, "lat": 52.51}},  # inside the documented box and radius
    {"location": {"lon": 13.50, "lat": 52.51}},  # east of the box
    {"location": [{"lon": 0.0, "lat": 0.0}, {"lon": 13.404, "lat": 52.52}]},  # one of two inside
    {"location": {"lon": -30.0, "lat": -30.0}},  # inside the polygon's hole
    {"location": {"lon": 30.0, "lat": 30.0}},  # inside the polygon only
    {"location": {"lon": 60.0, "lat": 0.0}},  # on the polygon's exterior boundary
    {"location": "Berlin"},
    {"location": {"lat": 52.51}},
]


@pytest.mark.parametrize("indexes", [None, {"location": "geo"}])
def test_geo_documented(indexes: dict[str, Any] | None) -> None:
    def run(cond: dict[str, Any]) -> list[PointId]:
        return select(GEO_POINTS, {"must": [{"key": "location", **cond}]}, indexes)

    box = {
        "geo_bounding_box": {
            "bottom_right": {"lon": 13.455868, "lat": 52.495862},
            "top_left": {"lon": 13.403683, "lat": 52.520711},
        }
    }
    assert run(box) == [0, 2]
    radius = {"geo_radius": {"center": {"lon": 13.403683, "lat": 52.520711}, "radius": 1000.0}}
    assert run(radius) == [2]  # point 0 is ~1.6 km away
    assert run({"geo_radius": {"center": {"lon": 13.403683, "lat": 52.520711}, "radius": 2000.0}}) == [0, 2]
    assert run({"geo_radius": {"center": {"lon": 13.403683, "lat": 52.520711}, "radius": 10.0}}) == []
    polygon = {
        "geo_polygon": {
            "exterior": {
                "points": [
                    {"lon": -70.0, "lat": -70.0},
                    {"lon": 60.0, "lat": -70.0},
                    {"lon": 60.0, "lat": 60.0},
                    {"lon": -70.0, "lat": 60.0},
                    {"lon": -70.0, "lat": -70.0},
                ]
            },
            "interiors": [
                {
                    "points": [
                        {"lon": -65.0, "lat": -65.0},
                        {"lon": 0.0, "lat": -65.0},
                        {"lon": 0.0, "lat": 0.0},
                        {"lon": -65.0, "lat": 0.0},
                        {"lon": -65.0, "lat": -65.0},
                    ]
                }
            ],
        }
    }
    # point 2 has (0, 0), a corner of the hole: on the hole's boundary, so not inside it
    assert run(polygon) == [0, 1, 2, 4, 5]


def test_geo_box_across_the_antimeridian() -> None:
    payloads: list[dict[str, Any] | None] = [
        {"p": {"lon": 179.5, "lat": 0.0}},
        {"p": {"lon": -179.5, "lat": 0.0}},
        {"p": {"lon": 0.0, "lat": 0.0}},
    ]
    box = {
        "must": [
            {
                "key": "p",
                "geo_bounding_box": {
                    "top_left": {"lon": 179.0, "lat": 1.0},
                    "bottom_right": {"lon": -179.0, "lat": -1.0},
                },
            }
        ]
    }
    assert select(payloads, box) == [0, 1]
    assert select(payloads, box, {"p": "geo"}) == [0, 1]


@pytest.mark.parametrize("indexes", [None, {"comments": "keyword"}])
def test_values_count_documented(indexes: dict[str, Any] | None) -> None:
    payloads: list[dict[str, Any] | None] = [
        {"name": "product A", "comments": ["Very good!", "Excellent"]},
        {"name": "product B", "comments": ["meh", "expected more", "ok"]},
        {"name": "product C", "comments": "single"},
        {"name": "product D"},
        {"name": "product E", "comments": None},
    ]

    def run(vc: dict[str, Any]) -> list[PointId]:
        return select(payloads, {"must": [{"key": "comments", "values_count": vc}]}, indexes)

    assert run({"gt": 2}) == [1]
    assert run({"lte": 1}) == [2, 3, 4]  # a scalar counts 1; missing and null count 0
    assert run({"gte": 1, "lt": 3}) == [0, 2]


@pytest.mark.parametrize("indexes", [None, {"reports": "keyword"}])
def test_is_empty_and_is_null_documented(indexes: dict[str, Any] | None) -> None:
    payloads: list[dict[str, Any] | None] = [
        {"reports": None},
        {"reports": []},
        {},
        {"reports": [None]},
        {"reports": "r1"},
        {"reports": ["r1", None]},
        None,
    ]

    def run(flt: dict[str, Any]) -> list[PointId]:
        return select(payloads, flt, indexes)

    # documented: missing, null or [] is empty; [null] is a value
    assert run({"must": [{"is_empty": {"key": "reports"}}]}) == [0, 1, 2, 6]
    assert run({"must_not": [{"is_empty": {"key": "reports"}}]}) == [3, 4, 5]
    # documented: the field exists and is null
    assert run({"must": [{"is_null": {"key": "reports"}}]}) == [0]
    # the field-condition spelling
    assert run({"must": [{"key": "reports", "is_empty": True}]}) == [0, 1, 2, 6]
    assert run({"must": [{"key": "reports", "is_null": True}]}) == [0, 3, 5]
    assert run({"must": [{"key": "reports", "is_null": False}]}) == [1, 2, 4, 6]


def test_has_vector_documented() -> None:
    payloads: list[dict[str, Any] | None] = [{}, {}, {}]
    vectors = {"image": [True, False, True], "text": [False, True, True]}
    assert select(payloads, {"must": [{"has_vector": "image"}]}, vectors=vectors) == [0, 2]
    assert select(payloads, {"must_not": [{"has_vector": "text"}]}, vectors=vectors) == [0]
    assert select(payloads, {"must": [{"has_vector": "missing"}]}, vectors=vectors) == []


def test_has_id_with_uuids() -> None:
    a, b = "550e8400-e29b-41d4-a716-446655440000", "550e8400-e29b-41d4-a716-446655440001"
    assert select([{}, {}, {}], {"must": [{"has_id": [a.upper(), 7]}]}, ids=[a, b, 7]) == [a, 7]


def test_arrays_and_mixed_types() -> None:
    payloads: list[dict[str, Any] | None] = [
        {"v": [1, "1", True, 1.5]},
        {"v": [[1, 2], 3]},  # the nested array is one value: it matches nothing but except
        {"v": {"a": 1}},
        {"v": 2.0},
    ]
    for idx in (None, {"v": "integer"}, {"v": "keyword"}, {"v": "float"}, {"v": "bool"}):
        assert select(payloads, {"must": [{"key": "v", "match": {"value": 1}}]}, idx) == [0]
        assert select(payloads, {"must": [{"key": "v", "match": {"value": "1"}}]}, idx) == [0]
        assert select(payloads, {"must": [{"key": "v", "match": {"value": True}}]}, idx) == [0]
        assert select(payloads, {"must": [{"key": "v", "range": {"gte": 1.5}}]}, idx) == [0, 1, 3]
        assert select(payloads, {"must": [{"key": "v", "match": {"except": [3]}}]}, idx) == [0, 1, 2, 3]
        assert select(payloads, {"must": [{"key": "v", "match": {"except": [1]}}]}, idx) == [0, 1, 2, 3]
        assert select(payloads, {"must": [{"key": "v", "match": {"any": [2]}}]}, idx) == []


def test_filter_keys() -> None:
    flt = parse_filter(
        {
            "must": [
                {"key": "a", "match": {"value": 1}},
                {"nested": {"key": "n", "filter": {"must": [{"is_empty": {"key": "x"}}]}}},
            ],
            "should": [{"must_not": [{"is_null": {"key": "b.c"}}]}],
            "min_should": {
                "conditions": [{"key": "d[]", "range": {"gt": 1}}, {"has_id": [1]}],
                "min_count": 1,
            },
        }
    )
    assert filter_keys(flt) == {"a", "n", "n[].x", "b.c", "d[]"}
