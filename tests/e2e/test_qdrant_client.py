"""The official qdrant-client (REST mode) against a real ``qcluster serve``: every client method
that maps to an endpoint of issue 4, asserting on results. Every response body is validated
against the reference OpenAPI spec by the module's recorder (conftest)."""

from __future__ import annotations

import numpy as np
import pytest
from qdrant_client import QdrantClient, models

from qcluster.testing.server import ServerProcess

from .http import Api
from .openapi_check import Recorder

# Every test runs twice: qdrant-client over REST, then over gRPC (prefer_grpc=True), each against
# a peer of its own.
pytestmark = pytest.mark.parametrize("transport", ["rest", "grpc"], indirect=True, scope="module")

DIM = 16


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


@pytest.fixture(scope="module")
def vecs() -> np.ndarray:
    return np.random.default_rng(1).standard_normal((200, DIM)).astype(np.float32)


def test_collections_and_aliases(client: QdrantClient) -> None:
    assert client.info().title == "qdrant - vector search engine"
    assert client.create_collection(
        "cfg",
        vectors_config={"img": models.VectorParams(size=4, distance=models.Distance.DOT, on_disk=True)},
        shard_number=2,
        hnsw_config=models.HnswConfigDiff(m=8, ef_construct=50),
        optimizers_config=models.OptimizersConfigDiff(indexing_threshold=1000),
        wal_config=models.WalConfigDiff(wal_capacity_mb=8),
        quantization_config=models.ScalarQuantization(
            scalar=models.ScalarQuantizationConfig(type=models.ScalarType.INT8)
        ),
        metadata={"owner": "e2e"},
    )
    assert client.collection_exists("cfg") and not client.collection_exists("nope")
    info = client.get_collection("cfg")
    assert info.config.params.shard_number == 2 and info.config.hnsw_config.m == 8
    assert info.config.params.vectors["img"].distance == models.Distance.DOT  # type: ignore[index]
    assert info.config.metadata == {"owner": "e2e"}
    assert client.update_collection(
        "cfg", hnsw_config=models.HnswConfigDiff(m=12), quantization_config=models.Disabled.DISABLED
    )
    info = client.get_collection("cfg")
    assert info.config.hnsw_config.m == 12 and info.config.quantization_config is None
    assert "cfg" in {c.name for c in client.get_collections().collections}
    client.update_collection_aliases(
        change_aliases_operations=[
            models.CreateAliasOperation(
                create_alias=models.CreateAlias(collection_name="cfg", alias_name="a1")
            ),
            models.CreateAliasOperation(
                create_alias=models.CreateAlias(collection_name="cfg", alias_name="a2")
            ),
        ]
    )
    client.update_collection_aliases(
        change_aliases_operations=[
            models.RenameAliasOperation(
                rename_alias=models.RenameAlias(old_alias_name="a2", new_alias_name="a3")
            ),
            models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name="a1")),
        ]
    )
    assert [(a.alias_name, a.collection_name) for a in client.get_aliases().aliases] == [("a3", "cfg")]
    assert [a.alias_name for a in client.get_collection_aliases("cfg").aliases] == ["a3"]
    assert client.get_collection("a3").config.params.shard_number == 2
    # named vectors added and removed on a live collection
    client.upsert("cfg", points=[models.PointStruct(id=1, vector={"img": [1, 0, 0, 0]}, payload={"p": 1})])
    assert (
        client.create_vector_name(
            "cfg",
            "txt",
            models.DenseVectorNameConfig(
                dense=models.DenseVectorConfig(size=3, distance=models.Distance.COSINE)
            ),
        ).status
        == models.UpdateStatus.COMPLETED
    )
    client.update_vectors("cfg", points=[models.PointVectors(id=1, vector={"txt": [0, 3, 4]})])
    rec = client.retrieve("cfg", ids=[1], with_vectors=True)[0]
    assert rec.payload == {"p": 1} and rec.vector["txt"] == pytest.approx([0, 0.6, 0.8])  # type: ignore[index]
    client.delete_vector_name("cfg", "img")
    assert set(client.get_collection("cfg").config.params.vectors) == {"txt"}  # type: ignore[arg-type]
    with pytest.warns(DeprecationWarning):  # still offered by the client: it deletes, then creates
        assert client.recreate_collection(
            "cfg", vectors_config=models.VectorParams(size=2, distance=models.Distance.EUCLID)
        )
    assert client.count("cfg").count == 0
    assert client.delete_collection("cfg") and not client.collection_exists("cfg")
    assert client.get_aliases().aliases == []
    assert client.cluster_status().status == "disabled"  # type: ignore[union-attr]


