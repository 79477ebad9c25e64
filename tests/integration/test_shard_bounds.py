"""A real shard (WAL, segments, FAISS indexes) asked for far more than it holds: sizes are clamped to
its points before anything is allocated (a limit beyond them returns every match, in order), and
reads stop at the request's deadline instead of holding a search thread."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from qcluster import deadline
from qcluster.errors import TimeoutError_
from qcluster.models.config import OptimizersConfig, ScalarQuantization, ScalarQuantizationConfig
from qcluster.shards.base import (
    NO_PAYLOAD,
    CountRequest,
    QuantizationSearchParams,
    ScrollRequest,
    SearchParams,
    SearchRequest,
)
from qcluster.shards.local_shard import LocalShard
from qcluster.shards.operations import CreateFieldIndex

from .conftest import clustered, shard_config, storage, upsert_op, wait_optimized

N, DIM = 600, 8
HUGE = 2**62


@pytest.fixture
async def shard(tmp_path: Path) -> AsyncIterator[LocalShard]:
    quant = ScalarQuantization(scalar=ScalarQuantizationConfig())
    cfg = shard_config(DIM, "Cosine", indexing_threshold=1, quantization_config=quant)
    cfg = cfg.model_copy(
        update={"optimizer_config": OptimizersConfig(indexing_threshold=1, max_optimization_threads=2**62)}
    )
    s = await LocalShard.load_or_create(tmp_path / "s", cfg, storage())
    data = clustered(N, DIM, seed=3)
    await s.update(upsert_op(list(range(N)), data, [{"g": i % 7} for i in range(N)]))
    await s.update(CreateFieldIndex("g", "integer"))
    await wait_optimized(s)  # an index was built, with the thread count clamped to the cores
    assert (await s.info()).indexed_vectors_count == N
    yield s
    await s.close()


async def test_sizes_beyond_the_shard_are_clamped(shard: LocalShard) -> None:
    q = clustered(1, DIM, seed=9)[0]
    exact = await shard.search([SearchRequest(vector=q, limit=N, params=SearchParams(exact=True))])
    order = [p.id for p in exact[0]]
    for params in (
        SearchParams(hnsw_ef=HUGE),
        SearchParams(quantization=QuantizationSearchParams(oversampling=1e308, rescore=True)),
        SearchParams(exact=True, hnsw_ef=HUGE),
    ):
        (hits,) = await shard.search([SearchRequest(vector=q, limit=HUGE, params=params)])
        assert sorted(p.id for p in hits) == list(range(N))
        assert [p.id for p in hits[:10]] == order[:10]
    (hits,) = await shard.search(
        [SearchRequest(vector=q, limit=HUGE, offset=N - 5, params=SearchParams(exact=True))]
    )
    assert [p.id for p in hits] == order[N - 5 :]
    (hits,) = await shard.search([SearchRequest(vector=q, limit=HUGE, offset=HUGE)])
    assert hits == []
    flt = {"must": [{"key": "g", "match": {"value": 3}}]}
    (hits,) = await shard.search([SearchRequest(vector=q, limit=HUGE, filter=flt)])
    assert len(hits) == len(range(3, N, 7))
    page = await shard.scroll(ScrollRequest(limit=HUGE, with_payload=NO_PAYLOAD))
    assert len(page.points) == N and page.next_page_offset is None
    assert len(await shard.facet("g", None, HUGE, True)) == 7


async def test_reads_stop_at_the_deadline(shard: LocalShard) -> None:
    slow = {"should": [{"key": "unindexed", "match": {"value": i}} for i in range(200)]}
    with deadline.scope(-1):  # already past: every read stops at its first check
        with pytest.raises(TimeoutError_):
            await shard.count(CountRequest(filter=slow))
        with pytest.raises(TimeoutError_):
            await shard.search([SearchRequest(vector=np.ones(DIM, np.float32), limit=3, filter=slow)])
    assert await shard.count(CountRequest(filter=slow)) == 0  # and without one, it runs
