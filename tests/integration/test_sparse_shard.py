"""Sparse vectors and multivectors in a real LocalShard: exact scores against numpy, inverted
indexes built by the optimizer and persisted, filters, IDF, restart and WAL replay."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from qcluster.errors import BadInputError, CorruptedStorageError
from qcluster.models.config import (
    OptimizersConfig,
    ShardConfig,
    SparseVectorParams,
    VectorParams,
)
from qcluster.shards.base import ALL_VECTORS, NO_PAYLOAD, ScrollRequest, SearchParams, SearchRequest
from qcluster.shards.local_shard import LocalShard
from qcluster.shards.operations import (
    DeletePoints,
    DeleteVectors,
    MultiColumn,
    NamedVectors,
    PointsBatch,
    PointSelector,
    UpdateVectors,
    UpsertPoints,
    decode_operation,
    encode_operation,
)
from qcluster.shards.sparse.vector import SparseColumn, SparseVector, sorted_unique

from .conftest import storage, wait_optimized

VOCAB = 2000


def sparse_config(indexing_threshold: int = 10000, modifier: str | None = None) -> ShardConfig:
    return ShardConfig(
        vectors={"dense": VectorParams(size=4, distance="Dot")},
        sparse_vectors={"text": SparseVectorParams(modifier=modifier)},  # type: ignore[arg-type]
        optimizer_config=OptimizersConfig(indexing_threshold=indexing_threshold, flush_interval_sec=1),
    )


def random_sparse(rng: np.random.Generator, nnz: int) -> SparseVector:
    idx = rng.choice(VOCAB, size=nnz, replace=False).astype(np.uint32)
    vals = rng.random(nnz).astype(np.float32) + 0.1
    return sorted_unique(idx, vals, "v")


def upsert(
    ids: list[int], rows: list[SparseVector | None], payloads: list[dict] | None = None
) -> UpsertPoints:
    dense = np.ones((len(ids), 4), dtype=np.float32)
    return UpsertPoints(
        PointsBatch(
            tuple(ids),
            {"dense": NamedVectors(dense), "text": SparseColumn.from_rows(rows)},
            None if payloads is None else tuple(payloads),
        )
    )


def exact(docs: dict[int, SparseVector], q: SparseVector) -> dict[int, float]:
    out = {}
    for pid, d in docs.items():
        common = np.intersect1d(d.indices, q.indices)
        if len(common):
            dv = dict(zip(d.indices.tolist(), d.values.tolist(), strict=True))
            qv = dict(zip(q.indices.tolist(), q.values.tolist(), strict=True))
            out[pid] = sum(dv[i] * qv[i] for i in common.tolist())
    return out


def top(scores: dict[int, float], k: int) -> list[int]:
    return [pid for pid, _ in sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:k]]


async def search(shard: LocalShard, q: SparseVector, k: int = 10, **kw: object) -> list[tuple[int, float]]:
    (hits,) = await shard.search([SearchRequest(vector=q, using="text", limit=k, **kw)])  # type: ignore[arg-type]
    return [(int(h.id), h.score) for h in hits]  # type: ignore[arg-type]


@pytest.mark.parametrize("threshold", [10000, 2])  # all in the appendable segment / sealed + indexed
async def test_sparse_scores_are_exact_dot_products(tmp_path: Path, threshold: int) -> None:
    rng = np.random.default_rng(1)
    docs = {i: random_sparse(rng, int(rng.integers(5, 40))) for i in range(600)}
    shard = await LocalShard.load_or_create(tmp_path / "s", sparse_config(threshold), storage())
    try:
        ids = list(docs)
        for lo in range(0, len(ids), 100):
            chunk = ids[lo : lo + 100]
            await shard.update(upsert(chunk, [docs[i] for i in chunk], [{"even": i % 2 == 0} for i in chunk]))
        await wait_optimized(shard)
        if threshold == 2:
            sealed = shard.set.segments[:-1]
            assert sealed and all(s.sparse["text"].index is not None for s in sealed)
        for qi in range(20):
            q = random_sparse(rng, 8)
            want = exact(docs, q)
            got = await search(shard, q, 10)
            assert [p for p, _ in got] == top(want, 10), qi
            for pid, score in got:
                assert score == pytest.approx(want[pid], rel=1e-5)
            even = {p: s for p, s in want.items() if p % 2 == 0}
            flt = {"must": [{"key": "even", "match": {"value": True}}]}
            got_f = await search(shard, q, 5, filter=flt)
            assert [p for p, _ in got_f] == top(even, 5)
    finally:
        await shard.close()


async def test_sparse_updates_deletes_and_restart(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    docs = {i: random_sparse(rng, 10) for i in range(50)}
    path = tmp_path / "s"
    shard = await LocalShard.load_or_create(path, sparse_config(), storage())
    q = SparseVector(np.array([1, 5, 9], np.uint32), np.array([1.0, 2.0, 3.0], np.float32))
    try:
        await shard.update(upsert(list(docs), list(docs.values())))
        # point 7 now matches the query best; point 8 loses its sparse vector; 9 is deleted
        docs[7] = SparseVector(np.array([5, 9], np.uint32), np.array([10.0, 10.0], np.float32))
        batch = PointsBatch((7,), {"text": SparseColumn.from_rows([docs[7]])})
        await shard.update(UpdateVectors(batch))
        await shard.update(DeleteVectors(PointSelector(ids=(8,)), ("text",)))
        await shard.update(DeletePoints(PointSelector(ids=(9,))))
        del docs[8], docs[9]
        got = await search(shard, q, 50)
        assert [p for p, _ in got] == top(exact(docs, q), 50)
        assert got[0] == (7, pytest.approx(50.0))
        await shard.abandon()  # no final flush: the WAL replays everything
        shard = await LocalShard.load_or_create(path, sparse_config(), storage())
        assert [p for p, _ in await search(shard, q, 50)] == top(exact(docs, q), 50)
        recs = await shard.retrieve([7, 8], NO_PAYLOAD, ALL_VECTORS)
        stored = {r.id: r.vector for r in recs}
        assert stored[7] is not None and stored[7]["text"].same_as(docs[7])  # type: ignore[union-attr]
        assert stored[8] is not None and "text" not in stored[8]
    finally:
        await shard.close()


async def test_sparse_index_persisted_by_optimizer(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    docs = {i: random_sparse(rng, 20) for i in range(300)}
    path = tmp_path / "s"
    shard = await LocalShard.load_or_create(path, sparse_config(indexing_threshold=4), storage())
    try:
        await shard.update(upsert(list(docs), list(docs.values())))
        await wait_optimized(shard)
        await shard.flush()
        sealed = [s for s in shard.set.segments if not s.appendable]
        assert sealed
        files = {p.name for p in sealed[0].path.iterdir()}
        assert {f"inverted_s0_{n}.npy" for n in ("terms", "ptr", "docs", "vals")} <= files
    finally:
        await shard.close()
    shard = await LocalShard.load_or_create(path, sparse_config(indexing_threshold=4), storage())
    try:
        sealed = [s for s in shard.set.segments if not s.appendable]
        assert sealed and sealed[0].sparse["text"].index is not None
        q = random_sparse(rng, 10)
        assert [p for p, _ in await search(shard, q, 10)] == top(exact(docs, q), 10)
    finally:
        await shard.close()


def _idf(n: int, df: int) -> float:
    return math.log((n - df + 0.5) / (df + 0.5) + 1.0)


async def test_idf_over_shard_and_corpus(tmp_path: Path) -> None:
    shard = await LocalShard.load_or_create(tmp_path / "s", sparse_config(modifier="idf"), storage())
    rows = [[0, 1], [0], [0, 1, 2], [1]]
    tenants = ["a", "a", "b", "b"]
    try:
        await shard.update(
            upsert(
                [0, 1, 2, 3],
                [SparseVector(np.array(r, np.uint32), np.ones(len(r), np.float32)) for r in rows],
                [{"tenant": t} for t in tenants],
            )
        )
        q = SparseVector(np.array([0, 1, 2], np.uint32), np.ones(3, np.float32))
        scores = dict(await search(shard, q))
        idf = [_idf(4, 3), _idf(4, 3), _idf(4, 1)]
        assert scores[0] == pytest.approx(idf[0] + idf[1])
        assert scores[2] == pytest.approx(sum(idf))
        corpus = {"must": [{"key": "tenant", "match": {"value": "a"}}]}
        scores = dict(await search(shard, q, params=SearchParams(idf_corpus=corpus)))
        assert scores[2] == pytest.approx(_idf(2, 2) + _idf(2, 1) + _idf(2, 0))
    finally:
        await shard.close()


async def test_sparse_rejects_dense_queries_and_idf_params(tmp_path: Path) -> None:
    shard = await LocalShard.load_or_create(tmp_path / "s", sparse_config(), storage())
    try:
        with pytest.raises(BadInputError):
            await shard.search([SearchRequest(vector=np.ones(4, np.float32), using="text")])
        q = SparseVector(np.array([1], np.uint32), np.ones(1, np.float32))
        with pytest.raises(BadInputError):
            await shard.search([SearchRequest(vector=q, using="dense")])
        with pytest.raises(BadInputError, match="idf"):
            await search(shard, q, params=SearchParams(idf_corpus={"must": []}))
    finally:
        await shard.close()


def test_sparse_and_multi_columns_round_trip_the_wal_encoding() -> None:
    rows = [
        SparseVector(np.array([3, 7], np.uint32), np.array([0.5, 1.5], np.float32)),
        None,
        SparseVector(np.array([1], np.uint32), np.array([2.0], np.float32)),
    ]
    multi = [np.ones((2, 3), np.float32), np.zeros((1, 3), np.float32), None]
    batch = PointsBatch(
        (1, 2, 3),
        {
            "d": NamedVectors(np.arange(6, dtype=np.float32).reshape(3, 2)),
            "s": SparseColumn.from_rows(rows),
            "m": MultiColumn.from_rows(multi, 3),  # type: ignore[arg-type]
        },
        ({"a": 1}, None, None),
    )
    back = decode_operation(encode_operation(UpsertPoints(batch)))
    assert isinstance(back, UpsertPoints)
    s = back.batch.vectors["s"]
    m = back.batch.vectors["m"]
    assert isinstance(s, SparseColumn) and isinstance(m, MultiColumn)
    assert s.row(1) is None and s.row(0).same_as(rows[0])  # type: ignore[union-attr]
    assert np.array_equal(m.row(0), multi[0]) and m.row(2) is None  # type: ignore[arg-type]
    assert np.array_equal(back.batch.vectors["d"].data, batch.vectors["d"].data)  # type: ignore[union-attr]
    # a corrupted CSR row pointer is refused, never used to index
    raw = bytearray(
        encode_operation(UpsertPoints(PointsBatch((1,), {"s": SparseColumn.from_rows(rows[:1])})))
    )
    raw[-24] ^= 0x7F  # the last entry of the indptr blob (2 -> 125 entries)
    with pytest.raises(CorruptedStorageError):
        decode_operation(bytes(raw))


def multi_config(distance: str = "Dot", threshold: int = 10000) -> ShardConfig:
    return ShardConfig(
        vectors={
            "m": VectorParams(size=3, distance=distance, multivector_config={"comparator": "max_sim"}),  # type: ignore[arg-type]
        },
        optimizer_config=OptimizersConfig(indexing_threshold=threshold, flush_interval_sec=1),
    )


def maxsim(q: np.ndarray, d: np.ndarray, distance: str) -> float:
    """MaxSim as larger-is-better (Euclid: sum of the negated squared distances)."""
    if distance == "Cosine":
        q = q / np.linalg.norm(q, axis=1, keepdims=True)
        d = d / np.linalg.norm(d, axis=1, keepdims=True)
    if distance == "Euclid":
        sims = -(((q[:, None, :] - d[None, :, :]) ** 2).sum(axis=2))
    else:
        sims = q @ d.T
    return float(sims.max(axis=1).sum())


def shown(score: float, distance: str) -> float:
    """The score Qdrant reports for a MaxSim value (Euclid: sqrt of its negation)."""
    return math.sqrt(-score) if distance == "Euclid" else score


@pytest.mark.parametrize(("distance", "threshold"), [("Dot", 10000), ("Cosine", 1), ("Euclid", 10000)])
async def test_multivector_maxsim_matches_numpy(tmp_path: Path, distance: str, threshold: int) -> None:
    rng = np.random.default_rng(4)
    docs = {i: rng.standard_normal((int(rng.integers(1, 6)), 3)).astype(np.float32) for i in range(200)}
    shard = await LocalShard.load_or_create(tmp_path / "s", multi_config(distance, threshold), storage())
    try:
        ids = list(docs)
        col = MultiColumn.from_rows([docs[i] for i in ids], 3)  # type: ignore[arg-type]
        await shard.update(UpsertPoints(PointsBatch(tuple(ids), {"m": col})))
        await wait_optimized(shard)
        q = rng.standard_normal((2, 3)).astype(np.float32)
        want = {i: maxsim(q, d, distance) for i, d in docs.items()}
        (hits,) = await shard.search([SearchRequest(vector=q, using="m", limit=5)])
        assert [h.id for h in hits] == top(want, 5)
        for h in hits:
            assert h.score == pytest.approx(shown(want[int(h.id)], distance), rel=1e-4)  # type: ignore[arg-type]
        # restricted to a few ids (the rerank-over-prefetch pattern)
        few = [3, 50, 120]
        (hits,) = await shard.search(
            [SearchRequest(vector=q, using="m", limit=5, filter={"must": [{"has_id": few}]})]
        )
        assert [h.id for h in hits] == top({i: want[i] for i in few}, 5)
        page = await shard.scroll(ScrollRequest(limit=1, with_vector=ALL_VECTORS))
        got = page.points[0].vector
        assert got is not None and np.asarray(got["m"]).shape == docs[int(page.points[0].id)].shape  # type: ignore[arg-type]
    finally:
        await shard.close()
