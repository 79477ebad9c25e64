"""Filter parsing: accepted spellings, key paths, datetimes, and every bad-input error (a
BadInputError naming the field and the reason, never a crash)."""

from __future__ import annotations

from typing import Any

import pytest

from qcluster.errors import BadInputError
from qcluster.shards.filters import parse_filter
from qcluster.shards.filters.conditions import FieldCondition, MatchText, Nested, Range
from qcluster.shards.filters.datetimes import datetime_micros
from qcluster.shards.filters.paths import parse_path, raw_values, values


def field(cond: dict[str, Any]) -> FieldCondition:
    c = parse_filter({"must": [cond]}).must[0]
    assert isinstance(c, FieldCondition)
    return c


BAD: list[tuple[Any, str, str]] = [
    # (filter, field path in the error, words in the reason)
    ("red", "filter", "expected a filter object"),
    ({"mustt": []}, "filter.mustt", "unknown field"),
    ({"must": "x"}, "filter.must", "expected a condition"),
    ({"must": [1]}, "filter.must[0]", "expected a condition object"),
    ({"must": [{"foo": {"key": "a"}}]}, "filter.must[0]", "unknown condition"),
    ({"must": [{"is_empty": {"key": "a"}, "has_id": [1]}]}, "filter.must[0]", "unknown condition"),
    ({"must": [{"key": "a"}]}, "filter.must[0]", "At least one field condition must be specified"),
    ({"must": [{"key": "a", "mach": {"value": 1}}]}, "filter.must[0].mach", "unknown field"),
    ({"must": [{"key": "", "match": {"value": 1}}]}, "filter.must[0].key", "empty"),
    ({"must": [{"key": 5, "match": {"value": 1}}]}, "filter.must[0].key", "expected a payload key"),
    ({"must": [{"key": "a b", "match": {"value": 1}}]}, "filter.must[0].key", "invalid payload key"),
    ({"must": [{"key": "a[x]", "match": {"value": 1}}]}, "filter.must[0].key", "array index"),
    ({"must": [{"key": "a.", "match": {"value": 1}}]}, "filter.must[0].key", "expected a key name"),
    ({"must": [{"key": "a", "match": {}}]}, "filter.must[0].match", "empty match"),
    ({"must": [{"key": "a", "match": {"value": None}}]}, "filter.must[0].match", "empty match"),
    ({"must": [{"key": "a", "match": {"value": 1, "any": [1]}}]}, "filter.must[0].match", "exactly one"),
    ({"must": [{"key": "a", "match": {"valu": 1}}]}, "filter.must[0].match.valu", "unknown field"),
    ({"must": [{"key": "a", "match": {"value": 1.5}}]}, "filter.must[0].match.value", "use a range"),
    ({"must": [{"key": "a", "match": {"value": [1]}}]}, "filter.must[0].match.value", "expected a string"),
    ({"must": [{"key": "a", "match": {"value": 2**64}}]}, "filter.must[0].match.value", "64-bit"),
    ({"must": [{"key": "a", "match": {"any": ["a", 1]}}]}, "filter.must[0].match.any", "not mixed"),
    ({"must": [{"key": "a", "match": {"any": [True]}}]}, "filter.must[0].match.any", "no bools"),
    ({"must": [{"key": "a", "match": {"except": "a"}}]}, "filter.must[0].match.except", "expected a list"),
    ({"must": [{"key": "a", "match": {"text": 5}}]}, "filter.must[0].match.text", "expected a string"),
    (
        {"must": [{"key": "a", "match": {"value": 1}, "range": {"gt": 1}}]},
        "filter.must[0]",
        "exactly one check",
    ),
    ({"must": [{"key": "a", "range": {"gt": "abc"}}]}, "filter.must[0].range.gt", "RFC 3339"),
    (
        {"must": [{"key": "a", "range": {"gt": "2020-01-01", "lt": 5}}]},
        "filter.must[0].range.lt",
        "datetime string",
    ),
    ({"must": [{"key": "a", "range": {"gt": True}}]}, "filter.must[0].range.gt", "expected a number"),
    ({"must": [{"key": "a", "range": {"gt": [1]}}]}, "filter.must[0].range.gt", "expected a number"),
    ({"must": [{"key": "a", "range": {"above": 1}}]}, "filter.must[0].range.above", "unknown field"),
    ({"must": [{"key": "a", "range": 5}]}, "filter.must[0].range", "expected a range object"),
    (
        {"must": [{"key": "a", "geo_radius": {"center": {"lat": 91, "lon": 0}, "radius": 1}}]},
        "filter.must[0].geo_radius.center.lat",
        "outside [-90, 90]",
    ),
    (
        {"must": [{"key": "a", "geo_radius": {"center": {"lat": 0, "lon": -181}, "radius": 1}}]},
        "filter.must[0].geo_radius.center.lon",
        "outside [-180, 180]",
    ),
    (
        {"must": [{"key": "a", "geo_radius": {"center": {"lat": 0}, "radius": 1}}]},
        "filter.must[0].geo_radius.center",
        "needs 'lon'",
    ),
    (
        {"must": [{"key": "a", "geo_radius": {"center": {"lat": "0", "lon": 0}, "radius": 1}}]},
        "filter.must[0].geo_radius.center.lat",
        "expected a number",
    ),
    (
        {"must": [{"key": "a", "geo_radius": {"center": [0, 0], "radius": 1}}]},
        "filter.must[0].geo_radius.center",
        "geo point",
    ),
    (
        {"must": [{"key": "a", "geo_radius": {"center": {"lat": 0, "lon": 0}, "radius": -1}}]},
        "filter.must[0].geo_radius.radius",
        "negative",
    ),
    (
        {"must": [{"key": "a", "geo_radius": {"center": {"lat": 0, "lon": 0}}}]},
        "filter.must[0].geo_radius",
        "needs center and radius",
    ),
    (
        {
            "must": [
                {
                    "key": "a",
                    "geo_bounding_box": {
                        "top_left": {"lat": 0, "lon": 0},
                        "bottom_right": {"lat": 1, "lon": 1},
                    },
                }
            ]
        },
        "filter.must[0].geo_bounding_box",
        "below",
    ),
    (
        {"must": [{"key": "a", "geo_polygon": {"exterior": {"points": [{"lat": 0, "lon": 0}] * 3}}}]},
        "filter.must[0].geo_polygon.exterior.points",
        "at least 4",
    ),
    (
        {
            "must": [
                {
                    "key": "a",
                    "geo_polygon": {
                        "exterior": {
                            "points": [
                                {"lat": 0, "lon": 0},
                                {"lat": 1, "lon": 0},
                                {"lat": 1, "lon": 1},
                                {"lat": 0, "lon": 1},
                            ]
                        }
                    },
                }
            ]
        },
        "filter.must[0].geo_polygon.exterior.points",
        "closed",
    ),
    (
        {
            "must": [
                {
                    "key": "a",
                    "geo_polygon": {
                        "exterior": {
                            "points": [
                                {"lat": 0, "lon": 0},
                                {"lat": 1, "lon": 0},
                                {"lat": 1, "lon": 1},
                                {"lat": 0, "lon": 0},
                            ]
                        },
                        "interiors": [{"points": [{"lat": 100, "lon": 0}]}],
                    },
                }
            ]
        },
        "filter.must[0].geo_polygon.interiors[0].points",
        "at least 4",
    ),
    ({"must": [{"key": "a", "values_count": {"gt": -1}}]}, "filter.must[0].values_count.gt", "non-negative"),
    ({"must": [{"key": "a", "values_count": {"gt": 1.5}}]}, "filter.must[0].values_count.gt", "non-negative"),
    ({"must": [{"key": "a", "is_empty": "yes"}]}, "filter.must[0].is_empty", "true or false"),
    ({"must": [{"is_empty": {"field": "a"}}]}, "filter.must[0].is_empty.field", "unknown field"),
    ({"must": [{"is_null": "a"}]}, "filter.must[0].is_null", "expected {key}"),
    ({"must": [{"has_id": 5}]}, "filter.must[0].has_id", "expected a list"),
    ({"must": [{"has_id": [1, "nope"]}]}, "filter.must[0].has_id[1]", "UUID"),
    ({"must": [{"has_id": [-1]}]}, "filter.must[0].has_id[0]", "unsigned"),
    ({"must": [{"has_vector": 3}]}, "filter.must[0].has_vector", "vector name"),
    ({"must": [{"nested": {"key": "a"}}]}, "filter.must[0].nested", "needs key and filter"),
    (
        {"must": [{"nested": {"key": "a", "filter": {"must": [{"has_id": [1]}]}}}]},
        "filter.must[0].nested.filter",
        "has_id",
    ),
    (
        {"must": [{"nested": {"key": "a", "filter": {"should": [{"must": [{"has_vector": ""}]}]}}}]},
        "filter.must[0].nested.filter",
        "has_vector",
    ),
    (
        {"must": [{"nested": {"key": "a", "filter": {"must": [{"key": "b", "range": {"gt": "x"}}]}}}]},
        "filter.must[0].nested.filter.must[0].range.gt",
        "RFC 3339",
    ),
    ({"min_should": {"conditions": [], "min_count": 0}}, "filter.min_should.min_count", ">= 1"),
    ({"min_should": {"conditions": {"key": "a"}, "min_count": 1}}, "filter.min_should.conditions", "list"),
    ({"min_should": {"min_count": 1}}, "filter.min_should", "needs conditions"),
    (
        {"should": [{"must_not": [{"key": "a", "match": {"value": {}}}]}]},
        "filter.should[0].must_not[0].match.value",
        "expected a string",
    ),
]


