"""The official qdrant-client (REST mode) against a real qcluster peer."""

from __future__ import annotations

import numpy as np
import pytest
from qdrant_client import QdrantClient, models

from qcluster.testing.server import ServerProcess


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> QdrantClient:
    return QdrantClient(url=server.url, prefer_grpc=False, timeout=30)


def test_client_roundtrip(client: QdrantClient) -> None:
    rng = np.random.default_rng(1)
    vecs = rng.standard_normal((200, 16)).astype(np.float32)
    client.create_collection(
        "cl", vectors_config=models.VectorParams(size=16, distance=models.Distance.COSINE)
    )
    assert client.collection_exists("cl")
    client.upsert(
        "cl",
        points=[
            models.PointStruct(id=i, vector=vecs[i].tolist(), payload={"i": i, "even": i % 2 == 0})
            for i in range(100)
        ],
    )
    client.upsert(
        "cl",
        points=models.Batch(
            ids=list(range(100, 200)),
            vectors=vecs[100:].tolist(),
            payloads=[{"i": i} for i in range(100, 200)],
        ),
    )
    assert client.count("cl").count == 200
    res = client.query_points("cl", query=vecs[42].tolist(), limit=5, with_payload=True).points
    assert res[0].id == 42 and res[0].payload == {"i": 42, "even": True}
    assert res[0].score == pytest.approx(1.0, abs=1e-5)
    by_id = client.query_points("cl", query=42, limit=3).points
    assert 42 not in [p.id for p in by_id] and len(by_id) == 3
    recs = client.retrieve("cl", ids=[3, 150], with_vectors=True)
    assert [r.id for r in recs] == [3, 150]
    assert np.allclose(recs[0].vector, vecs[3] / np.linalg.norm(vecs[3]), atol=1e-5)
    points, nxt = client.scroll("cl", limit=50)
    assert len(points) == 50 and nxt == 50
    client.set_payload("cl", payload={"tag": "x"}, points=[5])
    client.overwrite_payload("cl", payload={"only": 1}, points=[6])
    client.delete_payload("cl", keys=["i"], points=[7])
    client.clear_payload("cl", points_selector=models.PointIdsList(points=[8]))
    got = {r.id: r.payload for r in client.retrieve("cl", ids=[5, 6, 7, 8])}
    assert got == {5: {"i": 5, "even": False, "tag": "x"}, 6: {"only": 1}, 7: {"even": False}, 8: {}}
    client.update_vectors("cl", points=[models.PointVectors(id=9, vector=vecs[10].tolist())])
    assert client.query_points("cl", query=vecs[10].tolist(), limit=2).points[1].id in (9, 10)
    client.delete("cl", points_selector=models.PointIdsList(points=[0, 1, 2]))
    assert client.count("cl").count == 197
    rec = client.query_points(
        "cl",
        query=models.RecommendQuery(recommend=models.RecommendInput(positive=[20, 21], negative=[22])),
        limit=4,
    ).points
    assert len(rec) == 4 and not {20, 21, 22} & {p.id for p in rec}
    fused = client.query_points(
        "cl",
        prefetch=[
            models.Prefetch(query=vecs[30].tolist(), limit=10),
            models.Prefetch(query=vecs[31].tolist(), limit=10),
        ],
        query=models.FusionQuery(fusion=models.Fusion.RRF),
        limit=5,
    ).points
    assert {30, 31} <= {p.id for p in fused}
    batch = client.query_batch_points(
        "cl",
        requests=[
            models.QueryRequest(query=vecs[50].tolist(), limit=1),
            models.QueryRequest(query=vecs[51].tolist(), limit=1),
        ],
    )
    assert [b.points[0].id for b in batch] == [50, 51]
    info = client.get_collection("cl")
    assert info.points_count == 197 and info.config.params.vectors.size == 16  # type: ignore[union-attr]
    client.update_collection("cl", optimizers_config=models.OptimizersConfigDiff(indexing_threshold=20000))
    assert client.get_collection("cl").config.optimizer_config.indexing_threshold == 20000
    client.update_collection_aliases(
        change_aliases_operations=[
            models.CreateAliasOperation(
                create_alias=models.CreateAlias(collection_name="cl", alias_name="cl-a")
            )
        ]
    )
    assert client.count("cl-a").count == 197
    assert any(a.alias_name == "cl-a" for a in client.get_collection_aliases("cl").aliases)
    assert client.delete_collection("cl")
    assert not client.collection_exists("cl")
