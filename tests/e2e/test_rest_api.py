"""REST over real HTTP: envelopes, wait semantics, the legacy endpoints, and the bad-input cases of
the acceptance list (each answers its documented status with a message naming the problem, the
data stays unchanged and the peer keeps serving). Bodies are checked against the OpenAPI spec."""

from __future__ import annotations

import hashlib
import re

import httpx
import numpy as np

from .http import Api

C = "/collections/{collection_name}"


def test_collection_lifecycle_and_points(api: Api) -> None:
    rng = np.random.default_rng(0)
    vecs = rng.standard_normal((50, 8)).astype(float)
    assert api.ok("PUT", "/collections/api", {"vectors": {"size": 8, "distance": "Cosine"}}) is True
    assert api.ok("GET", "/collections/api/exists")["exists"] is True
    points = [
        {"id": i, "vector": vecs[i].tolist(), "payload": {"n": i, "tag": ["a", "b"][i % 2]}}
        for i in range(50)
    ]
    res = api.ok("PUT", "/collections/api/points?wait=true", {"points": points})
    assert res["status"] == "completed"
    res = api.ok("PUT", "/collections/api/points?wait=false", {"points": points[:1]})
    assert res["status"] == "acknowledged"
    res = api.ok(
        "PUT", "/collections/api/points?wait=true&ordering=strong&timeout=10", {"points": points[:1]}
    )
    assert res["status"] == "completed"
    info = api.ok("GET", "/collections/api")
    assert info["points_count"] == 50 and info["config"]["params"]["vectors"]["size"] == 8
    hits = api.ok(
        "POST",
        "/collections/api/points/query?consistency=majority",
        {"query": vecs[3].tolist(), "limit": 5, "with_payload": True},
    )["points"]
    assert hits[0]["id"] == 3 and hits[0]["payload"] == {"n": 3, "tag": "b"}
    assert api.ok("GET", "/collections/api/points/7")["id"] == 7
    many = api.ok("POST", "/collections/api/points", {"ids": [1, 2, 999], "with_vector": False})
    assert [r["id"] for r in many] == [1, 2]
    page = api.ok("POST", "/collections/api/points/scroll", {"limit": 20})
    assert len(page["points"]) == 20 and page["next_page_offset"] == 20
    assert api.ok("POST", "/collections/api/points/count", {})["count"] == 50
    api.ok("POST", "/collections/api/points/delete?wait=true", {"points": [0, 1]})
    assert api.ok("POST", "/collections/api/points/count", {})["count"] == 48
    api.ok("GET", "/collections/api/optimizations")
    assert api.ok("DELETE", "/collections/api") is True
    status, body = api.call("GET", "/collections/api")
    assert status == 404 and body["status"]["error"] == "Not found: Collection `api` doesn't exist!"


def test_legacy_endpoints(api: Api) -> None:
    rng = np.random.default_rng(2)
    vecs = rng.standard_normal((40, 4))
    api.ok("PUT", "/collections/old", {"vectors": {"size": 4, "distance": "Dot"}})
    api.ok(
        "PUT",
        "/collections/old/points?wait=true",
        {"points": [{"id": i, "vector": vecs[i].tolist(), "payload": {"g": i % 4}} for i in range(40)]},
    )
    base = "/collections/old/points"
    order = np.argsort(-(vecs @ vecs[4])).tolist()
    hits = api.ok("POST", base + "/search", {"vector": vecs[4].tolist(), "limit": 3})
    assert [h["id"] for h in hits] == order[:3]
    batch = api.ok("POST", base + "/search/batch", {"searches": [{"vector": vecs[4].tolist(), "limit": 2}]})
    assert [h["id"] for h in batch[0]] == order[:2]
    groups = api.ok(
        "POST",
        base + "/search/groups",
        {"vector": vecs[4].tolist(), "group_by": "g", "limit": 2, "group_size": 2},
    )
    assert len(groups["groups"]) == 2 and all(len(g["hits"]) == 2 for g in groups["groups"])
    rec = api.ok("POST", base + "/recommend", {"positive": [1], "negative": [2], "limit": 3})
    assert len(rec) == 3 and not {1, 2} & {h["id"] for h in rec}
    api.ok("POST", base + "/recommend/batch", {"searches": [{"positive": [1], "limit": 2}]})
    api.ok(
        "POST", base + "/recommend/groups", {"positive": [1], "group_by": "g", "limit": 2, "group_size": 1}
    )
    disc = api.ok(
        "POST", base + "/discover", {"target": 4, "context": [{"positive": 5, "negative": 6}], "limit": 2}
    )
    assert len(disc) == 2
    api.ok("POST", base + "/discover/batch", {"searches": [{"target": 4, "limit": 2}]})


