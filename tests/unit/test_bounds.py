"""The pure parts of resource safety: filter shapes, JSON depth, prefetch trees, the request-model
bounds (``service.limits`` through the validation context), collection-config bounds, the
memory estimate of a read, and the deadline context."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from qcluster import deadline
from qcluster.api.actions.bounds import check_config_bounds
from qcluster.api.rest.parse import adapt, model
from qcluster.api.rest.points import UPSERT
from qcluster.collection.query.budget import POINT_BYTES, Want
from qcluster.errors import BadInputError, TimeoutError_
from qcluster.models.bounds import json_depth, key_depth, prefetch_shape
from qcluster.models.collections import (
    CreateCollection,
    UpdateCollection,
    config_after_update,
    config_from_create,
)
from qcluster.models.points import PointRequestIn, SetPayloadIn, UpdateOperationsIn
from qcluster.models.query import QueryBatchIn, QueryIn, RecommendIn
from qcluster.settings import LimitsSettings, load_settings
from qcluster.shards.base import PayloadSelector
from qcluster.shards.filters import parse_filter
from qcluster.shards.filters.shape import STACK_SAFE_DEPTH, FilterShape, filter_shape
from qcluster.shards.payload_ops import delete_keys, select_payload
from qcluster.types import MAX_U64, parse_decimal


def chain(depth: int, clause: str = "must") -> dict[str, Any]:
    """A filter ``depth`` levels deep (built iteratively)."""
    node: dict[str, Any] = {"key": "a", "match": {"value": 1}}
    for _ in range(depth):
        node = {clause: [node]}
    return node


# ------------------------------------------------------------------------------ filter shape
def test_filter_shape_counts_levels_and_conditions() -> None:
    assert filter_shape({}, 10, 10) == FilterShape(1, 0) and filter_shape(None, 10, 10) == FilterShape(0, 0)
    assert filter_shape(chain(1), 10, 10).depth == 1
    assert filter_shape(chain(5, "should"), 10, 10).depth == 5
    flt = {
        "must": {"key": "a", "match": {"value": 1}},  # one condition, not a list
        "should": [chain(2), {"key": "b", "range": {"gt": 1}}],
        "min_should": {"conditions": [chain(3)], "min_count": 1},
        "must_not": [{"nested": {"key": "arr", "filter": chain(2)}}],
    }
    shape = filter_shape(flt, 100, 100)
    assert shape.depth == 4  # the min_should chain: 1 + 3
    assert shape.conditions == 1 + (1 + 2) + 1 + (1 + 3) + (1 + 2)


def test_polygon_vertices_count_as_conditions() -> None:
    ring = {"points": [{"lat": 0.0, "lon": float(i)} for i in range(99)] + [{"lat": 0.0, "lon": 0.0}]}
    cond = {"key": "loc", "geo_polygon": {"exterior": ring, "interiors": [ring, ring]}}
    assert filter_shape({"must": [cond]}, 10, 10**6).conditions == 1 + 300


def test_selecting_many_payload_keys_costs_what_the_payload_holds() -> None:
    payload = {"a": {"b": 1, "c": 2}, "d": 3, "e": [1]}
    keys = (*(f"k{i}" for i in range(50_000)), "a.b", "e")
    assert select_payload(payload, PayloadSelector(True, keys)) == {"a": {"b": 1}, "e": [1]}
    assert select_payload(payload, PayloadSelector(True, None, keys)) == {"a": {"c": 2}, "d": 3}
    assert select_payload(payload, PayloadSelector(True, ("a", "zz"))) == {"a": {"b": 1, "c": 2}}
    assert delete_keys(payload, ("d", "a.c", "missing.x")) == {"a": {"b": 1}, "e": [1]}


def test_filter_shape_stops_at_the_bound() -> None:
    deep = chain(100_000)  # far deeper than anything recursive could walk
    assert filter_shape(deep, 32, 10**9).depth == 33
    wide = {"should": [{"key": "a", "match": {"value": i}} for i in range(50_000)]}
    assert filter_shape(wide, 32, 100).conditions == 101


def test_parse_filter_refuses_what_would_exhaust_the_stack() -> None:
    with pytest.raises(BadInputError) as err:
        parse_filter(chain(sys.getrecursionlimit() * 2))
    assert err.value.field == "filter" and str(STACK_SAFE_DEPTH) in err.value.message
    assert parse_filter(chain(STACK_SAFE_DEPTH - 1)) is not None  # deep but safe: parses


# ------------------------------------------------------------------------------ json depth, prefetch, keys
def test_json_depth() -> None:
    assert json_depth(1, 10) == 0 and json_depth([], 10) == 1 and json_depth({"a": [1.0] * 1000}, 10) == 2
    assert json_depth({"a": [1, {"b": [[]]}]}, 10) == 5
    value: Any = 1
    for _ in range(100_000):
        value = {"a": value}
    assert json_depth(value, 64) == 65


def test_prefetch_shape_and_key_depth() -> None:
    assert prefetch_shape({"query": [1]}, 8, 64) == (0, 0)
    node: dict[str, Any] = {"query": [1]}
    for _ in range(10):
        node = {"prefetch": [node, {"query": [2]}]}
    assert prefetch_shape(node, 100, 100) == (10, 20)
    assert prefetch_shape(node, 4, 100)[0] == 5
    assert prefetch_shape(node, 100, 7)[1] == 8
    assert key_depth("a.b[].c") == 3 and key_depth("a") == 1


# ------------------------------------------------------------------------------ request models
TIGHT = LimitsSettings(
    max_filter_depth=3,
    max_filter_conditions=5,
    max_json_depth=4,
    max_prefetch_depth=2,
    max_prefetches=3,
    max_batch_queries=2,
    max_batch_operations=2,
    max_points_per_request=3,
)


def refused(fn: Any, *words: str) -> BadInputError:
    with pytest.raises(BadInputError) as err:
        fn()
    assert err.value.http_status == 400
    for word in words:
        assert word in err.value.message, (word, err.value.message)
    return err.value


def test_request_bounds_name_the_field_and_the_setting() -> None:
    err = refused(lambda: model(QueryIn, {"filter": chain(4)}, TIGHT), "filter", "max_filter_depth", "3")
    assert err.field == "filter"
    model(QueryIn, {"filter": chain(3)}, TIGHT)
    wide = {"should": [{"key": "a", "match": {"value": i}} for i in range(6)]}
    refused(lambda: model(QueryIn, {"filter": wide}, TIGHT), "max_filter_conditions")
    deep_prefetch = {"prefetch": {"prefetch": {"prefetch": {"query": [1]}}}}
    refused(lambda: model(QueryIn, deep_prefetch, TIGHT), "max_prefetch_depth")
    refused(lambda: model(QueryIn, {"prefetch": [{}, {}, {}, {}]}, TIGHT), "max_prefetches")
    err = refused(
        lambda: model(QueryBatchIn, {"searches": [{"prefetch": {"filter": chain(4)}}]}, TIGHT),
        "searches[0].prefetch.filter",
    )
    assert err.field == "searches[0].prefetch.filter"
    refused(lambda: model(QueryBatchIn, {"searches": [{}, {}, {}]}, TIGHT), "max_batch_queries")
    with_prefetch = {"searches": [{"prefetch": {"query": [1]}}, {}]}  # 2 searches + 1 prefetch
    refused(lambda: model(QueryBatchIn, with_prefetch, TIGHT), "prefetches included", "max_batch_queries")
    model(QueryBatchIn, {"searches": [{"prefetch": {"query": [1]}}]}, TIGHT)
    refused(lambda: model(PointRequestIn, {"ids": [1, 2, 3, 4]}, TIGHT), "ids", "max_points_per_request")
    refused(lambda: model(RecommendIn, {"positive": [1, 2, 3, 4], "limit": 1}, TIGHT), "positive")
    refused(
        lambda: model(QueryIn, {"query": {"recommend": {"positive": [1, 2], "negative": [3, 4]}}}, TIGHT),
        "examples",
    )
    ops = {"operations": [{"delete": {"points": [1]}}] * 3}
    refused(lambda: model(UpdateOperationsIn, ops, TIGHT), "max_batch_operations")


def test_payload_depth_bounds() -> None:
    deep = {"a": {"b": {"c": {"d": 1}}}}  # depth 4
    adapt(UPSERT, {"points": [{"id": 1, "vector": [1.0], "payload": deep}]}, TIGHT)
    refused(
        lambda: adapt(UPSERT, {"points": [{"id": 1, "vector": [1.0], "payload": {"x": deep}}]}, TIGHT),
        "points[0].payload",
        "max_json_depth",
    )
    refused(
        lambda: adapt(UPSERT, {"points": [{"id": i, "vector": [1.0]} for i in range(4)]}, TIGHT), "points"
    )
    model(SetPayloadIn, {"payload": {"a": {"b": 1}}, "points": [1], "key": "x.y"}, TIGHT)
    refused(
        lambda: model(SetPayloadIn, {"payload": {"a": {"b": 1}}, "points": [1], "key": "x.y.z"}, TIGHT),
        "key",
        "max_json_depth",
    )
    refused(lambda: model(CreateCollection, {"metadata": {"x": deep}}, TIGHT), "metadata")


def test_without_a_context_the_default_bounds_apply() -> None:
    QueryIn.model_validate({"filter": chain(32)}, strict=True)
    with pytest.raises(ValueError, match="max_filter_depth"):
        QueryIn.model_validate({"filter": chain(33)}, strict=True)


def test_limits_come_from_the_environment() -> None:
    settings = load_settings(
        env={"QDRANT__SERVICE__LIMITS__MAX_FILTER_DEPTH": "7", "QDRANT__STORAGE__MAX_COLLECTIONS": "9"}
    )
    assert settings.service.limits.max_filter_depth == 7 and settings.storage.max_collections == 9
    with pytest.raises(ValueError):
        LimitsSettings(max_filter_depth=1000)  # past what the recursive parser can take


# ------------------------------------------------------------------------------ collection configs
def test_config_bounds() -> None:
    limits = LimitsSettings(max_shard_number=4, max_hnsw_m=32, max_named_vectors=2)

    def config(**body: Any) -> Any:
        return config_from_create(
            CreateCollection.model_validate({"vectors": {"size": 4, "distance": "Dot"}, **body}), 1
        )

    check_config_bounds(config(shard_number=4, hnsw_config={"m": 32}), limits)
    err = refused(
        lambda: check_config_bounds(config(shard_number=5), limits), "shard_number", "max_shard_number", "4"
    )
    assert err.field == "shard_number"
    refused(
        lambda: check_config_bounds(config(hnsw_config={"payload_m": 33}), limits), "hnsw_config.payload_m"
    )
    named = {"vectors": {"a": {"size": 2, "distance": "Dot", "hnsw_config": {"m": 64}}}}
    cfg = config_from_create(CreateCollection.model_validate(named), 1)
    refused(lambda: check_config_bounds(cfg, limits), "vectors.a.hnsw_config.m", "max_hnsw_m")
    three = {"vectors": {n: {"size": 2, "distance": "Dot"} for n in "abc"}}
    refused(
        lambda: check_config_bounds(config_from_create(CreateCollection.model_validate(three), 1), limits),
        "named vectors",
    )
    # An update checks only what it changes: a collection made under looser bounds stays usable.
    old = config(shard_number=100)
    check_config_bounds(
        config_after_update(
            old, UpdateCollection.model_validate({"optimizers_config": {"indexing_threshold": 1}})
        ),
        limits,
        old,
    )
    refused(
        lambda: check_config_bounds(
            config_after_update(old, UpdateCollection.model_validate({"hnsw_config": {"m": 64}})), limits, old
        ),
        "hnsw_config.m",
    )


# ------------------------------------------------------------------------------ memory estimate, deadline
def test_wants_clamp_to_the_collection() -> None:
    want = Want(10**9, POINT_BYTES, "limit", fixed=10)
    assert want.bytes() == 10**9 * POINT_BYTES + 10
    assert want.bytes(collection_points=300) == 300 * POINT_BYTES + 10


def test_deadline_scope_and_check() -> None:
    deadline.check()  # no deadline: nothing to do
    assert deadline.remaining() is None
    with deadline.scope(60):
        remaining = deadline.remaining()
        assert remaining is not None and 59 < remaining <= 60
        with deadline.scope(3600):  # an inner, longer deadline does not extend the outer one
            assert (deadline.remaining() or 0) <= 60
        with deadline.scope(-1):
            with pytest.raises(TimeoutError_, match="deadline of -1 s"):
                deadline.check()
            assert deadline.context().run(deadline.remaining) is not None  # threads see it
        deadline.check()
    assert deadline.remaining() is None


@pytest.mark.parametrize("raw", ["9" * 5000, str(2**64), "\u00b2", "\u0663", "", "-1", "1e3", " 1"])
def test_url_numbers_are_refused_naming_the_field(raw: str) -> None:
    with pytest.raises(BadInputError, match=r"^shard_id: expected a shard number") as info:
        parse_decimal(raw, "shard_id", "a shard number")
    assert info.value.field == "shard_id" and len(str(info.value)) < 200


def test_url_numbers_up_to_u64() -> None:
    assert parse_decimal("0", "id") == 0
    assert parse_decimal("007", "id") == 7
    assert parse_decimal(str(MAX_U64), "id") == MAX_U64
