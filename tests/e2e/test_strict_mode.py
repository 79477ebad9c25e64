"""Strict mode through the official qdrant-client against a real ``qcluster serve``: the config
is stored and reported, and each limit refuses what is over it with Qdrant's message while what
is within it still works."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from qdrant_client import QdrantClient, models
from qdrant_client.common.client_exceptions import ResourceExhaustedResponse
from qdrant_client.http.exceptions import UnexpectedResponse

DIM = 4


def _refused(call: Callable[[], object], status: int, text: str) -> str:
    """The error message of a refused call."""
    with pytest.raises(UnexpectedResponse) as caught:
        call()
    assert caught.value.status_code == status, caught.value.content
    message = str(json.loads(caught.value.content)["status"]["error"])
    assert text in message, message
    return message


def _points(ids: range) -> list[models.PointStruct]:
    return [
        models.PointStruct(id=i, vector=[float(i), 1.0, 0.5, 0.25], payload={"city": f"c{i % 3}", "n": i})
        for i in ids
    ]


@pytest.fixture()
def strict(client: QdrantClient, request: pytest.FixtureRequest) -> str:
    name = f"strict_{request.node.name}"
    client.create_collection(
        name,
        vectors_config=models.VectorParams(size=DIM, distance=models.Distance.DOT),
        strict_mode_config=models.StrictModeConfig(enabled=True, max_query_limit=5, upsert_max_batchsize=20),
    )
    client.upsert(name, _points(range(10)), wait=True)
    return name


def test_config_created_patched_and_reported(client: QdrantClient, strict: str) -> None:
    cfg = client.get_collection(strict).config.strict_mode_config
    assert cfg is not None and cfg.enabled and cfg.max_query_limit == 5 and cfg.upsert_max_batchsize == 20
    client.update_collection(strict, strict_mode_config=models.StrictModeConfig(search_allow_exact=False))
    cfg = client.get_collection(strict).config.strict_mode_config
    assert cfg is not None and cfg.max_query_limit == 5 and cfg.search_allow_exact is False


def test_query_limit_and_search_params(client: QdrantClient, strict: str) -> None:
    assert len(client.query_points(strict, query=[1.0, 0, 0, 0], limit=5).points) == 5
    _refused(
        lambda: client.query_points(strict, query=[1.0, 0, 0, 0], limit=6),
        400,
        'Limit exceeded 6 > 5 for "limit"',
    )
    # a prefetch is held to the same limit
    _refused(
        lambda: client.query_points(
            strict, prefetch=models.Prefetch(query=[1.0, 0, 0, 0], limit=50), query=[0, 1.0, 0, 0], limit=3
        ),
        400,
        'Limit exceeded 50 > 5 for "limit"',
    )
    client.update_collection(
        strict, strict_mode_config=models.StrictModeConfig(search_allow_exact=False, search_max_hnsw_ef=8)
    )
    _refused(
        lambda: client.query_points(
            strict, query=[1.0, 0, 0, 0], limit=3, search_params=models.SearchParams(exact=True)
        ),
        400,
        "Exact search disabled!",
    )
    _refused(
        lambda: client.query_points(
            strict, query=[1.0, 0, 0, 0], limit=3, search_params=models.SearchParams(hnsw_ef=9)
        ),
        400,
        'Limit exceeded 9 > 8 for "hnsw_ef"',
    )
    # turned off, nothing is checked
    client.update_collection(strict, strict_mode_config=models.StrictModeConfig(enabled=False))
    assert len(client.query_points(strict, query=[1.0, 0, 0, 0], limit=8).points) == 8


def test_unindexed_filter_needs_an_index(client: QdrantClient, strict: str) -> None:
    client.update_collection(
        strict, strict_mode_config=models.StrictModeConfig(unindexed_filtering_retrieve=False)
    )
    flt = models.Filter(must=[models.FieldCondition(key="city", match=models.MatchValue(value="c1"))])
    err = _refused(lambda: client.scroll(strict, scroll_filter=flt, limit=5), 400, 'not found for "city"')
    assert err.endswith("Help: Create an index for this key or use a different filter.")
    client.create_payload_index(strict, "city", models.PayloadSchemaType.KEYWORD, wait=True)
    points, _ = client.scroll(strict, scroll_filter=flt, limit=5)
    assert sorted(p.id for p in points) == [1, 4, 7]  # the ids with city c1
    # a keyword index cannot serve a range: still refused
    rng = models.Filter(must=[models.FieldCondition(key="city", range=models.Range(gte=1))])
    _refused(lambda: client.count(strict, count_filter=rng), 400, 'not found for "city"')
    # nor a prefix match, until the keyword index is made with prefix: true
    pre = models.Filter(must=[models.FieldCondition(key="city", match=models.MatchPrefix(prefix="c"))])
    _refused(lambda: client.scroll(strict, scroll_filter=pre, limit=5), 400, 'not found for "city"')
    client.create_payload_index(
        strict,
        "city",
        models.KeywordIndexParams(type=models.KeywordIndexType.KEYWORD, prefix=True),
        wait=True,
    )
    points, _ = client.scroll(strict, scroll_filter=pre, limit=5)
    assert len(points) == 5  # every city is c<n>


def test_upsert_batch_and_points_count(client: QdrantClient, strict: str) -> None:
    _refused(lambda: client.upsert(strict, _points(range(100, 121))), 400, "upsert limit")
    client.upsert(strict, _points(range(100, 120)), wait=True)
    client.update_collection(strict, strict_mode_config=models.StrictModeConfig(max_points_count=30))
    assert client.count(strict).count == 30
    _refused(
        lambda: client.upsert(strict, _points(range(200, 201))), 400, "Max points count limit of 30 reached!"
    )
    assert client.count(strict).count == 30


def test_write_rate_limit_is_429(client: QdrantClient, strict: str) -> None:
    client.update_collection(strict, strict_mode_config=models.StrictModeConfig(write_rate_limit=10))
    _refused(
        lambda: client.upsert(strict, _points(range(100, 111))),
        429,
        "Rate limiting exceeded: Write rate limit exceeded, request larger than rate limiter capacity",
    )
    client.upsert(strict, _points(range(100, 110)), wait=True)
    # with a Retry-After header, qdrant-client raises its own exception
    with pytest.raises(ResourceExhaustedResponse) as caught:
        client.upsert(strict, _points(range(200, 210)))
    assert "Write rate limit exceeded: Operation requires 10 tokens but only" in caught.value.message
    assert 1 <= caught.value.retry_after_s <= 60
    assert client.count(strict).count == 20  # the refused batch wrote nothing


def test_full_scan_and_formula_keys(client: QdrantClient, strict: str) -> None:
    client.update_collection(
        strict,
        hnsw_config=models.HnswConfigDiff(m=0),
        strict_mode_config=models.StrictModeConfig(
            search_allow_exact=False, unindexed_filtering_retrieve=False
        ),
    )
    _refused(
        lambda: client.query_points(strict, query=[1.0, 0, 0, 0], limit=3),
        400,
        "Request is forbidden because global vector indexing is disabled (hnsw_config.m = 0)",
    )
    formula = models.FormulaQuery(formula=models.SumExpression(sum=["$score", "n"]), defaults={"n": 0})
    rescore = models.Prefetch(query=models.OrderByQuery(order_by="n"), limit=5)
    _refused(
        lambda: client.query_points(strict, prefetch=rescore, query=formula, limit=3),
        400,
        'Index required but not found for "n"',
    )
    client.create_payload_index(strict, "n", models.PayloadSchemaType.INTEGER, wait=True)
    # ordering by payload searches no vector index; a formula over indexed keys is allowed
    ids = [p.id for p in client.query_points(strict, prefetch=rescore, query=formula, limit=3).points]
    assert ids == [4, 3, 2]  # the five lowest n, rescored by n (the order_by score is n too)
