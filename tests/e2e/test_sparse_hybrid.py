"""Sparse vectors, hybrid search and multivectors through the official qdrant-client against a
real ``qcluster serve``, over REST and over gRPC: results checked against numpy, every REST
response validated against the OpenAPI spec by the module's recorder."""

from __future__ import annotations

import math

import numpy as np
import pytest
from qdrant_client import QdrantClient, models

# Every test runs twice: qdrant-client over REST, then over gRPC (prefer_grpc=True), each against
# a peer of its own.
pytestmark = pytest.mark.parametrize("transport", ["rest", "grpc"], indirect=True, scope="module")

VOCAB = 500
DIM = 8


def _docs(n: int, seed: int) -> tuple[list[models.SparseVector], np.ndarray]:
    rng = np.random.default_rng(seed)
    sparse = []
    for _ in range(n):
        idx = np.sort(rng.choice(VOCAB, size=int(rng.integers(3, 15)), replace=False))
        sparse.append(models.SparseVector(indices=idx.tolist(), values=(rng.random(len(idx)) + 0.1).tolist()))
    dense = rng.standard_normal((n, DIM)).astype(np.float32)
    return sparse, dense


def _dot(a: models.SparseVector, b: models.SparseVector) -> float:
    bv = dict(zip(b.indices, b.values, strict=True))
    return sum(v * bv[i] for i, v in zip(a.indices, a.values, strict=True) if i in bv)


def _ranked(scores: dict[int, float], k: int, *, high: bool = True) -> list[int]:
    return [p for p, _ in sorted(scores.items(), key=lambda kv: (-kv[1] if high else kv[1], kv[0]))[:k]]


@pytest.fixture(scope="module")
def hybrid(client: QdrantClient) -> tuple[list[models.SparseVector], np.ndarray]:
    sparse, dense = _docs(300, seed=5)
    client.create_collection(
        "hybrid",
        vectors_config={"dense": models.VectorParams(size=DIM, distance=models.Distance.COSINE)},
        sparse_vectors_config={"text": models.SparseVectorParams()},
        optimizers_config=models.OptimizersConfigDiff(indexing_threshold=20),  # sealed + indexed segments
    )
    client.upsert(
        "hybrid",
        points=[
            models.PointStruct(id=i, vector={"dense": dense[i].tolist(), "text": sparse[i]}, payload={"i": i})
            for i in range(len(sparse))
        ],
        wait=True,
    )
    return sparse, dense


def test_sparse_search_exact_scores(client: QdrantClient, hybrid: tuple) -> None:
    sparse, _ = hybrid
    query = models.SparseVector(indices=[1, 7, 42, 99, 250], values=[0.5, 1.0, 2.0, 1.5, 0.7])
    want = {i: _dot(s, query) for i, s in enumerate(sparse) if set(s.indices) & set(query.indices)}
    hits = client.query_points("hybrid", query=query, using="text", limit=10).points
    assert [h.id for h in hits] == _ranked(want, 10)
    for h in hits:
        assert h.score == pytest.approx(want[h.id], rel=1e-5)  # type: ignore[index]
    stored = client.retrieve("hybrid", ids=[3], with_vectors=["text"])[0].vector
    assert isinstance(stored, dict) and stored["text"].indices == sparse[3].indices  # type: ignore[union-attr]
    # filtered
    flt = models.Filter(must=[models.FieldCondition(key="i", range=models.Range(lt=100))])
    hits = client.query_points("hybrid", query=query, using="text", query_filter=flt, limit=5).points
    assert [h.id for h in hits] == _ranked({p: s for p, s in want.items() if p < 100}, 5)


def test_hybrid_dense_sparse_rrf(client: QdrantClient, hybrid: tuple) -> None:
    sparse, dense = hybrid
    q_dense = dense[17] + 0.05
    q_sparse = sparse[17]
    res = client.query_points(
        "hybrid",
        prefetch=[
            models.Prefetch(query=q_dense.tolist(), using="dense", limit=20),
            models.Prefetch(query=q_sparse, using="text", limit=20),
        ],
        query=models.FusionQuery(fusion=models.Fusion.RRF),
        limit=5,
    ).points
    # expected: reciprocal rank fusion of the two exact rankings
    unit = dense / np.linalg.norm(dense, axis=1, keepdims=True)
    cos = unit @ (q_dense / np.linalg.norm(q_dense))
    dense_rank = _ranked({i: float(c) for i, c in enumerate(cos)}, 20)
    sparse_scores = {
        i: _dot(s, q_sparse) for i, s in enumerate(sparse) if set(s.indices) & set(q_sparse.indices)
    }
    sparse_rank = _ranked(sparse_scores, 20)
    fused: dict[int, float] = {}
    for ranking in (dense_rank, sparse_rank):
        for pos, pid in enumerate(ranking):
            fused[pid] = fused.get(pid, 0.0) + 1.0 / (pos + 2)
    assert res[0].id == 17  # first in both lists
    assert [p.id for p in res] == _ranked(fused, 5)
    # DBSF fuses too, point 17 still first
    res = client.query_points(
        "hybrid",
        prefetch=[
            models.Prefetch(query=q_dense.tolist(), using="dense", limit=20),
            models.Prefetch(query=q_sparse, using="text", limit=20),
        ],
        query=models.FusionQuery(fusion=models.Fusion.DBSF),
        limit=5,
    ).points
    assert res[0].id == 17