@pytest.mark.parametrize(("raw", "path", "reason"), BAD)
def test_bad_input_names_field_and_reason(raw: Any, path: str, reason: str) -> None:
    with pytest.raises(BadInputError) as err:
        parse_filter(raw)
    assert err.value.field == path
    # validation errors (422) come bracketed, as Qdrant lists them
    assert err.value.message.removeprefix("[").startswith(f"{path}: ")
    assert reason in err.value.message


def test_parse_accepts_documented_shapes() -> None:
    assert parse_filter(None).is_empty()
    assert parse_filter({"must": None, "should": [], "must_not": None}).is_empty()
    c = field(
        {
            "key": "date",
            "range": {"gt": "2023-02-08T10:49:00Z", "gte": None, "lt": None, "lte": "2024-01-31 10:14:31Z"},
        }
    )
    assert isinstance(c.check, Range) and c.check.datetime
    assert c.check.gt == datetime_micros("2023-02-08T10:49:00Z") and c.check.gte is None
    c = field({"key": "a", "range": {"gt": 1, "lt": 2.5}})
    assert c.check == Range(gt=1.0, lt=2.5)
    c = field({"key": "t", "match": {"phrase": "brown fox"}})
    assert c.check == MatchText("brown fox", mode="phrase")
    c = field({"key": "t", "match": {"text_any": "a b"}})
    assert c.check == MatchText("a b", mode="text_any")
    n = parse_filter({"must": [{"nested": {"key": "diet", "filter": {}}}]}).must[0]
    assert isinstance(n, Nested) and n.array_key == "diet[]" and n.path == ("diet", None)
    # the is_empty / is_null field-condition spellings
    field({"key": "a", "is_empty": False, "match": None})


