"""Filtered searches stay exact while their allowed offsets are remembered per segment
(``selection_cache.py``): every change that can move a point into or out of a filter (payload
set / overwritten, points deleted or added, payload indexes dropped and made again, the optimizer
rebuilding the segment) is seen by the next search. Also: a segment indexed under an
``is_tenant`` field is laid out tenant by tenant, and range indexes are sorted before the first
query."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from qcluster.models.config import OptimizersConfig, ShardConfig, VectorParams
from qcluster.shards.base import SearchParams, SearchRequest
from qcluster.shards.distance import preprocess
from qcluster.shards.filters import select as selection
from qcluster.shards.local_shard import LocalShard
from qcluster.shards.operations import (
    CreateFieldIndex,
    DeleteFieldIndex,
    DeletePoints,
    OverwritePayload,
    PointSelector,
    SetPayload,
)

from .conftest import clustered, storage, upsert_op, wait_optimized

N, DIM, K = 800, 16, 10
FILTER = {"must": [{"key": "n", "range": {"lt": 4}}, {"key": "tenant", "match": {"value": "a"}}]}
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


def _payload(i: int) -> dict[str, Any]:
    return {"n": i % 40, "tenant": "abcd"[(i // 40) % 4]}


class Model:
    """What the shard should hold: vectors and payloads by id."""

    def __init__(self) -> None:
        vecs = clustered(N, DIM, seed=5)
        self.vectors = {i: vecs[i] for i in range(N)}
        self.payloads = {i: _payload(i) for i in range(N)}

    def truth(self, query: np.ndarray) -> list[int]:
        ids = [
            i
            for i, p in self.payloads.items()
            if isinstance(p.get("n"), int) and p["n"] < 4 and p.get("tenant") == "a"
        ]
        mat = preprocess(np.stack([self.vectors[i] for i in ids]), "Cosine")
        scores = mat @ preprocess(query.reshape(1, -1), "Cosine")[0]
        order = np.argsort(-scores, kind="stable")[:K]
        return sorted(ids[j] for j in order)


@pytest.fixture
async def shard(tmp_path: Path) -> AsyncIterator[LocalShard]:
    config = ShardConfig(
        vectors={"": VectorParams(size=DIM, distance="Cosine")},
        optimizer_config=OptimizersConfig(
            indexing_threshold=1, flush_interval_sec=1, vacuum_min_vector_number=100, deleted_threshold=0.2
        ),
    )
    s = await LocalShard.load_or_create(tmp_path / "s", config, storage())
    await s.update(CreateFieldIndex("n", "integer"))
    await s.update(CreateFieldIndex("tenant", {"type": "keyword", "is_tenant": True}))
    yield s
    await s.close()


async def _check(shard: LocalShard, model: Model, queries: np.ndarray) -> None:
    for q in queries:
        req = SearchRequest(vector=q, limit=K, filter=FILTER, params=SearchParams(hnsw_ef=64))
        (hits,) = await shard.search([req])
        assert sorted(h.id for h in hits) == model.truth(q)


async def test_cached_selections_follow_every_change(
    shard: LocalShard, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = Model()
    ids = list(range(N))
    await shard.update(
        upsert_op(ids, np.stack([model.vectors[i] for i in ids]), [model.payloads[i] for i in ids])
    )
    await wait_optimized(shard)
    sealed = [s for s in shard.set.segments if not s.appendable and s.live_count]
    assert sealed and all("" in s.indexes for s in sealed)
    queries = clustered(6, DIM, seed=9)

    listed = []
    real = selection.offsets
    monkeypatch.setattr(selection, "offsets", lambda *a, **kw: listed.append(1) or real(*a, **kw))
    await _check(shard, model, queries)
    assert 0 < len(listed) < len(queries)  # worked out once per segment, then remembered

    async def changed(op: Any) -> None:
        await shard.update(op)
        await _check(shard, model, queries)

    outside = next(i for i in ids if model.payloads[i]["tenant"] == "b")  # joins the filter
    model.payloads[outside] = {**model.payloads[outside], "n": 0, "tenant": "a"}
    await changed(SetPayload(PointSelector(ids=(outside,)), {"n": 0, "tenant": "a"}))

    gone = model.truth(queries[0])[0]  # a hit leaves the shard
    del model.payloads[gone], model.vectors[gone]
    await changed(DeletePoints(PointSelector(ids=(gone,))))

    leaving = model.truth(queries[1])[0]  # a hit leaves the filter
    model.payloads[leaving] = {"n": 30, "tenant": "a"}
    await changed(OverwritePayload(PointSelector(ids=(leaving,)), {"n": 30, "tenant": "a"}))

    new_id = N + 1  # a new point in the filter, right on a query
    model.vectors[new_id], model.payloads[new_id] = queries[2].copy(), {"n": 1, "tenant": "a"}
    await changed(upsert_op([new_id], queries[2:3], [{"n": 1, "tenant": "a"}]))

    await changed(DeleteFieldIndex("n"))  # answered from payloads now
    await changed(CreateFieldIndex("n", "integer"))

    doomed = ids[: N // 2]  # enough deletions for the optimizer to rebuild the segment
    for i in doomed:
        model.payloads.pop(i, None)
        model.vectors.pop(i, None)
    await changed(DeletePoints(PointSelector(ids=tuple(doomed))))
    await wait_optimized(shard)
    assert not any(s in shard.set.segments for s in sealed)  # vacuumed into a new segment
    await _check(shard, model, queries)


async def test_tenant_layout_and_sorted_ranges_before_first_query(shard: LocalShard) -> None:
    model = Model()
    ids = list(range(N))
    await shard.update(
        upsert_op(ids, np.stack([model.vectors[i] for i in ids]), [model.payloads[i] for i in ids])
    )
    await wait_optimized(shard)
    (seg,) = [s for s in shard.set.segments if not s.appendable and s.live_count]
    tenants = [p["tenant"] for p in seg.payloads]
    runs = sum(1 for a, b in itertools.pairwise(tenants) if a != b) + 1
    assert runs == 4  # one contiguous run of offsets per tenant
    sorted_n = seg.field_indexes["n"].sorted  # type: ignore[attr-defined]
    assert sorted_n._built and sorted_n._rank is not None  # built by the optimizer, not a query
    await _check(shard, model, clustered(3, DIM, seed=9))