def test_sparse_only_with_idf(client: QdrantClient) -> None:
    client.create_collection(
        "idf",
        vectors_config={},
        sparse_vectors_config={"bm25": models.SparseVectorParams(modifier=models.Modifier.IDF)},
    )
    docs = [[0, 1], [0], [0, 1, 2], [1]]
    client.upsert(
        "idf",
        points=[
            models.PointStruct(id=i, vector={"bm25": models.SparseVector(indices=d, values=[1.0] * len(d))})
            for i, d in enumerate(docs)
        ],
        wait=True,
    )

    def idf(n: int, df: int) -> float:
        return math.log((n - df + 0.5) / (df + 0.5) + 1.0)

    hits = client.query_points(
        "idf", query=models.SparseVector(indices=[0, 1, 2], values=[1.0, 1.0, 1.0]), using="bm25"
    ).points
    scores = {h.id: h.score for h in hits}
    assert scores[2] == pytest.approx(2 * idf(4, 3) + idf(4, 1), rel=1e-5)
    assert scores[3] == pytest.approx(idf(4, 3), rel=1e-5)
    assert hits[0].id == 2  # the only point with the rare term
    # without the modifier, the same query scores plain dot products
    client.update_collection(
        "idf", sparse_vectors_config={"bm25": models.SparseVectorParams(modifier=models.Modifier.NONE)}
    )
    hits = client.query_points(
        "idf", query=models.SparseVector(indices=[0, 1, 2], values=[1.0, 1.0, 1.0]), using="bm25"
    ).points
    assert {h.id: h.score for h in hits} == {0: 2.0, 1: 1.0, 2: 3.0, 3: 1.0}


def _maxsim(q: np.ndarray, d: np.ndarray) -> float:
    return float((q @ d.T).max(axis=1).sum())


def test_multivector_maxsim_rerank(client: QdrantClient) -> None:
    rng = np.random.default_rng(9)
    n = 120
    single = rng.standard_normal((n, DIM)).astype(np.float32)
    multi = [rng.standard_normal((int(rng.integers(2, 6)), DIM)).astype(np.float32) for _ in range(n)]
    client.create_collection(
        "colbert",
        vectors_config={
            "single": models.VectorParams(size=DIM, distance=models.Distance.DOT),
            "late": models.VectorParams(
                size=DIM,
                distance=models.Distance.DOT,
                multivector_config=models.MultiVectorConfig(comparator=models.MultiVectorComparator.MAX_SIM),
            ),
        },
    )
    client.upsert(
        "colbert",
        points=[
            models.PointStruct(id=i, vector={"single": single[i].tolist(), "late": multi[i].tolist()})
            for i in range(n)
        ],
        wait=True,
    )
    q_single = single[5]
    q_multi = multi[5] + 0.01
    # candidates from the single vector, reranked by MaxSim of the multivector
    res = client.query_points(
        "colbert",
        prefetch=models.Prefetch(query=q_single.tolist(), using="single", limit=30),
        query=q_multi.tolist(),
        using="late",
        limit=5,
    ).points
    cands = _ranked({i: float(single[i] @ q_single) for i in range(n)}, 30)
    want = {i: _maxsim(q_multi, multi[i]) for i in cands}
    assert [p.id for p in res] == _ranked(want, 5)
    for p in res:
        assert p.score == pytest.approx(want[p.id], rel=1e-4)  # type: ignore[index]
    # a MaxSim query over the whole collection
    res = client.query_points("colbert", query=q_multi.tolist(), using="late", limit=3).points
    assert [p.id for p in res] == _ranked({i: _maxsim(q_multi, multi[i]) for i in range(n)}, 3)
    stored = client.retrieve("colbert", ids=[7], with_vectors=["late"])[0].vector
    assert np.allclose(np.asarray(stored["late"]), multi[7])  # type: ignore[index]


def test_sparse_validation_errors(client: QdrantClient, hybrid: tuple, transport: str) -> None:
    import grpc
    from qdrant_client.http.exceptions import UnexpectedResponse

    refused = UnexpectedResponse if transport == "rest" else grpc.RpcError
    with pytest.raises(refused) as err:
        client.upsert(
            "hybrid",
            points=[
                models.PointStruct(
                    id=1000, vector={"text": models.SparseVector(indices=[1, 1], values=[1.0, 2.0])}
                )
            ],
        )
    if isinstance(err.value, UnexpectedResponse):
        assert err.value.status_code == 422 and "must be unique" in str(err.value.content)
    else:
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
        assert "must be unique" in err.value.details()  # type: ignore[attr-defined]
    with pytest.raises(refused) as err:
        client.query_points("hybrid", query=[0.1] * DIM, using="text")
    if isinstance(err.value, UnexpectedResponse):
        assert err.value.status_code == 400
    else:
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
        assert "Conversion between sparse and regular vectors failed" in err.value.details()  # type: ignore[attr-defined]
    assert client.count("hybrid", exact=True).count == 300  # nothing of the refused upsert stored