def test_paths() -> None:
    assert parse_path("a") == ("a",)
    assert parse_path("country.cities[].population") == ("country", "cities", None, "population")
    assert parse_path('meta."a.b c"[2].x-y_z') == ("meta", "a.b c", 2, "x-y_z")
    assert parse_path("über.straße") == ("über", "straße")
    payload = {"a": [{"b": [1, 2]}, {"b": 3}, {"c": 4}, 5], "o": {"b": 6}, "x.y": 7}
    assert raw_values(payload, parse_path("a[].b")) == [[1, 2], 3]
    assert values(payload, "a[].b") == [1, 2, 3]
    assert values(payload, "a.b") == []  # `.b` does not look inside the array
    assert values(payload, "a[0].b") == [1, 2]
    assert values(payload, "a[9].b") == []
    assert values(payload, "o[].b") == []  # `[]` on an object finds nothing
    assert values(payload, '"x.y"') == [7]
    assert values(payload, "a[]") == [{"b": [1, 2]}, {"b": 3}, {"c": 4}, 5]
    assert values(None, "a") == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2023-02-08T10:49:00Z", "2023-02-08T10:49:00+00:00"),
        ("2023-02-08T11:49:00+01:00", "2023-02-08T10:49:00+00:00"),
        ("2023-02-08T11:49:00+0100", "2023-02-08T10:49:00+00:00"),
        ("2023-02-08T11:49:00+01", "2023-02-08T10:49:00+00:00"),
        ("2023-02-08 10:49:00z", "2023-02-08T10:49:00+00:00"),
        ("2023-02-08t10:49:00", "2023-02-08T10:49:00+00:00"),
        ("2023-02-08T10:49", "2023-02-08T10:49:00+00:00"),
        ("2023-02-08 10:49", "2023-02-08T10:49:00+00:00"),
        ("2023-02-08", "2023-02-08T00:00:00+00:00"),
        ("2023-02-08T10:49:00.123456789Z", "2023-02-08T10:49:00.123456+00:00"),
        ("1969-12-31T23:59:59.5Z", "1969-12-31T23:59:59.500000+00:00"),
    ],
)
def test_datetime_formats(text: str, expected: str) -> None:
    from datetime import datetime

    want = datetime.fromisoformat(expected)
    micros = datetime_micros(text)
    assert micros is not None
    assert micros == (want.timestamp() * 1_000_000).__round__()


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2023-02-30",
        "2023-13-01",
        "2023-02-08T25:00:00",
        "2023-02-08T10:49+01:00",
        "08/02/2023",
        "2023-02-08T10:49:00+25:00",
        "x" * 50,
    ],
)
def test_datetime_rejects(text: str) -> None:
    assert datetime_micros(text) is None