def test_points_writes_and_reads(client: QdrantClient, vecs: np.ndarray, transport: str) -> None:
    client.create_collection(
        "pts", vectors_config=models.VectorParams(size=DIM, distance=models.Distance.COSINE)
    )
    client.upsert(
        "pts",
        points=[
            models.PointStruct(id=i, vector=vecs[i].tolist(), payload={"i": i, "even": i % 2 == 0})
            for i in range(50)
        ],
    )
    client.upsert(
        "pts",
        points=models.Batch(
            ids=list(range(50, 100)),
            vectors=vecs[50:100].tolist(),
            payloads=[{"i": i} for i in range(50, 100)],
        ),
    )
    client.upload_points(
        "pts",
        points=[models.PointStruct(id=i, vector=vecs[i].tolist(), payload={"i": i}) for i in range(100, 150)],
        batch_size=16,
        wait=True,
    )
    client.upload_collection(
        "pts",
        vectors=vecs[150:200],
        payload=[{"i": i} for i in range(150, 200)],
        ids=list(range(150, 200)),
        batch_size=32,
        wait=True,
    )
    assert client.count("pts", exact=True).count == 200
    recs = client.retrieve("pts", ids=[3, 150, 999], with_vectors=True)
    assert [r.id for r in recs] == [3, 150]
    assert np.allclose(recs[0].vector, _unit(vecs[3]), atol=1e-5)
    assert recs[1].payload == {"i": 150}
    points, nxt = client.scroll("pts", limit=60, with_payload=False)
    assert [p.id for p in points] == list(range(60)) and nxt == 60
    # no payload asked for: null over REST; over gRPC an empty map (a protobuf map is never absent)
    assert points[0].payload == (None if transport == "rest" else {})
    client.set_payload("pts", payload={"tag": "x"}, points=[5], wait=True)
    client.set_payload("pts", payload={"deep": 1}, points=[5], key="nested", wait=True)
    client.overwrite_payload("pts", payload={"only": 1}, points=[6])
    client.delete_payload("pts", keys=["i"], points=[7])
    client.clear_payload("pts", points_selector=models.PointIdsList(points=[8]))
    got = {r.id: r.payload for r in client.retrieve("pts", ids=[5, 6, 7, 8])}
    assert got == {
        5: {"i": 5, "even": False, "tag": "x", "nested": {"deep": 1}},
        6: {"only": 1},
        7: {"even": False},
        8: {},
    }
    client.update_vectors("pts", points=[models.PointVectors(id=9, vector=vecs[10].tolist())])
    top2 = [p.id for p in client.query_points("pts", query=vecs[10].tolist(), limit=2).points]
    assert set(top2) == {9, 10}
    client.delete_vectors("pts", vectors=[""], points=[9])
    assert client.retrieve("pts", ids=[9], with_vectors=True)[0].vector is None
    client.delete("pts", points_selector=models.PointIdsList(points=[0, 1, 2]))
    client.delete(
        "pts",
        points_selector=models.FilterSelector(
            filter=models.Filter(must=[models.HasIdCondition(has_id=[3, 4])])
        ),
    )
    assert client.count("pts").count == 195
    results = client.batch_update_points(
        "pts",
        update_operations=[
            models.UpsertOperation(
                upsert=models.PointsList(points=[models.PointStruct(id=500, vector=vecs[0].tolist())])
            ),
            models.SetPayloadOperation(set_payload=models.SetPayload(payload={"b": 1}, points=[500])),
            models.OverwritePayloadOperation(
                overwrite_payload=models.SetPayload(payload={"o": 1}, points=[11])
            ),
            models.DeletePayloadOperation(delete_payload=models.DeletePayload(keys=["i"], points=[12])),
            models.ClearPayloadOperation(clear_payload=models.PointIdsList(points=[13])),
            models.UpdateVectorsOperation(
                update_vectors=models.UpdateVectors(
                    points=[models.PointVectors(id=14, vector=vecs[15].tolist())]
                )
            ),
            models.DeleteVectorsOperation(delete_vectors=models.DeleteVectors(points=[16], vector=[""])),
            models.DeleteOperation(delete=models.PointIdsList(points=[17])),
        ],
    )
    assert len(results) == 8 and all(r.status == models.UpdateStatus.COMPLETED for r in results)
    got = {r.id: r.payload for r in client.retrieve("pts", ids=[500, 11, 12, 13, 17])}
    assert got == {500: {"b": 1}, 11: {"o": 1}, 12: {"even": True}, 13: {}}
    # conditional upserts: insert_only keeps existing points
    client.upsert(
        "pts",
        points=[models.PointStruct(id=20, vector=vecs[0].tolist(), payload={"new": True})],
        update_mode=models.UpdateMode.INSERT_ONLY,
    )
    assert client.retrieve("pts", ids=[20])[0].payload == {"i": 20, "even": True}


