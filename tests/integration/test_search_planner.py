"""Every plan of the filtered-search planner on real FAISS and real files: which plan runs (the
``search_stats`` counts), recall against exact search, no short results, persistence of payload
graphs across restarts and damage, points that join a tenant after its graph was built, batches.

Small thresholds force the graph paths on a small segment: ``full_scan_threshold`` 1 KB makes
everything above ``4 * limit`` allowed points a graph plan, and every value block of 32 points or
more gets a payload graph.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from qcluster.errors import BadInputError
from qcluster.models.config import HnswConfig, OptimizersConfig, ShardConfig, VectorParams
from qcluster.shards import batching, search_stats, segment_search, shard_search
from qcluster.shards.base import SearchParams, SearchRequest
from qcluster.shards.distance import exact_top_k, preprocess
from qcluster.shards.local_shard import LocalShard
from qcluster.shards.operations import CreateFieldIndex, PointSelector, SetPayload

from .conftest import storage, upsert_op, wait_for, wait_optimized

N, DIM, CLUSTERS = 6000, 32, 20
TINY = 1  # full_scan_threshold KB: forces graph plans
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


def _data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    centers = rng.standard_normal((CLUSTERS, DIM)).astype(np.float32) * 3
    basis = rng.standard_normal((6, DIM)).astype(np.float32)
    labels = rng.integers(0, CLUSTERS, N)
    vecs = centers[labels] + rng.standard_normal((N, 6)).astype(np.float32) @ basis
    vecs += 0.1 * rng.standard_normal((N, DIM)).astype(np.float32)
    qlabels = rng.integers(0, CLUSTERS, 40)
    queries = centers[qlabels] + rng.standard_normal((40, 6)).astype(np.float32) @ basis
    return vecs.astype(np.float32), labels, queries.astype(np.float32)


VECS, LABELS, QUERIES = _data()
RND = np.random.default_rng(3).random(N)


def _config(threshold_kb: int) -> ShardConfig:
    return ShardConfig(
        vectors={"": VectorParams(size=DIM, distance="Cosine")},
        hnsw_config=HnswConfig(m=16, ef_construct=64, full_scan_threshold=threshold_kb),
        optimizer_config=OptimizersConfig(indexing_threshold=1, flush_interval_sec=1),
    )


def _payload(i: int) -> dict[str, Any]:
    return {
        "r": float(RND[i]),  # uniform: random filters
        "tenant": f"t{int(LABELS[i]) % 10}",  # correlated with the clusters
        "cat": int(LABELS[i]),
        "c": float(LABELS[i]) + float(RND[i]) / 2,  # a float correlated with the clusters
    }


async def _open(path: Path) -> LocalShard:
    return await LocalShard.load_or_create(path, _config(TINY), storage())


async def _build(path: Path) -> None:
    shard = await _open(path)
    indexes = (
        ("r", "float"),
        ("tenant", {"type": "keyword", "is_tenant": True}),
        ("cat", "integer"),
        ("c", "float"),
    )
    for key, schema in indexes:
        await shard.update(CreateFieldIndex(key, schema))
    for start in range(0, N, 2000):
        ids = list(range(start, start + 2000))
        await shard.update(upsert_op(ids, VECS[start : start + 2000], [_payload(i) for i in ids]))
    await wait_optimized(shard)
    await shard.close()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One indexed shard (with payload graphs) for the module, built on its own event loop."""
    path = tmp_path_factory.mktemp("planner") / "s"
    asyncio.run(_build(path))
    return path


@pytest.fixture
async def shard(built: Path) -> AsyncIterator[LocalShard]:
    s = await _open(built)
    await wait_optimized(s)
    yield s
    await s.close()


def _mask(flt: dict[str, Any]) -> np.ndarray:
    out = np.ones(N, dtype=np.bool_)
    for cond in flt["must"]:
        key = cond["key"]
        col = np.array([_payload(i)[key] for i in range(N)])
        if "range" in cond:
            out &= col < cond["range"]["lt"]
        elif "value" in cond["match"]:
            out &= col == cond["match"]["value"]
        else:
            out &= np.isin(col, cond["match"]["any"])
    return out


