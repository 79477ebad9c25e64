"""Strict mode's pure parts: the token bucket behind the rate limits (a fake clock), the filter
walk that counts and sizes conditions, and the config merge of a PATCH."""

from __future__ import annotations

import pytest

from qcluster.collection.strict import _condition_size, _examples, conditions
from qcluster.collection.strict_rate import TokenBucket
from qcluster.errors import RateLimitedError
from qcluster.models.collections import (
    CollectionConfig,
    CollectionParams,
    UpdateCollection,
    config_after_update,
)
from qcluster.models.config import StrictModeConfig, VectorParams


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_bucket_refuses_beyond_capacity_and_refills_over_a_minute() -> None:
    clock = Clock()
    bucket = TokenBucket(10, clock)
    with pytest.raises(RateLimitedError, match="request larger than rate limiter capacity"):
        bucket.take(11, "Write")
    bucket.take(10, "Write")
    with pytest.raises(RateLimitedError) as caught:
        bucket.take(10, "Write")
    assert caught.value.message == (
        "Write rate limit exceeded: Operation requires 10 tokens but only 0.0 were available. Retry after 60s"
    )
    assert caught.value.retry_after == 60 and caught.value.http_status == 429
    clock.now += 30  # half a minute: half the tokens back
    bucket.take(5, "Write")
    with pytest.raises(RateLimitedError, match="Retry after 6s"):
        bucket.take(1, "Write")
    clock.now += 3600  # never more than one minute's worth
    bucket.take(10, "Write")
    with pytest.raises(RateLimitedError):
        bucket.take(1, "Write")


def test_conditions_walk_nested_filters() -> None:
    flt = {
        "must": [
            {"key": "a", "match": {"value": 1}},
            {"should": [{"key": "b", "match": {"any": ["x", "y", "z"]}}]},
        ],
        "must_not": {"key": "c", "range": {"gt": 1}},
        "min_should": {"conditions": [{"has_id": [1, 2]}], "min_count": 1},
        "should": [{"nested": {"key": "items", "filter": {"must": [{"key": "n", "match": {"value": 2}}]}}}],
    }
    leaves = conditions(flt)
    assert [leaf.get("key") for leaf in leaves] == ["a", "b", "items[].n", "c", None]
    assert [_condition_size(leaf) for leaf in leaves] == [1, 3, 1, 1, 2]
    assert conditions(None) == [] and conditions({}) == []


def test_read_cost_counts_examples() -> None:
    assert _examples([0.1, 0.2]) == 1
    assert _examples({"recommend": {"positive": [1, 2, 3], "negative": [4]}}) == 4
    assert _examples({"discover": {"target": 1, "context": [{"positive": 2, "negative": 3}]}}) == 3
    assert _examples({"context": [{"positive": 2, "negative": 3}] * 2}) == 4
    assert _examples([[0.1, 0.2]] * 3) == 3  # a multivector: one per vector, as Qdrant counts
    assert _examples({"nearest": [[0.1, 0.2]] * 3}) == 3
    assert (
        _examples(7) == _examples("6a1c6b2e-1d4e-4c4c-9a55-0c3ab0d4f8d1") == 3
    )  # lookup + exclusion + vector


def test_patch_merges_strict_mode_fields() -> None:
    cfg = CollectionConfig(params=CollectionParams(vectors={"": VectorParams(size=4, distance="Dot")}))
    assert "strict_mode_config" not in cfg.to_wire()
    first = config_after_update(
        cfg, UpdateCollection(strict_mode_config=StrictModeConfig(enabled=True, max_query_limit=10))
    )
    second = config_after_update(first, UpdateCollection(strict_mode_config=StrictModeConfig(max_timeout=2)))
    assert second.to_wire()["strict_mode_config"] == {
        "enabled": True,
        "max_query_limit": 10,
        "max_timeout": 2,
    }
    # stored and read back unchanged (config.json)
    assert CollectionConfig.model_validate_json(second.model_dump_json()) == second
    with pytest.raises(ValueError, match="max_query_limit"):
        StrictModeConfig(max_query_limit=0)