def test_queries(client: QdrantClient, vecs: np.ndarray) -> None:
    client.create_collection(
        "q", vectors_config=models.VectorParams(size=DIM, distance=models.Distance.COSINE)
    )
    client.upsert(
        "q",
        points=[
            models.PointStruct(id=i, vector=vecs[i].tolist(), payload={"n": i, "g": f"g{i % 7}"})
            for i in range(200)
        ],
    )
    unit = _unit(vecs)
    ranked = lambda q: np.argsort(-(unit @ _unit(q))).tolist()  # noqa: E731
    res = client.query_points("q", query=vecs[42].tolist(), limit=5, with_payload=True).points
    assert [p.id for p in res] == ranked(vecs[42])[:5] and res[0].payload == {"n": 42, "g": "g0"}
    assert res[0].score == pytest.approx(1.0, abs=1e-5)
    by_id = client.query_points("q", query=42, limit=3).points
    assert [p.id for p in by_id] == ranked(vecs[42])[1:4]
    near = client.query_points(
        "q", query=models.NearestQuery(nearest=vecs[3].tolist()), limit=2, offset=1
    ).points
    assert [p.id for p in near] == ranked(vecs[3])[1:3]
    rec = client.query_points(
        "q",
        query=models.RecommendQuery(recommend=models.RecommendInput(positive=[20, 21], negative=[22])),
        limit=4,
    ).points
    assert len(rec) == 4 and not {20, 21, 22} & {p.id for p in rec}
    for strategy in (models.RecommendStrategy.BEST_SCORE, models.RecommendStrategy.SUM_SCORES):
        got = client.query_points(
            "q",
            query=models.RecommendQuery(
                recommend=models.RecommendInput(positive=[1, 2], negative=[3], strategy=strategy)
            ),
            limit=5,
        ).points
        assert len(got) == 5 and [p.score for p in got] == sorted((p.score for p in got), reverse=True)
    disc = client.query_points(
        "q",
        query=models.DiscoverQuery(
            discover=models.DiscoverInput(target=3, context=[models.ContextPair(positive=4, negative=5)])
        ),
        limit=5,
    ).points
    assert len(disc) == 5 and not {3, 4, 5} & {p.id for p in disc}
    ctx = client.query_points(
        "q", query=models.ContextQuery(context=[models.ContextPair(positive=4, negative=5)]), limit=3
    ).points
    assert len(ctx) == 3 and all(p.score <= 0 for p in ctx)
    prefetch = [
        models.Prefetch(query=vecs[30].tolist(), limit=10),
        models.Prefetch(query=vecs[31].tolist(), limit=10),
    ]
    for fusion in (models.Fusion.RRF, models.Fusion.DBSF):
        fused = client.query_points(
            "q", prefetch=prefetch, query=models.FusionQuery(fusion=fusion), limit=5
        ).points
        assert {30, 31} <= {p.id for p in fused}
    rrf = client.query_points(
        "q", prefetch=prefetch, query=models.RrfQuery(rrf=models.Rrf(k=60)), limit=3
    ).points
    assert len(rrf) == 3 and rrf[0].score > rrf[2].score
    rescored = client.query_points(
        "q", prefetch=models.Prefetch(query=vecs[30].tolist(), limit=20), query=vecs[31].tolist(), limit=3
    ).points
    pre = set(ranked(vecs[30])[:20])
    assert [p.id for p in rescored] == [i for i in ranked(vecs[31]) if i in pre][:3]
    mmr = client.query_points(
        "q",
        query=models.NearestQuery(
            nearest=vecs[8].tolist(), mmr=models.Mmr(diversity=0.5, candidates_limit=30)
        ),
        limit=5,
    ).points
    assert mmr[0].id == 8 and len({p.id for p in mmr}) == 5
    sample = client.query_points("q", query=models.SampleQuery(sample=models.Sample.RANDOM), limit=7).points
    assert len({p.id for p in sample}) == 7
    client.create_payload_index("q", field_name="n", field_schema=models.PayloadSchemaType.INTEGER)
    ordered = client.query_points(
        "q",
        query=models.OrderByQuery(order_by=models.OrderBy(key="n", direction=models.Direction.DESC)),
        limit=3,
    ).points
    assert [p.id for p in ordered] == [199, 198, 197]
    scrolled, _ = client.scroll("q", limit=2, order_by=models.OrderBy(key="n", start_from=10))
    assert [p.id for p in scrolled] == [10, 11]
    batch = client.query_batch_points(
        "q",
        requests=[
            models.QueryRequest(query=vecs[50].tolist(), limit=1),
            models.QueryRequest(query=vecs[51].tolist(), limit=1),
        ],
    )
    assert [b.points[0].id for b in batch] == [50, 51]
    client.create_collection(
        "groups-meta", vectors_config=models.VectorParams(size=DIM, distance=models.Distance.COSINE)
    )
    client.upsert(
        "groups-meta",
        points=[
            models.PointStruct(id=i, vector=vecs[i].tolist(), payload={"label": f"meta {i}"})
            for i in range(3)
        ],
    )
    client.create_payload_index("q", field_name="g", field_schema=models.PayloadSchemaType.KEYWORD)
    groups = client.query_points_groups(
        "q", query=vecs[5].tolist(), group_by="g", limit=3, group_size=2, with_payload=False
    ).groups
    assert len(groups) == 3 and all(len(g.hits) == 2 for g in groups) and groups[0].hits[0].id == 5
    assert groups[0].id == "g5"
    facet = client.facet("q", key="g", limit=3)
    assert [h.count for h in facet.hits] == [29, 29, 29] and len(facet.hits) == 3
    # lookup_from another collection and with_lookup of group ids
    from_meta = client.query_points(
        "q",
        query=models.RecommendQuery(recommend=models.RecommendInput(positive=[2])),
        lookup_from=models.LookupLocation(collection="groups-meta"),
        limit=2,
    ).points
    assert from_meta[0].id == 2
    client.create_payload_index("q", field_name="k", field_schema=models.PayloadSchemaType.INTEGER)
    client.set_payload("q", payload={"k": 1}, points=[0, 1, 2, 3])
    client.set_payload("q", payload={"k": 2}, points=[4, 5])
    looked = client.query_points_groups(
        "q",
        query=vecs[0].tolist(),
        group_by="k",
        limit=2,
        group_size=1,
        with_lookup=models.WithLookup(collection="groups-meta", with_payload=True),
    ).groups
    assert {g.id: g.lookup.payload for g in looked} == {1: {"label": "meta 1"}, 2: {"label": "meta 2"}}  # type: ignore[union-attr]
    optimizations = client.get_optimizations("q", with_=["queued", "completed"])
    assert optimizations.summary.queued_optimizations == 0