def test_top_level_parses_are_remembered_and_errors_are_not() -> None:
    from qcluster.errors import BadInputError
    from qcluster.shards.filters.parse import _parse_filter, parse_filter

    raw = {"must": [{"key": "a", "match": {"value": 1}}], "must_not": [{"key": "b", "range": {"gt": 2}}]}
    first = parse_filter(raw)
    assert parse_filter(dict(reversed(list(raw.items())))) is first  # same JSON, any key order
    assert first == _parse_filter(raw, "filter")
    # 1 and true are different filters (strict types), so they must not share an entry
    as_bool = parse_filter({"must": [{"key": "a", "match": {"value": True}}]})
    as_int = parse_filter({"must": [{"key": "a", "match": {"value": 1}}]})
    assert repr(as_bool) != repr(as_int)
    for _ in range(2):
        with pytest.raises(BadInputError):
            parse_filter({"must": [{"key": "a", "match": {"valu": 1}}]})


def test_cached_filter_only_answers_what_was_parsed() -> None:
    from qcluster.shards.filters.parse import STACK_SAFE_DEPTH
    from qcluster.shards.filters.remembered import remembered_filter

    raw = {"must": [{"key": "cached_only", "match": {"value": "x"}}]}
    assert remembered_filter(raw)[1] is None  # looking never parses
    parsed = parse_filter(raw)
    assert remembered_filter({"must": [{"key": "cached_only", "match": {"value": "x"}}]})[1] is parsed
    # a filter too deep to parse is never remembered, so every attempt is measured and refused
    deep: dict[str, Any] = {"must": [{"key": "a", "match": {"value": 1}}]}
    for _ in range(STACK_SAFE_DEPTH + 5):
        deep = {"must": [deep]}
    for _ in range(2):
        with pytest.raises(BadInputError, match="levels deep"):
            parse_filter(deep)
        assert remembered_filter(deep)[1] is None


@pytest.mark.parametrize(
    "bounds",
    [
        {"gte": 5, "lt": 9},
        {"gt": -(2**63), "lte": 2**63 - 1},
        {"gt": 1.5, "lt": None},
        {"lte": float("inf")},
        {"gte": 2**64},  # past 64 bits: the general path converts it
        {"gt": 3, "lt": 7.25},
    ],
)
def test_numeric_ranges_parse_as_floats_whatever_the_path(bounds: dict[str, Any]) -> None:
    """Plain 64-bit integers and floats take a shortcut in the range parser: the result is the
    same Range the general path builds (every bound a float, nulls absent)."""
    c = field({"key": "p", "range": bounds})
    assert isinstance(c.check, Range) and not c.check.datetime
    for name in ("gt", "gte", "lt", "lte"):
        want = bounds.get(name)
        got = getattr(c.check, name)
        assert got == (None if want is None else float(want))
        assert got is None or type(got) is float


@pytest.mark.parametrize("bad", [True, float("nan"), [1], {"x": 1}])
def test_a_bad_bound_after_a_good_one_names_its_field(bad: Any) -> None:
    with pytest.raises(BadInputError) as err:
        parse_filter({"must": [{"key": "p", "range": {"gte": 1, "lt": bad}}]})
    assert err.value.field == "filter.must[0].range.lt"


def test_parse_small_filter_bounds_conditions_and_shares_the_cache() -> None:
    from qcluster.shards.filters.parse import parse_small_filter
    from qcluster.shards.filters.remembered import remembered_filter

    small = {"must": [{"key": "small_one", "match": {"value": 1}}, {"key": "b", "range": {"lt": 3}}]}
    key, known = remembered_filter(small)
    assert key is not None and known is None
    parsed = parse_small_filter(small, key, 2)
    assert parsed is not None and parsed == parse_filter({"must": small["must"]})
    assert remembered_filter(small)[1] is parsed  # remembered like parse_filter's parses
    assert parse_filter(small) is parsed
    big = {"must": [{"key": "big_one", "match": {"value": i}} for i in range(3)]}
    key, _ = remembered_filter(big)
    assert parse_small_filter(big, key, 2) is None  # more conditions than asked: not parsed
    assert remembered_filter(big)[1] is None
    with pytest.raises(BadInputError, match=r"filter\.must\[0\]"):
        parse_small_filter({"must": [5]}, None, 2)
    assert parse_small_filter(None, None, 2) == parse_filter(None)


def test_present_kinds_are_reported_in_documented_order() -> None:
    with pytest.raises(BadInputError, match="got value, any"):
        parse_filter({"must": [{"key": "a", "match": {"any": [1], "value": 1}}]})
    with pytest.raises(BadInputError, match="got match, range"):
        parse_filter({"must": [{"key": "a", "range": {"gt": 1}, "match": {"value": 1}}]})
