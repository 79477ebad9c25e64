"""Filters through the shard: filtered recall at several selectivities, filter-taking operations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from qcluster.errors import BadInputError
from qcluster.shards.base import (
    ALL_PAYLOAD,
    CountRequest,
    OrderBy,
    ScrollRequest,
    SearchParams,
    SearchRequest,
)
from qcluster.shards.distance import exact_top_k, preprocess
from qcluster.shards.local_shard import LocalShard
from qcluster.shards.operations import CreateFieldIndex, DeletePoints, PointSelector, SetPayload

from .conftest import clustered, shard_config, storage, upsert_op, wait_optimized

N = 20_000


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    vecs = clustered(N, 32, clusters=100, seed=21)
    # the cluster label is recoverable from the nearest center: use it as a correlated category
    centers = np.random.default_rng(12345).standard_normal((100, 32)).astype(np.float32) * 3
    labels = np.argmin(((vecs[:, None, :] - centers[None]) ** 2).sum(-1), axis=1)
    del rng
    return vecs, labels


async def test_filtered_recall_at_every_selectivity(
    tmp_path: Path, data: tuple[np.ndarray, np.ndarray]
) -> None:
    vecs, labels = data
    rng = np.random.default_rng(5)
    rnd = rng.random(N)
    payloads = [{"r": float(rnd[i]), "cat": int(labels[i])} for i in range(N)]
    shard = await LocalShard.load_or_create(
        tmp_path / "s", shard_config(32, "Cosine", indexing_threshold=200), storage()
    )
    try:
        for start in range(0, N, 5000):
            await shard.update(
                upsert_op(
                    list(range(start, start + 5000)),
                    vecs[start : start + 5000],
                    payloads[start : start + 5000],
                )
            )
        await shard.update(CreateFieldIndex("r", "float"))
        await shard.update(CreateFieldIndex("cat", "integer"))
        await wait_optimized(shard)
        assert (await shard.info()).indexed_vectors_count == N
        base = preprocess(vecs, "Cosine")
        queries = clustered(30, 32, clusters=100, seed=99)
        cases = [({"key": "r", "range": {"lt": s}}, rnd < s) for s in (0.005, 0.05, 0.5)]
        big_cat = int(np.bincount(labels).argmax())
        cases.append(({"key": "cat", "match": {"value": big_cat}}, labels == big_cat))  # correlated, ~1%
        for cond, mask in cases:
            recalls = []
            for q in queries:
                _, want = exact_top_k(preprocess(q[None], "Cosine"), base, 10, "Cosine", mask)
                want_ids = {int(i) for i in want[0] if i >= 0}
                (hits,) = await shard.search(
                    [
                        SearchRequest(
                            vector=q, limit=10, filter={"must": [cond]}, params=SearchParams(hnsw_ef=128)
                        )
                    ]
                )
                assert len(hits) == min(10, int(mask.sum())), "short result while more points match"
                assert all(mask[h.id] for h in hits)  # type: ignore[index]
                recalls.append(len({h.id for h in hits} & want_ids) / max(1, len(want_ids)))
            assert np.mean(recalls) >= 0.95, (cond, np.mean(recalls))
    finally:
        await shard.close()


async def test_filter_taking_operations(tmp_path: Path) -> None:
    vecs = clustered(300, 8, seed=4)
    payloads = [
        {"color": ["red", "green", "blue"][i % 3], "n": i, "city": {"name": "X" if i < 50 else "Y"}}
        for i in range(300)
    ]
    shard = await LocalShard.load_or_create(
        tmp_path / "s", shard_config(8, "Dot", indexing_threshold=4), storage()
    )
    try:
        await shard.update(upsert_op(list(range(300)), vecs, payloads))
        await shard.update(CreateFieldIndex("color", "keyword"))
        await shard.update(CreateFieldIndex("n", {"type": "integer", "lookup": True, "range": True}))
        await wait_optimized(shard)
        red = {"must": [{"key": "color", "match": {"value": "red"}}]}
        assert await shard.count(CountRequest(filter=red)) == 100
        facets = dict(await shard.facet("color", None, 10, True))
        assert facets == {"red": 100, "green": 100, "blue": 100}
        assert dict(await shard.facet("color", {"must": [{"key": "n", "range": {"lt": 10}}]}, 10, True)) == {
            "red": 4,
            "green": 3,
            "blue": 3,
        }
        with pytest.raises(BadInputError, match="Index required"):
            await shard.facet("city.name", None, 10, True)
        await shard.update(
            SetPayload(
                PointSelector(filter={"must": [{"key": "city.name", "match": {"value": "X"}}]}), {"flag": 1}
            )
        )
        assert (
            await shard.count(CountRequest(filter={"must": [{"key": "flag", "match": {"value": 1}}]})) == 50
        )
        await shard.update(DeletePoints(PointSelector(filter=red)))
        assert await shard.count(CountRequest()) == 200
        assert await shard.count(CountRequest(filter=red)) == 0
        page = await shard.scroll(
            ScrollRequest(limit=5, order_by=OrderBy("n", "desc"), with_payload=ALL_PAYLOAD)
        )
        assert [r.id for r in page.points] == [299, 298, 296, 295, 293]
        page = await shard.scroll(ScrollRequest(limit=3, order_by=OrderBy("n", "asc", start_from=100)))
        assert [r.id for r in page.points] == [100, 101, 103]
        with pytest.raises(BadInputError, match="range index"):
            await shard.scroll(ScrollRequest(limit=3, order_by=OrderBy("color")))
        with pytest.raises(BadInputError, match=r"filter\.must"):
            await shard.count(CountRequest(filter={"must": [{"key": "n", "range": {"gte": "x"}}]}))
        (hits,) = await shard.search(
            [SearchRequest(vector=vecs[1], limit=5, filter={"must": [{"has_id": [1, 2]}]})]
        )
        assert {h.id for h in hits} == {1, 2}
        info = await shard.info()
        assert (
            info.payload_schema["color"]["data_type"] == "keyword"
            and info.payload_schema["color"]["points"] == 200
        )
    finally:
        await shard.close()
        await shard.close()


async def test_condition_the_index_cannot_answer_is_checked_on_payloads(tmp_path: Path) -> None:
    """As in Qdrant: a condition a key's index cannot serve (a range on a keyword index, ...) is
    evaluated on the payloads, not refused."""
    shard = await LocalShard.load_or_create(tmp_path / "s", shard_config(2, "Dot"), storage())
    try:
        await shard.update(
            upsert_op([1, 2], np.ones((2, 2), np.float32), [{"tag": "a", "n": 1}, {"tag": "b", "n": 2}])
        )
        await shard.update(CreateFieldIndex("tag", "keyword"))
        await shard.update(CreateFieldIndex("n", "integer"))
        for flt, want in (
            ({"must": [{"key": "tag", "range": {"gte": 1}}]}, 0),
            ({"must": [{"key": "n", "match": {"value": "x"}}]}, 0),
            ({"must_not": [{"key": "n", "match": {"text": "1"}}]}, 2),
            (
                {"should": [{"key": "tag", "geo_radius": {"center": {"lat": 0, "lon": 0}, "radius": 1}}]},
                0,
            ),
        ):
            assert await shard.count(CountRequest(filter=flt)) == want, flt
            await shard.update(DeletePoints(PointSelector(filter=flt)))
            assert await shard.count(CountRequest()) == 2 - want  # deletes exactly the matches
            if want:
                await shard.update(
                    upsert_op(
                        [1, 2], np.ones((2, 2), np.float32), [{"tag": "a", "n": 1}, {"tag": "b", "n": 2}]
                    )
                )
        ok = {"must": [{"key": "n", "range": {"gte": 2}}, {"key": "tag", "match": {"any": ["a", "b"]}}]}
        assert await shard.count(CountRequest(filter=ok)) == 1
    finally:
        await shard.close()