def test_snapshots_via_client(client: QdrantClient, vecs: np.ndarray, server: ServerProcess) -> None:
    client.create_collection("s", vectors_config=models.VectorParams(size=DIM, distance=models.Distance.DOT))
    client.upsert(
        "s", points=[models.PointStruct(id=i, vector=vecs[i].tolist(), payload={"i": i}) for i in range(30)]
    )
    snap = client.create_snapshot("s")
    assert snap is not None and snap.size > 0 and len(snap.checksum or "") == 64
    assert [d.name for d in client.list_snapshots("s")] == [snap.name]
    client.delete("s", points_selector=models.PointIdsList(points=list(range(20))))
    assert client.recover_snapshot(
        "s", location=f"{server.url}/collections/s/snapshots/{snap.name}", checksum=snap.checksum
    )
    assert client.count("s").count == 30 and client.retrieve("s", ids=[0])[0].payload == {"i": 0}
    assert client.delete_snapshot("s", snapshot_name=snap.name)
    assert client.list_snapshots("s") == []
    full = client.create_full_snapshot()
    assert full is not None and [d.name for d in client.list_full_snapshots()] == [full.name]
    assert client.delete_full_snapshot(full.name)
    assert client.list_full_snapshots() == []


def test_every_client_response_matched_the_spec(recorder: Recorder, transport: str, api: Api) -> None:
    # the recorder saw the responses of the tests above; the teardown also asserts it is clean
    recorder.assert_clean()
    if transport == "grpc":
        # REST only: the recorder validates REST (JSON) responses against the OpenAPI spec; over
        # gRPC the client parses every response with the protobuf schema itself, and the few calls
        # it still makes over REST (snapshot recovery, optimizations, cluster status) were checked.
        # The tests above did go over gRPC: the peer counted the calls.
        status, text = api.call("GET", "/metrics")
        assert status == 200
        for endpoint in ("/qdrant.Points/Upsert", "/qdrant.Points/Query", "/qdrant.Collections/Create"):
            assert f'grpc_responses_total{{endpoint="{endpoint}",status="OK"}}' in text, endpoint
        return
    assert recorder.checked >= 100
    assert len(recorder.templates) >= 35, sorted(recorder.templates)
