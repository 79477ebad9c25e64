"""Sparse search in a LocalShard spread over several sealed, indexed segments and an appendable
one, after deletes, vector deletes and replacements: exact dot products (and IDF) against a brute
force over the live points, with filters, thresholds and offsets, on the event loop and on the
search threads alike."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from qcluster.models.config import OptimizersConfig, ShardConfig, SparseVectorParams
from qcluster.shards import local_reads
from qcluster.shards.base import SearchRequest
from qcluster.shards.local_shard import LocalShard
from qcluster.shards.operations import DeletePoints, DeleteVectors, PointsBatch, PointSelector, UpsertPoints
from qcluster.shards.sparse.vector import SparseColumn, SparseVector, sorted_unique
from qcluster.testing.sparse_brute import brute

from .conftest import storage, wait_optimized

VOCAB = 300


def config(modifier: str | None) -> ShardConfig:
    return ShardConfig(
        vectors={},  # sparse only
        sparse_vectors={"text": SparseVectorParams(modifier=modifier)},  # type: ignore[arg-type]
        # a segment sealed every ~180 points (16 KB), merged two by two (40 KB at most) down to 3
        optimizer_config=OptimizersConfig(
            indexing_threshold=16, default_segment_number=3, max_segment_size=40, flush_interval_sec=1
        ),
    )


def doc(rng: np.random.Generator) -> SparseVector:
    p = 1.0 / np.arange(1, VOCAB + 1)
    nnz = int(rng.integers(3, 25))
    idx = rng.choice(VOCAB, size=nnz, replace=False, p=p / p.sum()).astype(np.uint32)
    return sorted_unique(idx, (rng.random(nnz) + 0.05).astype(np.float32), "v")


def upsert(ids: list[int], rows: list[SparseVector]) -> UpsertPoints:
    payloads = tuple({"group": i % 3} for i in ids)
    return UpsertPoints(PointsBatch(tuple(ids), {"text": SparseColumn.from_rows(rows)}, payloads))


def ranked(scores: dict[int, float], keep: object = None) -> list[tuple[int, float]]:
    items = [(p, s) for p, s in scores.items() if keep is None or keep(p, s)]  # type: ignore[operator]
    return sorted(items, key=lambda h: (-h[1], h[0]))


async def check(shard: LocalShard, docs: dict[int, SparseVector], rng: np.random.Generator, idf: bool) -> int:
    """Queries of every shape against the brute force; returns how many hits were compared."""
    compared = 0
    for case in range(24):
        terms = int(rng.integers(1, 9))
        q = sorted_unique(
            rng.choice(VOCAB, size=terms, replace=False).astype(np.uint32),
            (rng.random(terms) + 0.5).astype(np.float32),
            "q",
        )
        scores = brute(docs, q, idf)
        flt = {"must": [{"key": "group", "match": {"value": 1}}]} if case % 3 == 1 else None
        threshold = 0.4 if case % 4 == 3 else None
        offset = 2 if case % 5 == 4 else 0
        limit = [10, 1, 50][case % 3]

        def keep(pid: int, score: float, flt: object = flt, threshold: float | None = threshold) -> bool:
            return (flt is None or pid % 3 == 1) and (threshold is None or score >= threshold)

        want = ranked(scores, keep)[offset : offset + limit]
        req = SearchRequest(
            vector=q, using="text", limit=limit, offset=offset, filter=flt, score_threshold=threshold
        )
        (hits,) = await shard.search([req])
        got = [(int(h.id), h.score) for h in hits]  # type: ignore[arg-type]
        assert [p for p, _ in got] == [p for p, _ in want], case
        for (_, s), (_, w) in zip(got, want, strict=True):
            assert s == pytest.approx(w, rel=1e-5)
        compared += len(got)
    return compared


@pytest.mark.parametrize("modifier", [None, "idf"])
async def test_exact_over_segments_deletes_and_both_paths(
    tmp_path: Path, modifier: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(11)
    docs = {i: doc(rng) for i in range(900)}
    shard = await LocalShard.load_or_create(tmp_path / "s", config(modifier), storage())
    try:
        for lo in range(0, 900, 60):
            ids = list(range(lo, lo + 60))
            await shard.update(upsert(ids, [docs[i] for i in ids]))
            await wait_optimized(shard)  # seals the appendable segment once past 16 KB
        sealed = [s for s in shard.set.segments if not s.appendable and s.live_count]
        assert len(sealed) >= 2 and all(s.sparse["text"].index is not None for s in sealed)
        idf = modifier == "idf"
        assert await check(shard, docs, np.random.default_rng(0), idf) > 100  # nothing deleted yet
        # deletes and vector deletes in sealed segments, replacements that move points to the
        # appendable segment, fresh points there too
        gone = [int(i) for i in rng.choice(900, size=120, replace=False)]
        await shard.update(DeletePoints(PointSelector(ids=tuple(gone))))
        for i in gone:
            del docs[i]
        no_vec = [i for i in list(docs)[:40] if i % 7 == 0]
        await shard.update(DeleteVectors(PointSelector(ids=tuple(no_vec)), ("text",)))
        for i in no_vec:
            del docs[i]
        moved = [i for i in list(docs)[40:100]]
        fresh = list(range(900, 960))
        for i in moved + fresh:
            docs[i] = doc(rng)
        await shard.update(upsert(moved + fresh, [docs[i] for i in moved + fresh]))
        assert shard.set.segments[-1].live_count >= len(moved) + len(fresh)

        assert await check(shard, docs, np.random.default_rng(1), idf) > 100  # on the loop
        monkeypatch.setattr(local_reads, "INLINE_POSTINGS", -1)  # every search on a thread
        assert await check(shard, docs, np.random.default_rng(1), idf) > 100
        monkeypatch.undo()
        await wait_optimized(shard)  # and once more after the optimizer's merges and vacuums
        assert await check(shard, docs, np.random.default_rng(2), idf) > 100
    finally:
        await shard.close()
