"""Property-based fuzzing of a real subprocess peer with large values: random read and write bodies
whose numbers come from the edges of their types (0, 1, 10^9, 2^63 - 1, 2^64 - 1, -2^63, huge
floats), with random filters (wide, deep, huge bounds and id lists) and prefetches.

Every request must answer below 500 within the suite's bound; afterwards the peer still serves
and holds every point it was seeded with. A small budget runs by default, a big one in the slow
run (``make test-slow``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qcluster.testing.server import ServerProcess

from . import hostile
from .hostile import DIM, send

BIG_INTS = st.sampled_from([0, 1, 2, 10, 10**9, 2**31, 2**53, 2**63 - 1, 2**64 - 1, -1, -(2**63)])
NUMBERS = st.one_of(
    BIG_INTS,
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([1e308, -1e308, 5e-324, 0.5]),
)
KEYS = st.sampled_from(["n", "g", "tag", "loc", "missing", "n[]", "a.b"])
POINT_IDS = st.one_of(BIG_INTS.filter(lambda v: v >= 0), st.just("f47ac10b-58cc-4372-a567-0e02b2c3d479"))


def _field_condition() -> st.SearchStrategy[dict[str, Any]]:
    bounds = st.dictionaries(st.sampled_from(["gt", "gte", "lt", "lte"]), NUMBERS, min_size=1, max_size=2)
    checks = st.one_of(
        st.fixed_dictionaries(
            {"match": st.fixed_dictionaries({"value": st.one_of(BIG_INTS, st.text(max_size=5))})}
        ),
        st.fixed_dictionaries({"match": st.fixed_dictionaries({"any": st.lists(BIG_INTS, max_size=50)})}),
        st.fixed_dictionaries({"range": bounds}),
        st.fixed_dictionaries(
            {"values_count": st.dictionaries(st.sampled_from(["gt", "lte"]), BIG_INTS, min_size=1)}
        ),
        st.fixed_dictionaries(
            {
                "geo_radius": st.fixed_dictionaries(
                    {
                        "center": st.fixed_dictionaries({"lat": st.just(1.0), "lon": st.just(2.0)}),
                        "radius": NUMBERS,
                    }
                )
            }
        ),
    )
    return st.tuples(KEYS, checks).map(lambda kc: {"key": kc[0], **kc[1]})


LEAVES = st.one_of(
    _field_condition(),
    st.fixed_dictionaries({"has_id": st.lists(POINT_IDS, max_size=200)}),
    st.fixed_dictionaries({"is_empty": st.fixed_dictionaries({"key": KEYS})}),
)


def _filter_of(children: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    clause = st.sampled_from(["must", "should", "must_not"])
    plain = st.dictionaries(clause, st.lists(children, max_size=4), min_size=1, max_size=3)
    min_should = st.fixed_dictionaries(
        {
            "min_should": st.fixed_dictionaries(
                {"conditions": st.lists(children, max_size=3), "min_count": BIG_INTS.filter(lambda v: v >= 1)}
            )
        }
    )
    nested = st.fixed_dictionaries(
        {"nested": st.fixed_dictionaries({"key": st.just("arr"), "filter": plain})}
    )
    return st.one_of(plain, min_should, nested.map(lambda n: {"must": [n]}))


FILTERS = st.one_of(
    st.recursive(LEAVES, _filter_of, max_leaves=25).map(
        lambda f: f if "key" not in f and "has_id" not in f else {"must": [f]}
    ),
    st.integers(min_value=1, max_value=80).map(lambda d: _chain(d)),
    st.integers(min_value=1, max_value=20_000).map(
        lambda n: {"should": [{"key": "g", "match": {"value": i}} for i in range(n)]}
    ),
)


def _chain(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"key": "g", "match": {"value": 1}}
    for _ in range(depth):
        node = {"must": [node]}
    return node


VECTORS = st.lists(NUMBERS, min_size=DIM, max_size=DIM)
QUERIES = st.one_of(
    VECTORS,
    POINT_IDS,
    st.fixed_dictionaries({"nearest": VECTORS, "mmr": st.fixed_dictionaries({"candidates_limit": BIG_INTS})}),
    st.fixed_dictionaries(
        {
            "recommend": st.fixed_dictionaries(
                {
                    "positive": st.lists(POINT_IDS, max_size=5),
                    "negative": st.lists(POINT_IDS, max_size=3),
                    "strategy": st.sampled_from(["average_vector", "best_score", "sum_scores"]),
                }
            )
        }
    ),
    st.fixed_dictionaries(
        {
            "context": st.lists(
                st.fixed_dictionaries({"positive": POINT_IDS, "negative": POINT_IDS}), max_size=3
            )
        }
    ),
    st.fixed_dictionaries({"order_by": st.fixed_dictionaries({"key": st.just("n"), "start_from": NUMBERS})}),
    st.fixed_dictionaries({"rrf": st.fixed_dictionaries({"k": BIG_INTS})}),
    st.just({"fusion": "dbsf"}),
    st.just({"sample": "random"}),
)
PARAMS = st.fixed_dictionaries(
    {},
    optional={
        "hnsw_ef": BIG_INTS,
        "exact": st.booleans(),
        "quantization": st.fixed_dictionaries(
            {}, optional={"oversampling": NUMBERS, "rescore": st.booleans()}
        ),
    },
)
PREFETCH = st.fixed_dictionaries(
    {"query": QUERIES},
    optional={"limit": BIG_INTS, "filter": FILTERS, "params": PARAMS, "score_threshold": NUMBERS},
)
QUERY_BODY = st.fixed_dictionaries(
    {},
    optional={
        "query": QUERIES,
        "limit": BIG_INTS,
        "offset": BIG_INTS,
        "filter": FILTERS,
        "params": PARAMS,
        "score_threshold": NUMBERS,
        "prefetch": st.lists(PREFETCH, max_size=3),
        "with_payload": st.booleans(),
        "with_vector": st.booleans(),
    },
)
REQUESTS = st.one_of(
    QUERY_BODY.map(lambda b: ("POST", "/points/query", b)),
    st.lists(QUERY_BODY, max_size=4).map(lambda qs: ("POST", "/points/query/batch", {"searches": qs})),
    st.tuples(QUERY_BODY, BIG_INTS, BIG_INTS).map(
        lambda t: (
            "POST",
            "/points/query/groups",
            {**t[0], "group_by": "g", "group_size": t[1], "limit": t[2]},
        )
    ),
    st.fixed_dictionaries(
        {}, optional={"limit": BIG_INTS, "filter": FILTERS, "with_vector": st.booleans()}
    ).map(lambda b: ("POST", "/points/scroll", b)),
    st.fixed_dictionaries({}, optional={"filter": FILTERS}).map(lambda b: ("POST", "/points/count", b)),
    st.fixed_dictionaries({"key": st.just("tag")}, optional={"limit": BIG_INTS, "filter": FILTERS}).map(
        lambda b: ("POST", "/facet", b)
    ),
    st.fixed_dictionaries({"ids": st.lists(POINT_IDS, max_size=300)}).map(lambda b: ("POST", "/points", b)),
    st.fixed_dictionaries(
        {"vector": VECTORS, "limit": BIG_INTS}, optional={"offset": BIG_INTS, "params": PARAMS}
    ).map(lambda b: ("POST", "/points/search", b)),
    # writes that change nothing: ids and filters that match no seeded point
    st.fixed_dictionaries({"points": st.lists(BIG_INTS.filter(lambda v: v >= 10**9), max_size=50)}).map(
        lambda b: ("POST", "/points/delete?wait=true", b)
    ),
    FILTERS.map(
        lambda f: (
            "POST",
            "/points/payload?wait=true",
            {"payload": {"x": 1}, "filter": {"must": [f, {"has_id": [10**12]}]}},
        )
    ),
)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    srv = ServerProcess(Path(tmp_path_factory.mktemp("fuzz"))).start()
    try:
        hostile.seed(srv.url)
        yield srv.url
        hostile.assert_healthy(srv.url)
        assert srv.proc is not None and srv.proc.poll() is None, srv.log_tail()
    finally:
        srv.stop()


def _fuzz(base: str, request: tuple[str, str, dict[str, Any]]) -> None:
    method, path, body = request
    send(base, method, "/collections/c" + path, body)


@pytest.mark.parametrize(
    "budget",
    [40, pytest.param(800, marks=[pytest.mark.slow, pytest.mark.timeout(1800)])],
    ids=["small-budget", "big-budget"],
)
def test_large_values_never_get_a_5xx(base: str, budget: int) -> None:
    @settings(
        max_examples=budget,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )
    @given(REQUESTS)
    def run(request: tuple[str, str, dict[str, Any]]) -> None:
        _fuzz(base, request)

    run()
    hostile.assert_healthy(base)
