"""Resource safety against a real subprocess peer: no single request can hang, crash or exhaust it.

Every case is well-formed JSON that passes the schema. Each asserts an answer below 500 within
``hostile.ANSWER_WITHIN`` seconds (:func:`hostile.send`), the answer a safe peer gives (a 4xx
naming the field and the bound, or every match when a size is beyond the data), and, after it,
that the peer still serves and lost no point (:func:`hostile.assert_healthy`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from qcluster.testing.server import ServerProcess

from . import hostile
from .hostile import (
    POINTS,
    VEC,
    deep_filter,
    deep_nested,
    deep_value,
    error_of,
    send,
    vec,
    wide_filter,
    with_raw,
)

C = "/collections/c"


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    srv = ServerProcess(Path(tmp_path_factory.mktemp("hostile"))).start()
    try:
        hostile.seed(srv.url)
        yield srv.url
        assert srv.proc is not None and srv.proc.poll() is None, srv.log_tail()
    finally:
        srv.stop()


@pytest.fixture(autouse=True)
def healthy_after(base: str) -> Iterator[None]:
    yield
    hostile.assert_healthy(base)


def refused(out: object, *words: str) -> None:
    message = error_of(out)
    assert message, out
    for word in words:
        assert word in message, (word, message)


# ------------------------------------------------------------------------------ the cases
def test_filter_nested_200_levels_is_refused_naming_the_bound(base: str) -> None:
    status, out = send(
        base, "POST", f"{C}/points/query", raw=with_raw({"query": VEC}, filter=deep_filter(200))
    )
    assert status == 400
    refused(out, "filter", "max_filter_depth", "32")


@pytest.mark.parametrize(
    ("path", "body", "examples"),
    [
        ("/points/query", {"query": VEC, "limit": 1_000_000_000}, 0),
        ("/points/search", {"vector": VEC, "limit": 1_000_000_000}, 0),
        ("/points/recommend", {"positive": [1], "limit": 1_000_000_000}, 1),
        (
            "/points/query",
            {"query": {"recommend": {"positive": [1], "strategy": "best_score"}}, "limit": 10**9},
            1,
        ),
        (
            "/points/query",
            {"prefetch": {"query": VEC, "limit": 10**9}, "query": {"fusion": "rrf"}, "limit": 10**9},
            0,
        ),
        ("/points/discover", {"target": 1, "context": [{"positive": 2, "negative": 3}], "limit": 10**9}, 3),
    ],
    ids=["query", "search", "recommend", "recommend-best-score", "prefetch", "discover"],
)
def test_a_limit_beyond_the_collection_returns_every_match(
    base: str, path: str, body: dict[str, object], examples: int
) -> None:
    status, out = send(base, "POST", C + path, body)
    assert status == 200, out
    hits = out["result"]["points"] if isinstance(out["result"], dict) else out["result"]
    assert len(hits) == POINTS - examples
    assert len({h["id"] for h in hits}) == len(hits)


def test_shard_number_one_million_is_refused(base: str) -> None:
    status, out = send(
        base, "PUT", "/collections/s", {"vectors": {"size": 4, "distance": "Dot"}, "shard_number": 10**6}
    )
    assert status == 400
    refused(out, "shard_number", "max_shard_number")
    assert send(base, "GET", "/collections/s")[0] == 404


def test_group_size_one_billion_answers_the_groups_there_are(base: str) -> None:
    body = {"query": VEC, "group_by": "g", "group_size": 10**9, "limit": 3, "with_payload": ["g"]}
    status, out = send(base, "POST", f"{C}/points/query/groups", body)
    assert status == 200, out
    groups = out["result"]["groups"]
    assert len(groups) == 3 and all(len(g["hits"]) == POINTS // 10 for g in groups)
    assert all(h["payload"]["g"] == g["id"] for g in groups for h in g["hits"])


@pytest.mark.parametrize(
    ("hnsw", "field", "setting"),
    [
        ({"m": 10**6}, "hnsw_config.m", "max_hnsw_m"),
        ({"ef_construct": 10**9}, "hnsw_config.ef_construct", "max_hnsw_ef_construct"),
    ],
)
def test_absurd_index_parameters_are_refused(
    base: str, hnsw: dict[str, int], field: str, setting: str
) -> None:
    body = {"vectors": {"size": 4, "distance": "Dot"}, "hnsw_config": hnsw}
    status, out = send(base, "PUT", "/collections/absurd", body)
    assert status == 400
    refused(out, field, setting)
    per_vector = {"vectors": {"size": 4, "distance": "Dot", "hnsw_config": hnsw}}
    status, out = send(base, "PUT", "/collections/absurd", per_vector)
    assert status == 400
    refused(out, f"vectors.{field}", setting)
    status, out = send(base, "PATCH", C, {"hnsw_config": hnsw})
    assert status == 400
    refused(out, field, setting)


# ------------------------------------------------------------------------------ deep and wide filters
@pytest.mark.parametrize("clause", ["must", "should", "must_not"])
def test_filter_depth_bound_is_exact(base: str, clause: str) -> None:
    ok_body = with_raw({"query": VEC, "limit": 3}, filter=deep_filter(32, clause))
    status, out = send(base, "POST", f"{C}/points/query", raw=ok_body)
    assert status == 200, out
    status, out = send(
        base, "POST", f"{C}/points/query", raw=with_raw({"query": VEC}, filter=deep_filter(33, clause))
    )
    assert status == 400
    refused(out, "max_filter_depth")


@pytest.mark.parametrize(
    ("method", "path", "fields"),
    [
        ("POST", "/points/count", {}),
        ("POST", "/points/scroll", {}),
        ("POST", "/facet", {"key": "tag"}),
        ("POST", "/points/delete?wait=true", {}),
        ("POST", "/points/payload?wait=true", {"payload": {"x": 1}}),
        ("PUT", "/points?wait=true", {"points": [{"id": 10**6, "vector": VEC}]}),
    ],
)
def test_deep_filters_are_refused_on_every_endpoint(
    base: str, method: str, path: str, fields: dict[str, object]
) -> None:
    key = "update_filter" if method == "PUT" else "filter"
    status, out = send(base, method, C + path, raw=with_raw(fields, **{key: deep_filter(500)}))
    assert status == 400
    refused(out, "max_filter_depth")
    status, out = send(base, method, C + path, raw=with_raw(fields, **{key: deep_nested(120)}))
    assert status == 400
    refused(out, "max_filter_depth")


def test_deep_filter_inside_prefetch_and_batch_is_refused(base: str) -> None:
    prefetch = b'{"query": ' + orjson.dumps(VEC) + b', "filter": ' + deep_filter(100) + b"}"
    status, out = send(
        base, "POST", f"{C}/points/query", raw=with_raw({"query": {"fusion": "rrf"}}, prefetch=prefetch)
    )
    assert status == 400
    refused(out, "prefetch", "max_filter_depth")
    search = b'{"vector": ' + orjson.dumps(VEC) + b', "limit": 3, "filter": ' + deep_filter(100) + b"}"
    status, out = send(base, "POST", f"{C}/points/search/batch", raw=b'{"searches": [' + search + b"]}")
    assert status == 400
    refused(out, "searches[0].filter", "max_filter_depth")


def test_wide_filters(base: str) -> None:
    status, out = send(base, "POST", f"{C}/points/count", {"filter": wide_filter(10_001)})
    assert status == 400
    refused(out, "max_filter_conditions", "10000")
    # Under the bound: thousands of unindexed conditions are scanned and answered.
    status, out = send(base, "POST", f"{C}/points/count", {"filter": wide_filter(3000, key="n_unindexed")})
    assert status == 200 and out["result"]["count"] == 0
    ids = list(range(0, 100_000))
    status, out = send(base, "POST", f"{C}/points/count", {"filter": {"must": [{"has_id": ids}]}})
    assert status == 200 and out["result"]["count"] == POINTS
    values = [f"t{i}" for i in range(100_000)]
    status, out = send(
        base, "POST", f"{C}/points/count", {"filter": {"must": [{"key": "tag", "match": {"any": values}}]}}
    )
    assert status == 200 and out["result"]["count"] == POINTS


def test_huge_polygons_and_payload_selectors(base: str) -> None:
    ring = [{"lat": 0.0, "lon": i / 1000} for i in range(20_000)] + [{"lat": 0.0, "lon": 0.0}]
    cond = {"key": "loc", "geo_polygon": {"exterior": {"points": ring}}}
    status, out = send(base, "POST", f"{C}/points/count", {"filter": {"must": [cond]}})
    assert status == 400
    refused(out, "max_filter_conditions")
    keys = [f"k{i}" for i in range(100_000)] + ["n"]
    body = {"query": VEC, "limit": POINTS, "with_payload": keys}
    status, out = send(base, "POST", f"{C}/points/query", body)
    assert status == 200 and all(set(h["payload"]) == {"n"} for h in out["result"]["points"])
    status, out = send(
        base, "POST", f"{C}/points/scroll", {"limit": POINTS, "with_payload": {"exclude": keys}}
    )
    assert status == 200 and all(
        "n" not in r["payload"] and "g" in r["payload"] for r in out["result"]["points"]
    )


def test_min_should_with_a_huge_count(base: str) -> None:
    flt = {"min_should": {"conditions": [{"key": "g", "match": {"value": 1}}], "min_count": 2**63 - 1}}
    status, out = send(base, "POST", f"{C}/points/count", {"filter": flt})
    assert status == 200 and out["result"]["count"] == 0


# ------------------------------------------------------------------------------ prefetches
def test_prefetch_depth_and_count_are_bounded(base: str) -> None:
    def nested(depth: int) -> dict[str, object]:
        node: dict[str, object] = {"query": VEC, "limit": 5}
        for _ in range(depth - 1):
            node = {"prefetch": node, "query": VEC, "limit": 5}
        return node

    status, out = send(base, "POST", f"{C}/points/query", {"prefetch": nested(8), "query": VEC, "limit": 3})
    assert status == 200 and len(out["result"]["points"]) == 3
    status, out = send(base, "POST", f"{C}/points/query", {"prefetch": nested(9), "query": VEC})
    assert status == 400
    refused(out, "max_prefetch_depth")
    leaf, q = b'{"query": [1, 0, 0, 0, 0, 0, 0, 0]}', b', "query": [1, 0, 0, 0, 0, 0, 0, 0]}'
    deep = b'{"prefetch": ' * 300 + leaf + q * 300
    status, out = send(base, "POST", f"{C}/points/query", raw=deep)
    assert status == 400
    refused(out, "max_prefetch_depth")
    many = [{"query": vec(i), "limit": 2} for i in range(65)]
    status, out = send(base, "POST", f"{C}/points/query", {"prefetch": many, "query": {"fusion": "rrf"}})
    assert status == 400
    refused(out, "max_prefetches")


# ------------------------------------------------------------------------------ huge numbers
HUGE = (2**64 - 1, -(2**63), 1e308, 2**63 - 1, -1e308)


@pytest.mark.parametrize(
    "cycle",
    [True, pytest.param(False, marks=[pytest.mark.slow, pytest.mark.timeout(1800)])],
    ids=["one-per-field", "all"],
)
def test_huge_numbers_in_every_numeric_field_of_every_read(base: str, cycle: bool) -> None:
    statuses = hostile.sweep_reads(base, "c", HUGE, cycle)
    assert sum(statuses.values()) > 60 and set(statuses) <= set(range(200, 500)), statuses
    assert statuses.get(200), statuses  # clamped, not only refused


@pytest.mark.parametrize(
    "cycle",
    [True, pytest.param(False, marks=[pytest.mark.slow, pytest.mark.timeout(1800)])],
    ids=["one-per-field", "all"],
)
def test_huge_numbers_in_every_numeric_field_of_a_collection_config(base: str, cycle: bool) -> None:
    statuses = hostile.sweep_configs(base, (2**63 - 1, 1e308, 2**64 - 1), cycle)
    assert statuses.get(200) and set(statuses) <= {200, 400, 422}, statuses


def test_huge_timeouts_and_offsets(base: str) -> None:
    status, out = send(
        base, "POST", f"{C}/points/query?timeout=18446744073709551615", {"query": VEC, "limit": 2}
    )
    assert status == 200 and len(out["result"]["points"]) == 2
    status, out = send(base, "POST", f"{C}/points/query?timeout=-5", {"query": VEC})
    assert status == 422
    refused(out, "timeout")
    status, out = send(base, "POST", f"{C}/points/query", {"query": VEC, "offset": 2**64 - 1})
    assert status == 200 and out["result"]["points"] == []
    status, out = send(base, "POST", f"{C}/points/scroll", {"limit": 2**64 - 1})
    assert status == 200 and len(out["result"]["points"]) == POINTS


# ------------------------------------------------------------------------------ payloads, ids, batches
def test_huge_and_deep_payloads(base: str) -> None:
    send(base, "PUT", "/collections/pl", {"vectors": {"size": 4, "distance": "Dot"}})
    try:
        big = "x" * (20 * 2**20)
        status, out = send(
            base,
            "PUT",
            "/collections/pl/points?wait=true",
            {"points": [{"id": 1, "vector": [1, 2, 3, 4], "payload": {"s": big}}]},
        )
        assert status == 200, out
        status, out = send(base, "POST", "/collections/pl/points", {"ids": [1]})
        assert status == 200 and len(out["result"][0]["payload"]["s"]) == len(big)
        point = b'{"id": 2, "vector": [1, 2, 3, 4], "payload": ' + deep_value(64) + b"}"
        raw = b'{"points": [' + point + b"]}"
        assert send(base, "PUT", "/collections/pl/points?wait=true", raw=raw)[0] == 200
        status, out = send(base, "POST", "/collections/pl/points", {"ids": [2]})
        assert status == 200 and out["result"][0]["id"] == 2
        point = b'{"id": 3, "vector": [1, 2, 3, 4], "payload": ' + deep_value(65) + b"}"
        status, out = send(
            base, "PUT", "/collections/pl/points?wait=true", raw=b'{"points": [' + point + b"]}"
        )
        assert status == 400
        refused(out, "payload", "max_json_depth")
        status, out = send(
            base,
            "POST",
            "/collections/pl/points/payload?wait=true",
            raw=b'{"points": [2], "key": "'
            + b".".join([b"k"] * 40)
            + b'", "payload": '
            + deep_value(30)
            + b"}",
        )
        assert status == 400
        refused(out, "key", "max_json_depth")
        status, out = send(base, "POST", "/collections/pl/points/count", {})
        assert status == 200 and out["result"]["count"] == 2
        too_big = (
            b'{"points": [{"id": 4, "vector": [1, 2, 3, 4], "payload": {"s": "'
            + b"y" * (33 * 2**20)
            + b'"}}]}'
        )
        status, out = send(base, "PUT", "/collections/pl/points?wait=true", raw=too_big)
        assert status == 413
        refused(out, "service.max_request_size_mb")
    finally:
        send(base, "DELETE", "/collections/pl")


def test_body_limits_per_endpoint(base: str) -> None:
    query = (
        b'{"query": '
        + orjson.dumps(VEC)
        + b', "filter": {"must": [{"has_id": ['
        + b"1, " * (3 * 2**20)
        + b"1]}]}}"
    )
    status, out = send(base, "POST", f"{C}/points/query", raw=query)
    assert status == 413
    refused(out, "max_query_request_size_mb")
    meta = {"vectors": {"size": 4, "distance": "Dot"}, "metadata": {"blob": "z" * (2 * 2**20)}}
    status, out = send(base, "PUT", "/collections/meta", meta)
    assert status == 413
    refused(out, "max_admin_request_size_mb")
    status, out = send(
        base,
        "PUT",
        "/collections/meta",
        raw=with_raw({"vectors": {"size": 4, "distance": "Dot"}}, metadata=deep_value(100)),
    )
    assert status == 400
    refused(out, "metadata", "max_json_depth")


def test_huge_id_lists_and_batches(base: str) -> None:
    ids = list(range(100_001))
    for method, path, body in (
        ("POST", "/points", {"ids": ids}),
        ("POST", "/points/delete?wait=true", {"points": ids}),
        ("POST", "/points/recommend", {"positive": ids, "limit": 3}),
        ("POST", "/points/query", {"query": {"recommend": {"positive": ids}}}),
    ):
        status, out = send(base, method, C + path, body)
        assert status == 400, (path, out)
        refused(out, "max_points_per_request")
    status, out = send(base, "POST", f"{C}/points", {"ids": ids[:100_000]})
    assert status == 200 and len(out["result"]) == POINTS
    searches = [{"vector": VEC, "limit": 1} for _ in range(1001)]
    status, out = send(base, "POST", f"{C}/points/search/batch", {"searches": searches})
    assert status == 400
    refused(out, "max_batch_queries")
    ops = [{"delete": {"points": [10**9]}} for _ in range(1001)]
    status, out = send(base, "POST", f"{C}/points/batch?wait=true", {"operations": ops})
    assert status == 400
    refused(out, "max_batch_operations")
    big = [{"id": 10**6 + i, "vector": VEC} for i in range(100_001)]
    status, out = send(base, "PUT", f"{C}/points?wait=true", {"points": big})
    assert status == 400
    refused(out, "max_points_per_request")


def test_answers_too_large_for_memory_are_refused_before_running(base: str) -> None:
    # Each query alone returns the whole collection; a thousand of them with payloads would not fit.
    searches = [
        {"query": VEC, "limit": 10**9, "with_payload": True, "with_vector": True} for _ in range(1000)
    ]
    status, out = send(base, "POST", f"{C}/points/query/batch", {"searches": searches})
    assert status == 400
    refused(out, "searches[", "max_response_mb")
    few = searches[:3]
    status, out = send(base, "POST", f"{C}/points/query/batch", {"searches": few})
    assert status == 200 and [len(r["points"]) for r in out["result"]] == [POINTS] * 3


# ------------------------------------------------------------------------------ collections
def test_absurd_collection_configs(base: str) -> None:
    vectors = {f"v{i}": {"size": 4, "distance": "Dot"} for i in range(65)}
    for body, words in (
        ({"vectors": vectors}, ("vectors", "max_named_vectors")),
        (
            {"vectors": {"size": 4, "distance": "Dot"}, "replication_factor": 2**63 - 1},
            ("replication_factor",),
        ),
        (
            {"vectors": {"size": 4, "distance": "Dot"}, "write_consistency_factor": 10**6},
            ("write_consistency_factor",),
        ),
        ({"vectors": {"size": 65537, "distance": "Dot"}}, ("size",)),
        ({"vectors": {"size": 4, "distance": "Dot", "hnsw_config": {"payload_m": 10**6}}}, ("payload_m",)),
    ):
        status, out = send(base, "PUT", "/collections/absurd", body)
        assert 400 <= status < 500, (body, out)
        refused(out, *words)
    assert send(base, "GET", "/collections/absurd")[0] == 404
    custom = {"vectors": {"size": 4, "distance": "Dot"}, "sharding_method": "custom"}
    assert send(base, "PUT", "/collections/custom", custom)[0] == 200
    try:
        status, out = send(
            base, "PUT", "/collections/custom/shards", {"shard_key": "a", "shards_number": 10**6}
        )
        assert status == 400
        refused(out, "shards_number", "max_shard_number")
        # the same through Qdrant's cluster operations endpoint
        for key_op, words in (
            (
                {"shard_key": "b", "shards_number": 10**6},
                ("create_sharding_key.shards_number", "max_shard_number"),
            ),
            ({"shard_key": "b", "shards_number": 129}, ("create_sharding_key.shards_number", "129", "128")),
            (
                {"shard_key": "b", "replication_factor": 2**63 - 1},
                ("create_sharding_key.replication_factor", "max_replication_factor"),
            ),
        ):
            status, out = send(base, "POST", "/collections/custom/cluster", {"create_sharding_key": key_op})
            assert status == 400, (key_op, out)
            refused(out, *words)
        assert (
            send(base, "PUT", "/collections/custom/shards", {"shard_key": "a", "shards_number": 2})[0] == 200
        )
        status, out = send(base, "GET", "/collections/custom/shards")
        assert status == 200 and [k["key"] for k in out["result"]["shard_keys"]] == ["a"], out
    finally:
        send(base, "DELETE", "/collections/custom")
    send(
        base,
        "PUT",
        "/collections/named",
        {"vectors": {f"v{i}": {"size": 2, "distance": "Dot"} for i in range(64)}},
    )
    try:
        status, out = send(
            base, "PUT", "/collections/named/vectors/one_more", {"dense": {"size": 2, "distance": "Dot"}}
        )
        assert status == 400
        refused(out, "max_named_vectors")
    finally:
        send(base, "DELETE", "/collections/named")


@pytest.mark.parametrize(
    ("method", "path", "field"),
    [
        ("GET", f"{C}/points/{{}}", "id"),
        ("GET", f"{C}/shards/{{}}/snapshots", "shard_id"),
        ("POST", f"{C}/shards/{{}}/snapshots", "shard_id"),
        ("POST", f"{C}/points/count?consistency={{}}", "consistency"),
    ],
)
def test_numbers_in_the_url(base: str, method: str, path: str, field: str) -> None:
    """Path and query numbers: thousands of digits, beyond u64, digits ``int`` refuses."""
    for raw in ("9" * 5000, str(2**64), "\u00b2", "\u0663" * 3):
        status, out = send(base, method, path.format(raw), {} if method == "POST" else None)
        assert 400 <= status < 500, (path, raw[:20], out)
        refused(out, field)


@pytest.mark.parametrize(
    "count", [20, pytest.param(300, marks=[pytest.mark.slow, pytest.mark.timeout(1800)])]
)
def test_many_collections(base: str, count: int) -> None:
    names = [f"many{i}" for i in range(count)]
    for name in names:
        status, out = send(base, "PUT", f"/collections/{name}", {"vectors": {"size": 4, "distance": "Dot"}})
        assert status == 200, out
    status, out = send(base, "GET", "/collections")
    assert status == 200 and set(names) <= {c["name"] for c in out["result"]["collections"]}
    for name in names:
        assert send(base, "DELETE", f"/collections/{name}")[0] == 200


def test_max_collections_setting(tmp_path: Path) -> None:
    srv = ServerProcess(tmp_path, env={"QDRANT__STORAGE__MAX_COLLECTIONS": "2"}).start()
    try:
        for name in ("a", "b"):
            assert (
                send(srv.url, "PUT", f"/collections/{name}", {"vectors": {"size": 2, "distance": "Dot"}})[0]
                == 200
            )
        status, out = send(srv.url, "PUT", "/collections/c", {"vectors": {"size": 2, "distance": "Dot"}})
        assert status == 400
        refused(out, "Max collections limit reached: 2")
    finally:
        srv.stop()
