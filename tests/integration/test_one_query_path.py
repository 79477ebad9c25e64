"""The one-query filtered search path, as a client with a new filter for every query drives it:
the filter is parsed once (its shape measured once) while the shard decides to answer inline,
the parse is handed to the search, the allowed offsets come from range and keyword indexes, and
the hits are built straight from the one segment's results. Every answer equals brute force over
the allowed points (no short results), with limit / offset, and stays so across deletions and
payload changes between queries, and across a deletion landing between a segment's search and
the merge of its hits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from qcluster.models.config import OptimizersConfig, ShardConfig, VectorParams
from qcluster.shards import shard_search
from qcluster.shards.base import SearchParams, SearchRequest
from qcluster.shards.distance import higher_is_better, preprocess
from qcluster.shards.filters import parse_filter
from qcluster.shards.filters.conditions import Filter
from qcluster.shards.local_shard import LocalShard
from qcluster.shards.operations import CreateFieldIndex, DeletePoints, PointSelector, SetPayload
from qcluster.shards.segment_search import Query

from .conftest import clustered, storage, upsert_op, wait_optimized

N, DIM, K = 1200, 16, 10
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


class Model:
    def __init__(self) -> None:
        rng = np.random.default_rng(11)
        vecs = clustered(N, DIM, seed=21)
        self.vectors = {i: vecs[i] for i in range(N)}
        self.payloads: dict[int, dict[str, Any]] = {
            i: {"price": int(rng.integers(0, 1000)), "cat": f"c{i % 6}", "sub": int(rng.integers(0, 100))}
            for i in range(N)
        }

    def truth(self, query: np.ndarray, allowed: Any, limit: int, offset: int = 0) -> list[int]:
        ids = [i for i, p in self.payloads.items() if allowed(p)]
        if not ids:
            return []
        mat = preprocess(np.stack([self.vectors[i] for i in ids]), "Cosine")
        scores = mat @ preprocess(query.reshape(1, -1), "Cosine")[0]
        order = np.argsort(-scores, kind="stable")[offset : offset + limit]
        return [ids[j] for j in order]


# Bounds off the integers (the same integer windows) keep these filters apart from any other
# test's in the process-wide parse cache: each is new when its test first sends it.
SHIFT = 0.377


def _price(lo: int, width: int) -> tuple[dict[str, Any], Any]:
    raw = {"must": [{"key": "price", "range": {"gte": lo - SHIFT, "lt": lo + width - SHIFT}}]}
    return raw, lambda p: lo <= p["price"] < lo + width


def _correlated(cat: int, lo: int, width: int) -> tuple[dict[str, Any], Any]:
    raw = {
        "must": [
            {"key": "cat", "match": {"any": [f"c{cat}"]}},
            {"key": "sub", "range": {"gte": lo - SHIFT, "lt": lo + width - SHIFT}},
        ]
    }
    return raw, lambda p: p["cat"] == f"c{cat}" and lo <= p["sub"] < lo + width


@pytest.fixture
async def shard(tmp_path: Path) -> AsyncIterator[LocalShard]:
    config = ShardConfig(
        vectors={"": VectorParams(size=DIM, distance="Cosine")},
        optimizer_config=OptimizersConfig(indexing_threshold=1, flush_interval_sec=1),
    )
    s = await LocalShard.load_or_create(tmp_path / "s", config, storage())
    for key, schema in (("price", "integer"), ("sub", "integer"), ("cat", "keyword")):
        await s.update(CreateFieldIndex(key, schema))
    yield s
    await s.close()


async def _loaded(shard: LocalShard) -> Model:
    model = Model()
    ids = list(range(N))
    await shard.update(
        upsert_op(ids, np.stack([model.vectors[i] for i in ids]), [model.payloads[i] for i in ids])
    )
    await wait_optimized(shard)
    assert any("" in s.indexes for s in shard.set.segments)
    return model


async def _search(
    shard: LocalShard, q: np.ndarray, raw: dict[str, Any], limit: int, offset: int = 0
) -> list[int]:
    req = SearchRequest(vector=q, limit=limit, offset=offset, filter=raw, params=SearchParams(hnsw_ef=32))
    (hits,) = await shard.search([req])
    return [h.id for h in hits]


async def test_a_new_filter_per_query_is_parsed_once_and_answered_exactly(
    shard: LocalShard, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = await _loaded(shard)
    from qcluster.shards.filters import parse as parse_module
    from qcluster.shards.filters import shape

    walks: list[int] = []
    real_shape = shape.filter_shape

    def counted(*args: Any) -> Any:
        walks.append(1)
        return real_shape(*args)

    monkeypatch.setattr(parse_module, "filter_shape", counted)
    queries = clustered(24, DIM, seed=33)
    for i, q in enumerate(queries):
        raw, allowed = (
            _price(37 * i, 1 + i % 3 * 20) if i % 2 else _correlated(i % 6, 7 * i % 90, 1 + i % 4 * 5)
        )
        nested = i % 3 == 0  # the same filter one level down: no longer flat
        if nested:
            raw = {"must": [raw]}
        parsed: list[Filter] = []
        req = SearchRequest(vector=q, limit=K, filter=raw, params=SearchParams(hnsw_ef=32))
        before = len(walks)
        assert shard.reads.cheap([req], parsed)  # answered inline, on the loop
        # a flat filter of simple conditions is counted from its lists, with no walk; any other
        # has its shape measured once, not again by the parser
        assert len(walks) == before + (1 if nested else 0)
        assert parsed == [parse_filter(raw)] and parsed[0] is parse_filter(raw)  # handed over
        got = await _search(shard, q, raw, K)
        want = model.truth(q, allowed, K)
        assert len(got) == len(want) == min(K, sum(map(allowed, model.payloads.values())))  # none short
        assert sorted(got) == sorted(want), (i, raw)
        offset_got = await _search(shard, q, raw, 4, offset=3)
        assert sorted(offset_got) == sorted(model.truth(q, allowed, 4, offset=3))


async def test_a_large_filter_parsed_elsewhere_is_still_not_answered_inline(shard: LocalShard) -> None:
    await _loaded(shard)
    raw = {"should": [{"key": "price", "match": {"value": v}} for v in range(40)]}
    parse_filter(raw)  # parsed before (by a search thread, another shard, ...)
    req = SearchRequest(vector=clustered(1, DIM, seed=2)[0], limit=K, filter=raw)
    assert not shard.reads.cheap([req], [])
    assert not shard.reads.cheap([req], [])


async def test_deletes_and_payload_changes_between_queries(shard: LocalShard) -> None:
    model = await _loaded(shard)
    q = clustered(1, DIM, seed=44)[0]
    raw, allowed = _price(100, 40)
    first = await _search(shard, q, raw, K)
    assert sorted(first) == sorted(model.truth(q, allowed, K))

    gone = first[0]  # the best hit leaves the shard
    del model.payloads[gone], model.vectors[gone]
    await shard.update(DeletePoints(PointSelector(ids=(gone,))))
    raw, allowed = _price(100, 40)  # the same window, a new request
    got = await _search(shard, q, raw, K)
    assert gone not in got and sorted(got) == sorted(model.truth(q, allowed, K)) and len(got) == K

    joining = next(i for i, p in model.payloads.items() if not allowed(p))  # moves into the window
    model.payloads[joining] = {**model.payloads[joining], "price": 120}
    await shard.update(SetPayload(PointSelector(ids=(joining,)), {"price": 120}))
    got = await _search(shard, q, raw, N)
    assert joining in got and sorted(got) == sorted(model.truth(q, allowed, N))


async def test_a_deletion_between_segment_search_and_merge_drops_the_hit(shard: LocalShard) -> None:
    model = await _loaded(shard)
    q = clustered(1, DIM, seed=55)[0]
    raw, allowed = _price(300, 60)
    req = SearchRequest(vector=q, limit=K, filter=raw, params=SearchParams(hnsw_ef=32))
    config = shard.config
    live = [s for s in shard.set.segments if len(s.offsets)]
    assert len(live) == 1  # the one-segment merge
    vec = preprocess(np.asarray(q, dtype=np.float32).reshape(1, -1), "Cosine")
    query = Query(vec, "", K, "Cosine", config.hnsw_for(""), req.params, None, parse_filter(raw))
    per_segment = shard_search._per_segment(live, query)
    before = shard_search._merge_dense(req, per_segment, 0, higher_is_better("Cosine"))
    assert sorted(h.id for h in before) == sorted(model.truth(q, allowed, K))
    gone = before[3].id
    await shard.update(DeletePoints(PointSelector(ids=(gone,))))
    after = shard_search._merge_dense(req, per_segment, 0, higher_is_better("Cosine"))
    assert [h.id for h in after] == [h.id for h in before if h.id != gone]
    assert [h.score for h in after] == [h.score for h in before if h.id != gone]
    paged = SearchRequest(vector=q, limit=4, offset=2, filter=raw, params=req.params)
    assert [h.id for h in shard_search._merge_dense(paged, per_segment, 0, True)] == [
        h.id for h in before if h.id != gone
    ][2:6]
