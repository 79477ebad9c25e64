"""Payload indexes: schemas, maintenance, facets, order values, persistence, type errors, and the
evaluator's use of them (no payload scans when indexes answer; cardinality estimates)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from qcluster.errors import BadInputError
from qcluster.shards.filters import estimate_cardinality, evaluate, parse_filter
from qcluster.shards.filters.conditions import FieldCondition
from qcluster.shards.filters.view import PayloadView
from qcluster.shards.payload_index import (
    build_index,
    condition_type_error,
    files,
    parse_field_schema,
)
from qcluster.shards.payload_index.text import TextAnalyzer


def cond(raw: dict[str, Any]) -> FieldCondition:
    c = parse_filter({"must": [raw]}).must[0]
    assert isinstance(c, FieldCondition)
    return c


def hits(mask: np.ndarray | None) -> list[int]:
    assert mask is not None
    return [int(i) for i in np.flatnonzero(mask)]


# ---------------------------------------------------------------------- schemas
@pytest.mark.parametrize(
    "raw",
    [
        "keyword",
        "integer",
        "float",
        "bool",
        "geo",
        "text",
        "datetime",
        "uuid",
        {"type": "keyword", "is_tenant": True, "on_disk": True},
        {"type": "integer", "lookup": False, "range": True, "is_principal": True},
        {"type": "text", "tokenizer": "prefix", "min_token_len": 2, "max_token_len": 10, "lowercase": False},
        {
            "type": "text",
            "tokenizer": "multilingual",
            "phrase_matching": True,
            "stopwords": {"custom": ["the"]},
        },
        {"type": "uuid", "is_tenant": True, "memory": "cold", "enable_hnsw": False},
        {"type": "datetime", "is_principal": None},
    ],
)
def test_field_schema_accepts_qdrant_forms(raw: Any) -> None:
    schema = parse_field_schema(raw)
    assert schema.type == (raw if isinstance(raw, str) else raw["type"])
    idx = build_index("k", schema)
    info = idx.schema_info()
    assert info["data_type"] == schema.type and info["points"] == 0
    if isinstance(raw, dict) and any(v is not None for k, v in raw.items() if k != "type"):
        assert info["params"]["type"] == schema.type
    else:
        assert "params" not in info


@pytest.mark.parametrize(
    ("raw", "field", "reason"),
    [
        ("keywrd", "field_schema", "unknown payload index type"),
        (5, "field_schema", "expected a type name"),
        ({"tokenizer": "word"}, "field_schema.type", "unknown payload index type"),
        ({"type": "keyword", "lookup": True}, "field_schema.lookup", "unknown parameter"),
        ({"type": "keyword", "is_tenant": "yes"}, "field_schema.is_tenant", "true or false"),
        ({"type": "integer", "lookup": False, "range": False}, "field_schema", "lookup or range"),
        ({"type": "text", "tokenizer": "ngram"}, "field_schema.tokenizer", "unknown tokenizer"),
        ({"type": "text", "min_token_len": -1}, "field_schema.min_token_len", "non-negative"),
        (
            {"type": "text", "min_token_len": 5, "max_token_len": 2},
            "field_schema.min_token_len",
            "greater than",
        ),
        ({"type": "text", "stopwords": 5}, "field_schema.stopwords", "expected a language"),
        (
            {"type": "text", "stopwords": {"languages": ["klingon"]}},
            "field_schema.stopwords.languages",
            "not available",
        ),
        (
            {"type": "text", "stemmer": {"type": "snowball", "language": "english"}},
            "field_schema.stemmer",
            "not supported",
        ),
        ({"type": "geo", "memory": "ram"}, "field_schema.memory", "cold, cached, pinned"),
    ],
)
def test_field_schema_rejects(raw: Any, field: str, reason: str) -> None:
    with pytest.raises(BadInputError) as err:
        parse_field_schema(raw)
    assert err.value.field == field
    assert reason in err.value.message


def test_index_key_must_be_a_path() -> None:
    with pytest.raises(BadInputError, match="invalid payload key"):
        build_index("a b", parse_field_schema("keyword"))


# ---------------------------------------------------------------------- maintenance and answers
def test_keyword_index_add_remove_replace() -> None:
    idx = build_index("tags[]", parse_field_schema("keyword"))
    idx.add(0, {"tags": ["a", "b", 5]})
    idx.add(1, {"tags": ["b"]})
    idx.add(2, {"tags": "a"})  # `[]` on a non-array finds nothing
    idx.add(3, None)
    assert idx.points_count() == 2
    assert hits(idx.mask(cond({"key": "tags[]", "match": {"value": "b"}}), 4)) == [0, 1]
    assert hits(idx.mask(cond({"key": "tags[]", "match": {"value": 5}}), 4)) == [0]  # the other value
    idx.add(1, {"tags": ["c"]})  # replaces
    assert hits(idx.mask(cond({"key": "tags[]", "match": {"value": "b"}}), 4)) == [0]
    idx.remove(0)
    assert hits(idx.mask(cond({"key": "tags[]", "match": {"any": ["a", "b", "c"]}}), 4)) == [1]
    assert hits(idx.mask(cond({"key": "tags[]", "match": {"value": 5}}), 4)) == []
    assert idx.points_count() == 1
    assert idx.count(cond({"key": "tags[]", "match": {"value": "c"}})) == 1
    # a smaller size cuts the answer
    assert hits(idx.mask(cond({"key": "tags[]", "match": {"value": "c"}}), 1)) == []
    # counts that would include points the index never saw are not given
    assert idx.count(parse_filter({"must": [{"is_empty": {"key": "tags[]"}}]}).must[0]) is None  # type: ignore[arg-type]


def test_unservable_conditions_return_none() -> None:
    text = build_index("t", parse_field_schema("text"))
    text.add(0, {"t": "hello"})
    assert text.mask(cond({"key": "t", "match": {"value": "hello"}}), 1) is None
    flt = build_index("f", parse_field_schema("float"))
    flt.add(0, {"f": 1})
    assert flt.mask(cond({"key": "f", "match": {"value": 1}}), 1) is None  # 1 vs 1.0 is not known
    lookup_off = build_index("i", parse_field_schema({"type": "integer", "lookup": False}))
    lookup_off.add(0, {"i": 1})
    assert lookup_off.mask(cond({"key": "i", "match": {"value": 1}}), 1) is None
    assert hits(lookup_off.mask(cond({"key": "i", "range": {"gte": 1}}), 1)) == [0]


def test_numeric_indexes_stay_exact_through_many_updates() -> None:
    rng = np.random.default_rng(7)
    n = 3000
    payloads: list[dict[str, Any] | None] = [
        {"p": int(v), "f": float(v) / 3} for v in rng.integers(0, 1000, n)
    ]
    view = PayloadView(payloads)
    view.add_index("p", "integer")
    view.add_index("f", "float")
    flt = parse_filter(
        {"must": [{"key": "p", "range": {"gte": 100, "lt": 400}}, {"key": "f", "range": {"lte": 120.5}}]}
    )

    def expected() -> list[int]:
        return [
            i
            for i, pl in enumerate(view.payloads)
            if pl is not None
            and any(
                isinstance(x, int) and 100 <= x < 400
                for x in (pl["p"] if isinstance(pl["p"], list) else [pl["p"]])
            )
            and pl["f"] <= 120.5
        ]

    assert np.flatnonzero(evaluate(flt, view)).tolist() == expected()
    # updates interleaved with queries: first answered from the "dirty" offsets, later rebuilt
    for round_ in range(6):
        for off in rng.integers(0, n, 120):
            v = int(rng.integers(0, 1000))
            view.set_payload(int(off), {"p": [v, v + round_] if v % 2 else v, "f": v / 3} if v % 7 else None)
        assert np.flatnonzero(evaluate(flt, view)).tolist() == expected()


def test_facet_counts_most_frequent_first() -> None:
    view = PayloadView([{"c": "b"}, {"c": ["a", "b", "b"]}, {"c": "a"}, {"c": "z"}, {"c": 1}, {}])
    idx = view.add_index("c", "keyword")
    assert idx.facet(None, 10) == [("a", 2), ("b", 2), ("z", 1)]
    assert idx.facet(None, 1) == [("a", 2)]
    assert idx.facet(np.array([True, True, False, True, True, True]), 10) == [("b", 2), ("a", 1), ("z", 1)]
    ints = build_index("n", parse_field_schema("integer"))
    for off, v in enumerate([3, 1, 3, [1, 2]]):
        ints.add(off, {"n": v})
    assert ints.facet(None, 10) == [(1, 2), (3, 2), (2, 1)]
    flags = build_index("b", parse_field_schema("bool"))
    for off, v in enumerate([True, False, True]):
        flags.add(off, {"b": v})
    assert flags.facet(None, 10) == [(True, 2), (False, 1)]
    with pytest.raises(BadInputError, match="needs a keyword, integer, bool or uuid index"):
        build_index("f", parse_field_schema("float")).facet(None, 10)


def test_order_values() -> None:
    ints = build_index("n", parse_field_schema("integer"))
    ints.add(0, {"n": [5, 2, 2.5]})
    assert ints.order_values(0) == [5, 2]
    dates = build_index("d", parse_field_schema("datetime"))
    dates.add(0, {"d": "1970-01-01T00:00:01.5Z"})
    assert dates.order_values(0) == [1_500_000]  # microseconds, Qdrant's order_value for datetimes
    floats = build_index("f", parse_field_schema("float"))
    floats.add(0, {"f": 1})
    assert floats.order_values(0) == [1.0]
    assert floats.order_values(9) == []
    assert build_index("k", parse_field_schema("keyword")).order_values(0) == []


@pytest.mark.parametrize(
    ("schema", "payloads", "condition"),
    [
        ("keyword", [{"k": "a"}, {"k": ["b", 1]}, {"k": None}], {"key": "k", "match": {"except": ["a"]}}),
        ({"type": "integer"}, [{"k": 1}, {"k": [2, 2.5]}, {"k": "x"}], {"key": "k", "range": {"gt": 1}}),
        ("float", [{"k": 1}, {"k": [2, 2.5]}, {"k": "x"}], {"key": "k", "range": {"gt": 1}}),
        ("bool", [{"k": True}, {"k": [False]}, {}], {"key": "k", "match": {"value": False}}),
        (
            "datetime",
            [{"k": "2024-01-01"}, {"k": "2024-02-01T00:00:00+01:00"}],
            {"key": "k", "range": {"gt": "2024-01-15"}},
        ),
        (
            "uuid",
            [{"k": "f47ac10b-58cc-4372-a567-0e02b2c3d479"}, {"k": "no"}],
            {"key": "k", "match": {"value": "no"}},
        ),
        (
            "geo",
            [{"k": {"lat": 1.0, "lon": 2.0}}, {"k": [{"lat": 50.0, "lon": 2.0}]}],
            {"key": "k", "geo_radius": {"center": {"lat": 1, "lon": 2}, "radius": 10}},
        ),
        (
            {"type": "text", "phrase_matching": True, "tokenizer": "whitespace"},
            [{"k": "Hello world"}, {"k": ["a b", "world hello"]}],
            {"key": "k", "match": {"phrase": "hello world"}},
        ),
    ],
)
def test_persistence_round_trip(
    schema: Any, payloads: list[dict[str, Any]], condition: dict[str, Any], tmp_path: Path
) -> None:
    idx = build_index("k", parse_field_schema(schema))
    for off, p in enumerate(payloads):
        idx.add(off, p)
    files.save(idx, tmp_path, token=7)
    _, meta_file = files.paths(tmp_path, "k")
    assert meta_file.read_bytes().startswith(b"{")  # JSON and numpy columns, never pickle
    back = files.load(tmp_path, "k", idx.schema, token=7)
    assert back is not None
    assert type(back) is type(idx) and back.key == "k" and back.schema.to_json() == idx.schema.to_json()
    c = cond(condition)
    size = len(payloads)
    assert hits(back.mask(c, size)) == hits(idx.mask(c, size))
    is_null = parse_filter({"must": [{"is_null": {"key": "k"}}]}).must[0]
    assert hits(back.mask(is_null, size)) == hits(idx.mask(is_null, size))  # type: ignore[arg-type]
    assert back.points_count() == idx.points_count()
    assert files.load(tmp_path, "k", idx.schema, token=8) is None  # saved for other payloads


@pytest.mark.parametrize("data", [b"", b"not json", b"[]", b'{"format": 2}', b'{"format": 1, "key": "k"}'])
def test_damaged_index_files_are_not_loaded(data: bytes, tmp_path: Path) -> None:
    idx = build_index("k", parse_field_schema("keyword"))
    idx.add(0, {"k": "a"})
    files.save(idx, tmp_path, token=1)
    _, meta_file = files.paths(tmp_path, "k")
    meta_file.write_bytes(data)
    assert files.load(tmp_path, "k", idx.schema, token=1) is None  # rebuilt from payloads instead


@pytest.mark.parametrize(
    ("schema", "condition", "reason"),
    [
        (
            "keyword",
            {"key": "k", "range": {"gt": 1}},
            "a range needs an index of type integer or float, but the key's index is keyword",
        ),
        ("integer", {"key": "k", "match": {"value": "x"}}, "type keyword or uuid"),
        ("float", {"key": "k", "match": {"value": 1}}, "type integer,"),
        ("text", {"key": "k", "geo_radius": {"center": {"lat": 0, "lon": 0}, "radius": 1}}, "geo"),
        ("keyword", {"key": "k", "match": {"text": "x"}}, "text"),
        ("text", {"key": "k", "match": {"phrase": "x y"}}, "phrase_matching"),
        ({"type": "integer", "range": False}, {"key": "k", "range": {"gt": 1}}, "range enabled"),
        ({"type": "integer", "lookup": False}, {"key": "k", "match": {"any": [1]}}, "lookup enabled"),
        ("float", {"key": "k", "range": {"gt": "2020-01-01"}}, "datetime"),
    ],
)
def test_condition_type_error(schema: Any, condition: dict[str, Any], reason: str) -> None:
    message = condition_type_error(parse_field_schema(schema), cond(condition))
    assert message is not None and reason in message


@pytest.mark.parametrize(
    ("schema", "condition"),
    [
        ("keyword", {"key": "k", "match": {"any": ["a"]}}),
        ("uuid", {"key": "k", "match": {"value": "a"}}),
        ("integer", {"key": "k", "match": {"except": [1]}}),
        ("integer", {"key": "k", "range": {"lt": 1}}),
        ("float", {"key": "k", "range": {"lt": 1}}),
        ("datetime", {"key": "k", "range": {"lt": "2020-01-01"}}),
        (
            "geo",
            {
                "key": "k",
                "geo_bounding_box": {"top_left": {"lat": 1, "lon": 0}, "bottom_right": {"lat": 0, "lon": 1}},
            },
        ),
        ({"type": "text", "phrase_matching": True}, {"key": "k", "match": {"phrase": "a"}}),
        ("bool", {"key": "k", "values_count": {"gt": 1}}),
        ("geo", {"key": "k", "is_empty": True}),
    ],
)
def test_condition_type_fits(schema: Any, condition: dict[str, Any]) -> None:
    assert condition_type_error(parse_field_schema(schema), cond(condition)) is None


# ---------------------------------------------------------------------- text analysis
def analyzer(**params: Any) -> TextAnalyzer:
    return TextAnalyzer(parse_field_schema({"type": "text", **params}))


def test_tokenizers() -> None:
    assert analyzer().doc_tokens("Hello, world! Привет_мир 42") == ["hello", "world", "привет", "мир", "42"]
    assert analyzer(tokenizer="whitespace", lowercase=False).doc_tokens("Hello, world!") == [
        "Hello,",
        "world!",
    ]
    assert analyzer(min_token_len=3, max_token_len=5).doc_tokens("a abc abcdef") == ["abc"]
    assert analyzer(stopwords={"custom": ["The"]}).doc_tokens("the cat") == ["cat"]
    assert analyzer(stopwords="english").doc_tokens("The robot of the star") == ["robot", "star"]
    assert analyzer(stopwords={"languages": ["english"], "custom": ["robot"]}).doc_tokens("the robot") == []
    assert analyzer(ascii_folding=True).doc_tokens("Ação Straße") == ["acao", "strasse"]
    assert analyzer(tokenizer="multilingual").doc_tokens("Café 123 ok") == ["cafe", "ok"]
    prefix = analyzer(tokenizer="prefix", min_token_len=1, max_token_len=4)
    assert prefix.doc_tokens("hello, мир!") == ["h", "he", "hel", "hell", "м", "ми", "мир"]
    assert prefix.query_tokens("hello, мир!") == {"hell", "мир"}


def test_text_index_semantics() -> None:
    view = PayloadView(
        [{"t": "the quick brown fox"}, {"t": "Quick thinking"}, {"t": ["brown", "fox"]}, {"t": 5}]
    )
    view.add_index("t", {"type": "text", "tokenizer": "prefix", "max_token_len": 10})

    def run(match: dict[str, Any]) -> list[int]:
        return np.flatnonzero(evaluate(parse_filter({"must": [{"key": "t", "match": match}]}), view)).tolist()

    assert run({"text": "qui"}) == [0, 1]  # prefix tokenizer: query words match as prefixes
    assert run({"text": "brown fox"}) == [0, 2]  # tokens of all strings of a point together
    assert run({"text_any": "think bro"}) == [0, 1, 2]
    assert run({"text": "!!"}) == []  # no token, no match
    assert run({"text": "cat fox"}) == []


# ---------------------------------------------------------------------- evaluator and indexes
class CountingView(PayloadView):
    """A view that counts payload reads (to see which offsets a filter scanned)."""

    def __init__(self, payloads: list[dict[str, Any] | None]):
        super().__init__(payloads)
        self.reads = 0

    def payload(self, offset: int) -> dict[str, Any] | None:
        self.reads += 1
        return super().payload(offset)


def test_indexed_filters_read_no_payloads_and_scans_are_narrowed() -> None:
    n = 20_000
    payloads: list[dict[str, Any] | None] = [
        {
            "tenant": f"t{i % 100}",
            "price": i % 1000,
            "loc": {"lat": (i % 180) - 89.5, "lon": 0.0},
            "note": "x" * (i % 3),
        }
        for i in range(n)
    ]
    view = CountingView(payloads)
    for key, schema in (("tenant", "keyword"), ("price", "integer"), ("loc", "geo")):
        view.add_index(key, schema)
    indexed = parse_filter(
        {
            "must": [
                {"key": "tenant", "match": {"any": ["t1", "t2"]}},
                {"key": "price", "range": {"lt": 500}},
            ],
            "must_not": [
                {
                    "key": "loc",
                    "geo_bounding_box": {
                        "top_left": {"lat": 0, "lon": -1},
                        "bottom_right": {"lat": -90, "lon": 1},
                    },
                }
            ],
        }
    )
    mask = evaluate(indexed, view)
    assert view.reads == 0
    assert int(mask.sum()) == sum(
        1 for i in range(n) if i % 100 in (1, 2) and i % 1000 < 500 and not (-90 < (i % 180) - 89.5 < 0)
    )
    # an unindexed condition after an indexed one only scans what the index let through
    mixed = parse_filter(
        {"must": [{"key": "note", "values_count": {"gte": 1}}, {"key": "tenant", "match": {"value": "t7"}}]}
    )
    view.reads = 0
    got = evaluate(mixed, view)
    assert view.reads == n // 100
    assert got.sum() == n // 100
    # estimates: exact when every leaf is indexed, bounded and sampled otherwise
    assert estimate_cardinality(indexed, view, None) == (int(mask.sum()),) * 3
    live = np.ones(n, dtype=np.bool_)
    live[::2] = False
    lo, exp, hi = estimate_cardinality(indexed, view, live)
    assert lo == exp == hi == int((mask & live).sum())
    sampled = parse_filter({"must": [{"key": "note", "match": {"text": "x"}}]})
    view.reads = 0
    lo, exp, hi = estimate_cardinality(sampled, view, None, sample_size=300)
    assert view.reads <= 300
    assert (lo, hi) == (0, n) and abs(exp - 2 * n / 3) < n * 0.1
    bounded = parse_filter(
        {"must": [{"key": "note", "match": {"text": "x"}}, {"key": "tenant", "match": {"value": "t7"}}]}
    )
    lo, exp, hi = estimate_cardinality(bounded, view, None, sample_size=300)
    assert lo == 0 and hi == n // 100 and exp <= hi


def test_readers_and_a_writer_share_indexes() -> None:
    """One writer changes payloads while readers evaluate: no reader sees a broken structure."""
    import threading

    n = 2000
    view = PayloadView([{"k": f"v{i % 10}", "n": i % 50, "g": {"lat": i % 90, "lon": 0}} for i in range(n)])
    for key, schema in (("k", "keyword"), ("n", "integer"), ("g", "geo")):
        view.add_index(key, schema)
    flt = parse_filter(
        {
            "should": [{"key": "k", "match": {"value": "v3"}}, {"key": "n", "range": {"gte": 45}}],
            "must_not": [{"key": "g", "geo_radius": {"center": {"lat": 10, "lon": 0}, "radius": 300_000}}],
        }
    )
    errors: list[BaseException] = []
    done = threading.Event()

    def read() -> None:
        try:
            while not done.is_set():
                evaluate(flt, view)
                view.indexes["k"].facet(None, 5)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    readers = [threading.Thread(target=read) for _ in range(2)]
    for t in readers:
        t.start()
    rng = np.random.default_rng(3)
    for step in range(3000):
        off = int(rng.integers(0, n))
        view.set_payload(off, {"k": f"v{step % 10}", "n": [step % 50, 1], "g": {"lat": step % 90, "lon": 0}})
    done.set()
    for t in readers:
        t.join()
    assert errors == []
    plain = PayloadView(view.payloads)
    assert np.array_equal(evaluate(flt, view), evaluate(flt, plain))


def test_an_index_without_values_is_loaded_not_rebuilt(tmp_path: Path) -> None:
    """A segment where the indexed key holds no value (its payloads lack it) still saves a file
    that loads (it used to fail to restore, and the index was rebuilt from payloads each time)."""
    idx = build_index("k", parse_field_schema("keyword"))
    idx.add(0, {"other": 1})
    idx.add(1, {"k": None})
    files.save(idx, tmp_path, token=3)
    back = files.load(tmp_path, "k", idx.schema, token=3)
    assert back is not None and back.points_count() == 0
    is_null = parse_filter({"must": [{"is_null": {"key": "k"}}]}).must[0]
    assert hits(back.mask(is_null, 2)) == hits(idx.mask(is_null, 2)) == [1]  # type: ignore[arg-type]
