"""``shard_search.search`` for a sparse name over real segments (appendable, no optimizer): exact
dot products and IDF against a brute force, with ties, deletes between queries, single-term and
weighted queries, a segment whose every point is deleted (skipped, for the IDF statistics too),
and one segment against the same points spread over several."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from qcluster.models.config import ShardConfig, SparseVectorParams
from qcluster.shards import shard_search
from qcluster.shards.base import SearchRequest
from qcluster.shards.segment import Segment
from qcluster.shards.sparse.vector import SparseVector, sorted_unique
from qcluster.testing.sparse_brute import brute

VOCAB = 60


def config(modifier: str | None) -> ShardConfig:
    return ShardConfig(vectors={}, sparse_vectors={"text": SparseVectorParams(modifier=modifier)})  # type: ignore[arg-type]


def doc(rng: np.random.Generator) -> SparseVector:
    """1..12 terms, integer values 1..3: many ties."""
    nnz = int(rng.integers(1, 13))
    idx = rng.choice(VOCAB, size=nnz, replace=False).astype(np.uint32)
    return sorted_unique(idx, rng.integers(1, 4, nnz).astype(np.float32), "v")


def segment(tmp: Path, name: str, docs: dict[int, SparseVector]) -> Segment:
    seg = Segment(tmp / name, name, {}, appendable=True, sparse=("text",))
    for pid, vec in docs.items():
        seg.put_point(pid, {"text": vec}, None, 1)
    return seg


def query(rng: np.random.Generator, case: int) -> SparseVector:
    terms = 1 if case % 5 == 0 else int(rng.integers(2, 9))
    idx = rng.choice(VOCAB + 3, size=terms, replace=False).astype(np.uint32)  # a few terms no point holds
    vals = np.ones(terms, np.float32) if case % 2 else (rng.random(terms) + 0.5).astype(np.float32)
    return sorted_unique(idx, vals, "q")


def check(
    segments: tuple[Segment, ...], cfg: ShardConfig, docs: dict[int, SparseVector], idf: bool, seed: int
) -> int:
    """Queries against the brute force, ties ranked by lower point id (points were put in id order,
    each segment holding a run of ids, so that is segment order, then offset order)."""
    rng = np.random.default_rng(seed)
    compared = 0
    for case in range(30):
        q = query(rng, case)
        limit, offset = [(10, 0), (1, 0), (50, 0), (4, 2)][case % 4]
        want = sorted(brute(docs, q, idf).items(), key=lambda h: (-h[1], h[0]))[offset : offset + limit]
        (hits,) = shard_search.search(
            segments, cfg, [SearchRequest(vector=q, using="text", limit=limit, offset=offset)]
        )
        assert [h.id for h in hits] == [p for p, _ in want], case
        assert [h.score for h in hits] == pytest.approx([s for _, s in want], rel=1e-6)
        assert all(h.version == 1 for h in hits)
        compared += len(hits)
    return compared


@pytest.mark.parametrize("modifier", [None, "idf"])
def test_one_segment_and_several_agree_with_brute_force_through_deletes(
    tmp_path: Path, modifier: str | None
) -> None:
    rng = np.random.default_rng(5)
    docs = {i: doc(rng) for i in range(400)}
    cfg, idf = config(modifier), modifier == "idf"
    one = (segment(tmp_path, "one", docs),)
    several = tuple(
        segment(tmp_path, f"part{j}", {i: docs[i] for i in range(lo, lo + 100)})
        for j, lo in enumerate(range(0, 400, 100))
    )
    assert check(one, cfg, docs, idf, seed=1) > 200
    assert check(several, cfg, docs, idf, seed=1) > 200
    # deletes between queries: the same points gone from both layouts
    gone = [int(i) for i in rng.choice(400, size=60, replace=False)]
    for pid in gone:
        del docs[pid]
        assert one[0].delete(pid, 2)
        assert several[pid // 100].delete(pid, 2)
    assert check(one, cfg, docs, idf, seed=2) > 200
    assert check(several, cfg, docs, idf, seed=2) > 200


@pytest.mark.parametrize("modifier", [None, "idf"])
def test_a_segment_without_live_points_is_skipped(tmp_path: Path, modifier: str | None) -> None:
    rng = np.random.default_rng(8)
    docs = {i: doc(rng) for i in range(200)}
    cfg, idf = config(modifier), modifier == "idf"
    emptied = segment(tmp_path, "emptied", {1000 + i: doc(rng) for i in range(50)})
    for pid in range(1000, 1050):
        assert emptied.delete(pid, 2)
    assert emptied.size == 50 and emptied.live_count == 0
    live = segment(tmp_path, "live", docs)
    assert check((emptied, live), cfg, docs, idf, seed=3) > 100
    assert check((live, emptied), cfg, docs, idf, seed=3) > 100
    # nothing live at all: no hits, whatever the limit
    for pid in list(docs):
        live.delete(pid, 2)
    q = SparseVector(np.array([0, 1, 2], np.uint32), np.ones(3, np.float32))
    assert shard_search.search((emptied, live), cfg, [SearchRequest(vector=q, using="text", limit=5)]) == [[]]
