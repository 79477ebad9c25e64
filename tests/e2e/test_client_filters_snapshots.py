"""qdrant-client: filters, payload indexes, facet, groups, order_by, discover, and snapshots."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
from qdrant_client import QdrantClient, models

from qcluster.testing.server import ServerProcess

from .http import Api, response_hook
from .openapi_check import Recorder

# Every test runs twice: qdrant-client over REST, then over gRPC (prefer_grpc=True), each against
# a peer of its own.
pytestmark = pytest.mark.parametrize("transport", ["rest", "grpc"], indirect=True, scope="module")


def _load(client: QdrantClient, name: str, n: int = 120) -> np.ndarray:
    rng = np.random.default_rng(7)
    vecs = rng.standard_normal((n, 8)).astype(np.float32)
    client.create_collection(
        name, vectors_config=models.VectorParams(size=8, distance=models.Distance.EUCLID)
    )
    client.upsert(
        name,
        points=[
            models.PointStruct(
                id=i,
                vector=vecs[i].tolist(),
                payload={
                    "color": ["red", "green", "blue"][i % 3],
                    "price": i,
                    "group": f"g{i % 7}",
                    "city": {"name": "Berlin" if i < 40 else "Paris"},
                },
            )
            for i in range(n)
        ],
    )
    return vecs


def test_filters_indexes_facet_groups(client: QdrantClient, api: Api) -> None:
    vecs = _load(client, "f")
    client.create_payload_index("f", field_name="color", field_schema=models.PayloadSchemaType.KEYWORD)
    client.create_payload_index("f", field_name="price", field_schema=models.PayloadSchemaType.INTEGER)
    info = client.get_collection("f")
    assert info.payload_schema["color"].data_type == models.PayloadSchemaType.KEYWORD
    assert info.payload_schema["color"].points == 120
    red = models.Filter(must=[models.FieldCondition(key="color", match=models.MatchValue(value="red"))])
    hits = client.query_points(
        "f", query=vecs[0].tolist(), query_filter=red, limit=50, with_payload=True
    ).points
    assert len(hits) == 40 and all(h.payload["color"] == "red" for h in hits)  # type: ignore[index]
    cheap = models.Filter(
        must=[
            models.FieldCondition(key="price", range=models.Range(lt=10)),
            models.FieldCondition(key="city.name", match=models.MatchValue(value="Berlin")),
        ]
    )
    assert client.count("f", count_filter=cheap).count == 10
    points, _ = client.scroll("f", scroll_filter=cheap, limit=100)
    assert sorted(p.id for p in points) == list(range(10))
    facet = client.facet("f", key="color")
    assert {h.value: h.count for h in facet.hits} == {"red": 40, "green": 40, "blue": 40}
    ordered, _ = client.scroll(
        "f", limit=3, order_by=models.OrderBy(key="price", direction=models.Direction.DESC)
    )
    assert [p.id for p in ordered] == [119, 118, 117]
    groups = client.query_points_groups(
        "f", query=vecs[5].tolist(), group_by="group", limit=3, group_size=2
    ).groups
    assert len(groups) == 3 and all(len(g.hits) <= 2 for g in groups)
    assert groups[0].hits[0].id == 5
    disc = client.query_points(
        "f",
        query=models.DiscoverQuery(
            discover=models.DiscoverInput(target=3, context=[models.ContextPair(positive=4, negative=5)])
        ),
        limit=5,
    ).points
    assert len(disc) == 5 and not {3, 4, 5} & {p.id for p in disc}
    client.delete("f", points_selector=models.FilterSelector(filter=red))
    assert client.count("f").count == 80
    client.set_payload(
        "f",
        payload={"sale": True},
        points=models.Filter(
            must=[models.FieldCondition(key="color", match=models.MatchValue(value="blue"))]
        ),
    )
    assert (
        client.count(
            "f",
            count_filter=models.Filter(
                must=[models.FieldCondition(key="sale", match=models.MatchValue(value=True))]
            ),
        ).count
        == 40
    )
    status, body = api.call(
        "POST",
        "/collections/f/points/scroll",
        {"filter": {"must": [{"key": "price", "rangee": {"lt": 3}}]}},
    )
    assert status == 400 and "rangee" in body["status"]["error"]
    status, body = api.call("POST", "/collections/f/facet", {"key": "price", "limit": 3})
    assert status == 200, body


def test_snapshots_roundtrip(
    client: QdrantClient, server: ServerProcess, api: Api, recorder: Recorder
) -> None:
    _load(client, "s")
    snap = client.create_snapshot("s")
    assert snap is not None and snap.size > 0 and snap.checksum
    assert [d.name for d in client.list_snapshots("s")] == [snap.name]
    status, body = api.call("GET", "/collections/s/snapshots")
    assert status == 200 and [d["name"] for d in body["result"]] == [snap.name]
    client.delete("s", points_selector=models.PointIdsList(points=list(range(100))))
    assert client.count("s").count == 20
    url = f"{server.url}/collections/s/snapshots/{snap.name}"
    assert client.recover_snapshot("s", location=url, checksum=snap.checksum)
    assert client.count("s").count == 120
    # a wrong checksum changes nothing
    with pytest.raises(Exception, match="checksum"):
        client.recover_snapshot("s", location=url, checksum="0" * 64)
    assert client.count("s").count == 120
    # recover into a new collection from an uploaded file
    with httpx.Client(event_hooks={"response": [response_hook(recorder)]}, timeout=60) as http:
        raw = http.get(url).content
        resp = http.post(
            f"{server.url}/collections/s-copy/snapshots/upload", files={"snapshot": ("x.snapshot", raw)}
        )
        assert resp.status_code == 200, resp.text
        assert client.count("s-copy").count == 120
        # junk upload: clear 400, the collection untouched
        resp = http.post(
            f"{server.url}/collections/s-copy/snapshots/upload", files={"snapshot": ("x", b"junk")}
        )
        assert resp.status_code == 400 and "snapshot" in resp.json()["status"]["error"]
    assert client.count("s-copy").count == 120
    assert client.delete_snapshot("s", snapshot_name=snap.name)
    assert client.list_snapshots("s") == []
    full = client.create_full_snapshot()
    assert full is not None and full.size > 0
    assert [d.name for d in client.list_full_snapshots()] == [full.name]


def test_more_client_methods(client: QdrantClient, api: Api) -> None:
    vecs = _load(client, "m", n=60)
    client.batch_update_points(
        "m",
        update_operations=[
            models.UpsertOperation(
                upsert=models.PointsList(points=[models.PointStruct(id=500, vector=[0.0] * 8)])
            ),
            models.SetPayloadOperation(set_payload=models.SetPayload(payload={"b": 1}, points=[500])),
            models.DeleteOperation(delete=models.PointIdsList(points=[0])),
        ],
    )
    assert client.retrieve("m", ids=[500])[0].payload == {"b": 1}
    assert client.count("m").count == 60
    client.create_payload_index("m", field_name="price", field_schema=models.PayloadSchemaType.FLOAT)
    client.delete_payload_index("m", field_name="price")
    assert "price" not in client.get_collection("m").payload_schema
    rec = client.query_points(
        "m",
        query=models.RecommendQuery(
            recommend=models.RecommendInput(
                positive=[1, 2], negative=[3], strategy=models.RecommendStrategy.BEST_SCORE
            )
        ),
        limit=5,
    ).points
    assert len(rec) == 5 and not {1, 2, 3} & {p.id for p in rec}
    near = client.query_points("m", query=vecs[10].tolist(), limit=3, with_vectors=True).points
    assert near[0].id == 10 and len(near[0].vector) == 8  # type: ignore[arg-type]
    for path, body, _template in (
        (
            "/collections/m/points/recommend",
            {"positive": [1], "limit": 3},
            "/collections/{collection_name}/points/recommend",
        ),
        (
            "/collections/m/points/search/groups",
            {"vector": vecs[4].tolist(), "group_by": "group", "limit": 2, "group_size": 2},
            "/collections/{collection_name}/points/search/groups",
        ),
        (
            "/collections/m/points/search/batch",
            {"searches": [{"vector": vecs[4].tolist(), "limit": 2}]},
            "/collections/{collection_name}/points/search/batch",
        ),
        (
            "/collections/m/points/discover",
            {"target": 4, "context": [{"positive": 5, "negative": 6}], "limit": 2},
            "/collections/{collection_name}/points/discover",
        ),
    ):
        status, out = api.call("POST", path, body)
        assert status == 200, (path, out)
    for path in ("/issues", "/telemetry", "/collections/m/aliases"):
        status, out = api.call("GET", path)
        assert status == 200
    status, text = api.call("GET", "/metrics")
    assert status == 200 and 'collection_points{id="m"} 60.0' in text