async def _check(
    shard: LocalShard, flt: dict[str, Any], threshold_kb: int, min_recall: float = 0.98
) -> dict[str, int]:
    """Search every query through the shard's segments with the planner thresholds of
    ``threshold_kb``; assert recall, no short answers and that hits pass; return the plans used."""
    config = _config(threshold_kb)
    mask = _mask(flt)
    base = preprocess(VECS, "Cosine")
    before = search_stats.snapshot()
    recalls = []
    for q in QUERIES:
        req = SearchRequest(vector=q, limit=10, filter=flt, params=SearchParams(hnsw_ef=64))
        (hits,) = shard_search.search(tuple(shard.set.segments), config, [req])
        _, want = exact_top_k(preprocess(q[None], "Cosine"), base, 10, "Cosine", mask)
        want_ids = {int(i) for i in want[0] if i >= 0}
        assert len(hits) == min(10, int(mask.sum())), "short result while more points match"
        assert all(mask[int(h.id)] for h in hits)  # type: ignore[call-overload]
        recalls.append(len({h.id for h in hits} & want_ids) / max(1, len(want_ids)))
    assert np.mean(recalls) >= min_recall, (flt, np.mean(recalls))
    after = search_stats.snapshot()
    return {p: after[p] - before[p] for p in after if after[p] != before[p]}


async def test_small_filters_are_scored_exactly(shard: LocalShard) -> None:
    plans = await _check(shard, {"must": [{"key": "r", "range": {"lt": 0.01}}]}, 10_000)
    assert set(plans) == {"exact"}


