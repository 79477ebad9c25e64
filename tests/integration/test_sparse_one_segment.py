"""Sparse search over one sealed, indexed segment (the shape the sparse benchmark measures, and the
one-segment shortcut of ``shard_search._merge_sparse``): exact dot products and IDF against a brute
force, with ties, absent terms, offsets, payloads, filters, deleted points, and hits deleted while
a search runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from qcluster.models.config import OptimizersConfig, ShardConfig, SparseVectorParams
from qcluster.shards import shard_search
from qcluster.shards.base import PayloadSelector, SearchRequest
from qcluster.shards.local_shard import LocalShard
from qcluster.shards.operations import DeletePoints, PointsBatch, PointSelector, UpsertPoints
from qcluster.shards.sparse.vector import SparseColumn, SparseVector, sorted_unique
from qcluster.testing.sparse_brute import brute

from .conftest import storage, wait_optimized

VOCAB = 200
N = 700


def config(modifier: str | None) -> ShardConfig:
    return ShardConfig(
        vectors={},
        sparse_vectors={"text": SparseVectorParams(modifier=modifier)},  # type: ignore[arg-type]
        # every segment sealed and indexed, merged down to one
        optimizer_config=OptimizersConfig(
            indexing_threshold=1, default_segment_number=1, flush_interval_sec=1
        ),
    )


def doc(rng: np.random.Generator) -> SparseVector:
    """1..30 terms drawn with a skew (a few terms in most rows); integer values 1..3 (many ties)."""
    p = 1.0 / np.arange(1, VOCAB + 1)
    nnz = int(rng.integers(1, 31))
    idx = rng.choice(VOCAB, size=nnz, replace=False, p=p / p.sum()).astype(np.uint32)
    return sorted_unique(idx, rng.integers(1, 4, nnz).astype(np.float32), "v")


async def one_segment_shard(path: Path, docs: dict[int, SparseVector], modifier: str | None) -> LocalShard:
    shard = await LocalShard.load_or_create(path, config(modifier), storage())
    ids = list(docs)
    for lo in range(0, len(ids), 100):
        chunk = ids[lo : lo + 100]
        column = SparseColumn.from_rows([docs[i] for i in chunk])
        await shard.update(
            UpsertPoints(PointsBatch(tuple(chunk), {"text": column}, tuple({"p": i} for i in chunk)))
        )
    await wait_optimized(shard)
    live = [s for s in shard.set.segments if s.live_count]
    assert len(live) == 1 and not live[0].appendable
    index = live[0].sparse["text"].index
    assert index is not None and index.size == live[0].size
    return shard


def query(rng: np.random.Generator, case: int) -> SparseVector:
    terms = int(rng.integers(1, 13))
    idx = rng.choice(VOCAB, size=terms, replace=False).astype(np.uint32)
    if case % 4 == 3:
        idx[0] = VOCAB + 5  # a term no point holds
    vals = np.ones(terms, np.float32) if case % 2 else (rng.random(terms) + 0.5).astype(np.float32)
    return sorted_unique(idx, vals, "q")


async def compare(shard: LocalShard, docs: dict[int, SparseVector], idf: bool, seed: int) -> int:
    rng = np.random.default_rng(seed)
    compared = 0
    for case in range(40):
        q = query(rng, case)
        limit, offset = [(10, 0), (1, 0), (100, 0), (5, 3)][case % 4]
        payload = case % 5 == 0
        exact = brute(docs, q, idf)
        # ties (integer values) are broken by the lower offset in the segment: rank that way
        seg = next(s for s in shard.set.segments if s.live_count)
        want = sorted(exact.items(), key=lambda h: (-h[1], seg.offsets[h[0]]))[offset : offset + limit]
        req = SearchRequest(
            vector=q, using="text", limit=limit, offset=offset, with_payload=PayloadSelector(enabled=payload)
        )
        (hits,) = await shard.search([req])
        assert [h.id for h in hits] == [p for p, _ in want], case
        assert [h.score for h in hits] == pytest.approx([s for _, s in want], rel=1e-6)
        if payload:
            assert [h.payload for h in hits] == [{"p": p} for p, _ in want]
        else:
            assert all(h.payload is None for h in hits)
        compared += len(hits)
    return compared


@pytest.mark.parametrize("modifier", [None, "idf"])
async def test_one_segment_exact_with_ties_offsets_and_deletes(tmp_path: Path, modifier: str | None) -> None:
    rng = np.random.default_rng(5)
    docs = {i: doc(rng) for i in range(N)}
    shard = await one_segment_shard(tmp_path / "s", docs, modifier)
    try:
        idf = modifier == "idf"
        assert await compare(shard, docs, idf, seed=1) > 300
        gone = [int(i) for i in rng.choice(N, size=90, replace=False)]
        await shard.update(DeletePoints(PointSelector(ids=tuple(gone))))
        for pid in gone:
            del docs[pid]
        assert (
            await compare(shard, docs, idf, seed=2) > 300
        )  # deleted points never show, IDF counts live ones
    finally:
        await shard.close()


async def test_hits_deleted_while_the_search_runs_are_skipped(tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    docs = {i: doc(rng) for i in range(N)}
    shard = await one_segment_shard(tmp_path / "s", docs, None)
    try:
        q = SparseVector(np.array([0, 1, 2], np.uint32), np.ones(3, np.float32))
        req = SearchRequest(vector=q, using="text", limit=10, offset=2)
        segments, config = tuple(shard.set.segments), shard.config
        live = [s for s in segments if s.live_count]
        found = shard_search._sparse_per_segment(
            live, config.sparse_vectors["text"], req, 12
        )  # best 12, a delete
        seg = next(s for s in segments if s.live_count)
        want = sorted(brute(docs, q, False).items(), key=lambda h: (-h[1], seg.offsets[h[0]]))
        first = [p for p, _ in want[:12]]
        await shard.update(DeletePoints(PointSelector(ids=(first[0], first[5]))))
        hits = shard_search._merge_sparse(req, found)
        kept = [p for p in first if p not in (first[0], first[5])]
        assert [h.id for h in hits] == kept[2:12]
    finally:
        await shard.close()