def test_bad_input_over_http(api: Api) -> None:
    api.ok("PUT", "/collections/bad", {"vectors": {"size": 4, "distance": "Dot"}})
    api.ok("PUT", "/collections/bad/index?wait=true", {"field_name": "k", "field_schema": "keyword"})
    good = {"points": [{"id": 1, "vector": [1, 2, 3, 4], "payload": {"k": "v"}}]}
    api.ok("PUT", "/collections/bad/points?wait=true", good)
    cases = [
        ("PUT", "/collections/bad/points", None, b"{not json", 400, "Format error in JSON body"),
        (
            "PUT",
            "/collections/bad/points",
            {"points": [{"id": 2, "vector": [1, 2, 3]}]},
            None,
            400,
            "Vector dimension error: expected dim: 4, got 3",
        ),
        ("PUT", "/collections/nope/points", good, None, 404, "Not found: Collection `nope` doesn't exist!"),
        (
            "POST",
            "/collections/bad/points/scroll",
            {"filter": {"must": [{"key": "k", "matchh": {"value": "v"}}]}},
            None,
            400,
            "matchh",
        ),
        (
            "POST",
            "/collections/bad/points/query",
            {"query": [1, 2, 3, 4], "filter": {"should": [{"kee": "k"}]}},
            None,
            400,
            "kee",
        ),
        ("POST", "/collections/bad/points/scroll", {"limit": -1}, None, 400, "limit"),
        (
            "POST",
            "/collections/bad/points/query",
            {"query": [1, 2, 3, 4], "limit": 0},
            None,
            422,
            "Validation error in JSON body: [internal.limit: value 0 invalid",
        ),
        ("PUT", "/collections/bad2", {"vectors": {"size": 4, "distance": "Hamming"}}, None, 400, "distance"),
        ("PUT", "/collections/bad", {"vectors": {"size": 4, "distance": "Dot"}}, None, 409, "already exists"),
    ]
    for method, path, body, raw, code, needle in cases:
        status, out = api.call(method, path, body, raw=raw)
        assert status == code, (path, body, out)
        assert needle in out["status"]["error"], (needle, out)
    # nothing changed and the peer still serves
    page = api.ok("POST", "/collections/bad/points/scroll", {"with_vector": True})
    assert [(p["id"], p["vector"], p["payload"]) for p in page["points"]] == [
        (1, [1.0, 2.0, 3.0, 4.0], {"k": "v"})
    ]
    assert api.call("GET", "/collections/bad2")[0] == 404


def test_service_endpoints(api: Api) -> None:
    status, root = api.call("GET", "/")
    assert status == 200 and root.keys() == {"title", "version", "commit"}  # as Qdrant's
    assert re.fullmatch(r"[0-9a-f]{40}", root["commit"])  # this checkout's, or zeros
    assert root["title"] == "qdrant - vector search engine"
    for path in ("/healthz", "/livez", "/readyz"):
        assert api.call("GET", path) == (
            200,
            "healthz check passed" if path != "/readyz" else "all shards are ready",
        )
    assert api.ok("GET", "/telemetry")["id"] == "qcluster"
    assert api.ok("GET", "/cluster") == {"status": "disabled"}
    assert api.ok("GET", "/issues") == {"issues": []}
    assert api.ok("DELETE", "/issues") is True
    quotas = api.ok("GET", "/quotas")
    assert quotas["config"]["enabled"] is False
    assert api.ok("PUT", "/quotas", {"enabled": False, "max_resident_memory_percent": 95}) is True
    assert api.ok("GET", "/quotas")["config"]["max_resident_memory_percent"] == 95
    status, text = api.call("GET", "/metrics")
    assert (
        status == 200
        and 'app_info{name="qdrant",version="' in text  # as Qdrant's dashboards read it
        and 'qcluster_build_info{version="' in text
        and 'rest_responses_total{endpoint="/quotas",method="GET",status="200"}' in text
    )


def test_full_snapshot_download(api: Api) -> None:
    api.ok("PUT", "/collections/snap", {"vectors": {"size": 2, "distance": "Dot"}})
    desc = api.ok("POST", "/snapshots")
    listed = api.ok("GET", "/snapshots")
    assert [d["name"] for d in listed] == [desc["name"]]
    resp = httpx.get(f"{api.base}/snapshots/{desc['name']}", timeout=60)
    assert resp.status_code == 200 and len(resp.content) == desc["size"]
    assert hashlib.sha256(resp.content).hexdigest() == desc["checksum"]
    status, out = api.call("GET", "/snapshots/nope.snapshot")
    assert status == 404 and "nope.snapshot" in out["status"]["error"]
    assert api.ok("DELETE", f"/snapshots/{desc['name']}") is True
    assert api.ok("GET", "/snapshots") == []
