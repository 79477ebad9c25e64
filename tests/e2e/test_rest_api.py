"""REST endpoints over real HTTP: status codes, envelopes and bodies checked against the OpenAPI spec."""

from __future__ import annotations

import numpy as np

from qcluster.testing.server import ServerProcess

from .http import call
from .openapi_check import validate

C = "/collections/{collection_name}"


def _ok(
    server: ServerProcess, method: str, path: str, template: str, body: object = None, version: str = "1.19"
):  # type: ignore[no-untyped-def]
    status, out = call(server.url, method, path, body)
    assert status == 200, (path, out)
    assert out["status"] == "ok" and isinstance(out["time"], float)
    validate(template, method, out, 200, version)
    return out["result"]


def test_collection_lifecycle_and_points(server: ServerProcess) -> None:
    rng = np.random.default_rng(0)
    vecs = rng.standard_normal((50, 8)).astype(float)
    assert _ok(server, "PUT", "/collections/api", C, {"vectors": {"size": 8, "distance": "Cosine"}}) is True
    assert _ok(server, "GET", "/collections/api/exists", C + "/exists")["exists"] is True
    assert {"name": "api"} in _ok(server, "GET", "/collections", "/collections")["collections"]
    points = [
        {"id": i, "vector": vecs[i].tolist(), "payload": {"n": i, "tag": ["a", "b"][i % 2]}}
        for i in range(50)
    ]
    res = _ok(server, "PUT", "/collections/api/points?wait=true", C + "/points", {"points": points})
    assert res["status"] == "completed"
    info = _ok(server, "GET", "/collections/api", C)
    assert info["points_count"] == 50 and info["config"]["params"]["vectors"]["size"] == 8
    hits = _ok(
        server,
        "POST",
        "/collections/api/points/query",
        C + "/points/query",
        {"query": vecs[3].tolist(), "limit": 5, "with_payload": True},
    )["points"]
    assert hits[0]["id"] == 3 and hits[0]["payload"] == {"n": 3, "tag": "b"}
    legacy = _ok(
        server,
        "POST",
        "/collections/api/points/search",
        C + "/points/search",
        {"vector": vecs[4].tolist(), "limit": 3},
        version="1.18",
    )
    assert legacy[0]["id"] == 4
    rec = _ok(server, "GET", "/collections/api/points/7", C + "/points/{id}")
    assert rec["id"] == 7 and len(rec["vector"]) == 8
    many = _ok(
        server, "POST", "/collections/api/points", C + "/points", {"ids": [1, 2, 999], "with_vector": False}
    )
    assert [r["id"] for r in many] == [1, 2]
    page = _ok(server, "POST", "/collections/api/points/scroll", C + "/points/scroll", {"limit": 20})
    assert len(page["points"]) == 20 and page["next_page_offset"] == 20
    assert _ok(server, "POST", "/collections/api/points/count", C + "/points/count", {})["count"] == 50
    _ok(
        server,
        "POST",
        "/collections/api/points/payload?wait=true",
        C + "/points/payload",
        {"payload": {"extra": True}, "points": [1]},
    )
    _ok(server, "POST", "/collections/api/points/delete?wait=true", C + "/points/delete", {"points": [0, 1]})
    assert _ok(server, "POST", "/collections/api/points/count", C + "/points/count", {})["count"] == 48
    batch = _ok(
        server,
        "POST",
        "/collections/api/points/query/batch",
        C + "/points/query/batch",
        {"searches": [{"query": vecs[5].tolist(), "limit": 1}, {"query": 6, "limit": 2}]},
    )
    assert batch[0]["points"][0]["id"] == 5 and 6 not in [p["id"] for p in batch[1]["points"]]
    _ok(
        server,
        "POST",
        "/collections/aliases",
        "/collections/aliases",
        {"actions": [{"create_alias": {"collection_name": "api", "alias_name": "api-alias"}}]},
    )
    aliases = _ok(server, "GET", "/aliases", "/aliases")["aliases"]
    assert {"alias_name": "api-alias", "collection_name": "api"} in aliases
    assert _ok(server, "POST", "/collections/api-alias/points/count", C + "/points/count", {})["count"] == 48
    _ok(server, "GET", "/collections/api/optimizations", C + "/optimizations")
    assert _ok(server, "DELETE", "/collections/api", C) is True
    status, body = call(server.url, "GET", "/collections/api")
    assert status == 404 and body["status"]["error"] == "Not found: Collection `api` doesn't exist!"
    validate(C, "get", body, 404)


def test_bad_input(server: ServerProcess) -> None:
    _ok(server, "PUT", "/collections/bad", C, {"vectors": {"size": 4, "distance": "Dot"}})
    good = {"points": [{"id": 1, "vector": [1, 2, 3, 4]}]}
    _ok(server, "PUT", "/collections/bad/points?wait=true", C + "/points", good)
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
        (
            "PUT",
            "/collections/bad/points",
            {"points": [{"id": -5, "vector": [1, 2, 3, 4]}]},
            None,
            400,
            "points[0].id",
        ),
        ("PUT", "/collections/nope/points", good, None, 404, "Collection `nope` doesn't exist!"),
        ("POST", "/collections/bad/points/scroll", {"limit": -1}, None, 422, "limit"),
        ("POST", "/collections/bad/points/query", {"query": [1, 2, 3, 4], "limit": -3}, None, 422, "limit"),
        ("PUT", "/collections/bad2", {"vectors": {"size": 0, "distance": "Cosine"}}, None, 422, "size"),
        ("PUT", "/collections/bad2", {"vectors": {"size": 4, "distance": "Hamming"}}, None, 422, "distance"),
        ("PUT", "/collections/bad", {"vectors": {"size": 4, "distance": "Dot"}}, None, 409, "already exists"),
    ]
    for method, path, body, raw, code, needle in cases:
        status, out = call(server.url, method, path, body, raw=raw)
        assert status == code, (path, body, out)
        assert needle in out["status"]["error"], (needle, out)
    # nothing changed and the peer still serves
    page = _ok(server, "POST", "/collections/bad/points/scroll", C + "/points/scroll", {"with_vector": True})
    assert [(p["id"], p["vector"]) for p in page["points"]] == [(1, [1.0, 2.0, 3.0, 4.0])]
    status, _ = call(server.url, "GET", "/collections/bad2")
    assert status == 404