async def test_large_shares_post_filter_a_plain_walk(
    shard: LocalShard, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the indexes count half the points: the walk's candidates are checked by index lookups, and
    # no point mask is built (none is needed: no query comes back short)
    masks: list[object] = []
    real = segment_search.evaluate
    monkeypatch.setattr(segment_search, "evaluate", lambda *a, **k: masks.append(a) or real(*a, **k))
    plans = await _check(shard, {"must": [{"key": "r", "range": {"lt": 0.5}}]}, TINY)
    assert plans.get("postfilter") == len(QUERIES) and "fallback_region" not in plans
    assert masks == []
    # a filter the indexes cannot count (an is_empty leaf) builds its mask, same plan
    not_empty = {"must": [{"key": "r", "range": {"lt": 0.5}}], "must_not": [{"is_empty": {"key": "r"}}]}
    plans = await _check(shard, not_empty, TINY)
    assert plans.get("postfilter") == len(QUERIES) and masks


async def test_small_shares_walk_with_a_selector_and_a_wider_beam(shard: LocalShard) -> None:
    plans = await _check(shard, {"must": [{"key": "r", "range": {"lt": 0.05}}]}, TINY, 0.95)
    assert plans.get("graph") == len(QUERIES)


async def test_tenants_walk_their_payload_graph(shard: LocalShard) -> None:
    one = await _check(shard, {"must": [{"key": "tenant", "match": {"value": "t3"}}]}, TINY)
    assert one.get("payload_graph") == len(QUERIES)
    two = await _check(shard, {"must": [{"key": "tenant", "match": {"any": ["t1", "t8"]}}]}, TINY)
    assert two.get("payload_graph") == len(QUERIES)
    both = {"must": [{"key": "tenant", "match": {"value": "t3"}}, {"key": "r", "range": {"lt": 0.5}}]}
    assert (await _check(shard, both, TINY)).get("payload_graph") == len(QUERIES)


async def test_excluded_regions_are_re_planned_to_exact(shard: LocalShard) -> None:
    # six clusters of twenty (30 %): most queries sit in a cluster the filter excludes
    many = {"must": [{"key": "cat", "match": {"any": [0, 1, 2, 3, 4, 5]}}]}
    plans = await _check(shard, many, TINY)
    assert plans.get("postfilter") == len(QUERIES) and plans.get("fallback_region", 0) > 0
    # one cluster by a float range (no payload graph): a selector walk led away, caught
    one = {"must": [{"key": "c", "range": {"lt": 1.0}}]}
    plans = await _check(shard, one, TINY)
    assert plans.get("graph") == len(QUERIES)
    assert plans.get("fallback_region", 0) + plans.get("fallback_short", 0) > 0


async def test_a_batch_runs_one_plan_per_segment(shard: LocalShard) -> None:
    flt = {"must": [{"key": "tenant", "match": {"value": "t5"}}]}
    reqs = [
        SearchRequest(vector=q, limit=5, filter=flt, params=SearchParams(hnsw_ef=64)) for q in QUERIES[:8]
    ]
    before = search_stats.snapshot()
    batch = await shard.search(reqs)
    after = search_stats.snapshot()
    assert after["payload_graph"] - before["payload_graph"] == 8  # one plan, eight queries
    for req, hits in zip(reqs, batch, strict=True):
        (alone,) = await shard.search([req])
        assert [h.id for h in hits] == [h.id for h in alone]


async def test_payload_graphs_persist_and_damage_is_rebuilt(built: Path) -> None:
    shard = await _open(built)
    try:
        seg = next(s for s in shard.set.segments if s.indexes)
        graphs = seg.indexes[""].payload_graphs
        assert {"tenant", "cat"} <= set(graphs)  # loaded from files, nothing rebuilt
        assert len(graphs["tenant"].values) == 10
        memory = graphs["tenant"].memory_bytes() / seg.size
        assert 100 < memory < 200  # links of one layer per vector (2 * M * 4 bytes and offsets)
    finally:
        await shard.close()
    files = sorted((built / "segments").rglob("*-pg-*.npz"))
    assert files
    for f in files:
        f.write_bytes(b"damaged")
    (files[0].parent / (files[0].name + ".tmp")).write_bytes(b"half-written")
    shard = await _open(built)
    try:
        seg = next(s for s in shard.set.segments if s.indexes)
        flt = {"must": [{"key": "tenant", "match": {"value": "t3"}}]}
        await _check(shard, flt, TINY)  # correct meanwhile, whichever plan

        async def rebuilt() -> bool:
            return "tenant" in seg.indexes[""].payload_graphs and shard.optimizer.idle

        await wait_for(rebuilt, 120, "payload graphs rebuilt")
        assert (await _check(shard, flt, TINY)).get("payload_graph") == len(QUERIES)
    finally:
        await shard.close()


async def test_a_point_moved_into_a_tenant_after_the_build_is_found(built: Path) -> None:
    shard = await _open(built)
    try:
        await wait_optimized(shard)
        mover = int(np.flatnonzero(LABELS % 10 == 2)[0])  # tenant t2, moved to t7
        await shard.update(SetPayload(PointSelector(ids=(mover,)), {"tenant": "t7"}))
        flt = {"must": [{"key": "tenant", "match": {"value": "t7"}}]}
        before = search_stats.snapshot()
        (hits,) = shard_search.search(
            tuple(shard.set.segments),
            _config(TINY),
            [SearchRequest(vector=VECS[mover], limit=3, filter=flt, params=SearchParams(hnsw_ef=64))],
        )
        assert search_stats.snapshot()["payload_graph"] == before["payload_graph"] + 1
        assert hits[0].id == mover
        (hits,) = shard_search.search(
            tuple(shard.set.segments),
            _config(TINY),
            [
                SearchRequest(
                    vector=VECS[mover],
                    limit=3,
                    filter={"must": [{"key": "tenant", "match": {"value": "t2"}}]},
                )
            ],
        )
        assert mover not in {h.id for h in hits}
    finally:
        await shard.update(SetPayload(PointSelector(ids=(mover,)), {"tenant": "t2"}))
        await shard.close()


async def test_merged_segments_are_laid_out_tenant_first(shard: LocalShard) -> None:
    seg = next(s for s in shard.set.segments if s.indexes)
    # batches of 2,000 are merged into the largest segment: its rows keep their place (its graph
    # is extended), the rows added after it are grouped by tenant
    tail = [(p or {}).get("tenant") for p in seg.payloads[-2000:]]
    changes = sum(1 for a, b in itertools.pairwise(tail) if a != b)
    assert changes <= 9, changes  # ten tenants: nine boundaries (arrival order: ~1,800)


async def test_searches_of_a_batch_request_share_one_segment_call(
    shard: LocalShard, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = shard_search.search_segment

    def counting(seg: Any, q: Any) -> Any:
        calls.append(len(q.vectors))
        return real(seg, q)

    monkeypatch.setattr(shard_search, "search_segment", counting)
    flt = {"must": [{"key": "r", "range": {"lt": 0.3}}]}
    reqs = [
        SearchRequest(vector=q, limit=5, filter=flt, params=SearchParams(hnsw_ef=64)) for q in QUERIES[:6]
    ]
    alone = [(await shard.search([r]))[0] for r in reqs]
    calls.clear()
    with batching.batch_scope():
        joined = await asyncio.gather(*(shard.search([r]) for r in reqs))
    live = sum(1 for s in shard.set.segments if s.live_count)
    assert calls == [len(reqs)] * live  # every search of the turn in one call per segment
    assert [[h.id for h in hits] for (hits,) in joined] == [[h.id for h in hits] for hits in alone]
    with batching.batch_scope():  # a bad request fails alone, not the searches joined with it
        bad = SearchRequest(vector=np.zeros(DIM + 1, dtype=np.float32), limit=5)
        good, failed = await asyncio.gather(
            shard.search([reqs[0]]), shard.search([bad]), return_exceptions=True
        )
    assert isinstance(failed, BadInputError)
    assert not isinstance(good, BaseException) and [h.id for h in good[0]] == [h.id for h in alone[0]]
