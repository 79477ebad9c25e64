"""Collections, aliases, payload indexes, named vectors, persistence across restarts, and the
service endpoints (root, health, telemetry, metrics, cluster, issues, quotas, optimizations)."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson

import qcluster
from tests.unit.rest_harness import running

C = "/collections/c"


async def test_collection_lifecycle_and_info(tmp_path: Path) -> None:
    async with running(tmp_path) as rest:
        assert await rest.ok("GET", "/collections") == {"collections": []}
        body = {
            "vectors": {"size": 4, "distance": "Cosine", "on_disk": True},
            "shard_number": 2,
            "hnsw_config": {"m": 8, "ef_construct": 64},
            "optimizers_config": {"indexing_threshold": 5000},
            "wal_config": {"wal_capacity_mb": 16},
            "quantization_config": {"scalar": {"type": "int8", "quantile": 0.99}},
            "metadata": {"team": "search"},
        }
        assert await rest.ok("PUT", C, body) is True
        assert await rest.ok("GET", C + "/exists") == {"exists": True}
        assert await rest.ok("GET", "/collections/zz/exists") == {"exists": False}
        await rest.ok(
            "PUT", C + "/points?wait=true", {"points": [{"id": i, "vector": [1, i, 0, 0]} for i in range(7)]}
        )
        info = await rest.ok("GET", C)
        assert info["status"] in ("green", "yellow") and info["optimizer_status"] == "ok"
        assert info["points_count"] == 7 and info["segments_count"] >= 2
        cfg = info["config"]
        assert cfg["params"]["vectors"] == {"size": 4, "distance": "Cosine", "on_disk": True}
        assert cfg["params"]["shard_number"] == 2
        assert cfg["hnsw_config"]["m"] == 8 and cfg["hnsw_config"]["ef_construct"] == 64
        assert (
            cfg["optimizer_config"]["indexing_threshold"] == 5000
            and cfg["wal_config"]["wal_capacity_mb"] == 16
        )
        assert cfg["quantization_config"] == {"scalar": {"type": "int8", "quantile": 0.99}}
        assert cfg["metadata"] == {"team": "search"}
        await rest.ok(
            "PATCH",
            C,
            {
                "optimizers_config": {"indexing_threshold": 100},
                "hnsw_config": {"m": 12},
                "quantization_config": "Disabled",
                "metadata": {"v": 2},
            },
        )
        cfg = (await rest.ok("GET", C))["config"]
        assert cfg["optimizer_config"]["indexing_threshold"] == 100 and cfg["hnsw_config"]["m"] == 12
        assert cfg["quantization_config"] is None and cfg["metadata"] == {"team": "search", "v": 2}
        assert await rest.ok("DELETE", C) is True
        assert await rest.ok("DELETE", C) is False
        assert await rest.ok("GET", "/collections") == {"collections": []}


async def test_aliases(tmp_path: Path) -> None:
    async with running(tmp_path) as rest:
        for name in ("a", "b"):
            await rest.ok("PUT", f"/collections/{name}", {"vectors": {"size": 2, "distance": "Dot"}})
        await rest.ok("PUT", "/collections/a/points?wait=true", {"points": [{"id": 1, "vector": [1, 1]}]})
        actions = [
            {"create_alias": {"collection_name": "a", "alias_name": "x"}},
            {"create_alias": {"collection_name": "b", "alias_name": "y"}},
            {"rename_alias": {"old_alias_name": "y", "new_alias_name": "z"}},
        ]
        await rest.ok("POST", "/collections/aliases", {"actions": actions})
        assert (await rest.ok("GET", "/aliases"))["aliases"] == [
            {"alias_name": "x", "collection_name": "a"},
            {"alias_name": "z", "collection_name": "b"},
        ]
        assert (await rest.ok("GET", "/collections/x/aliases"))["aliases"] == [
            {"alias_name": "x", "collection_name": "a"}
        ]
        assert (await rest.ok("POST", "/collections/x/points/count", {}))["count"] == 1
        assert await rest.ok("GET", "/collections/x/exists") == {"exists": True}
        # all or nothing: the second action fails, the first is not applied either
        bad = [
            {"delete_alias": {"alias_name": "x"}},
            {"create_alias": {"collection_name": "nope", "alias_name": "w"}},
        ]
        assert (await rest.call("POST", "/collections/aliases", {"actions": bad}))[0] == 404
        assert len((await rest.ok("GET", "/aliases"))["aliases"]) == 2
        code, out = await rest.call(
            "POST",
            "/collections/aliases",
            {"actions": [{"create_alias": {"collection_name": "a", "alias_name": "b"}}]},
        )
        assert code == 409 and "already exists" in out["status"]["error"]
        code, _ = await rest.call("PUT", "/collections/x", {"vectors": {"size": 2, "distance": "Dot"}})
        assert code == 400  # an alias name: 400, as Qdrant
        # deleting a collection removes its aliases; an alias name does not delete its collection
        assert await rest.ok("DELETE", "/collections/x") is False
        await rest.ok("DELETE", "/collections/a")
        assert (await rest.ok("GET", "/aliases"))["aliases"] == [{"alias_name": "z", "collection_name": "b"}]


async def test_payload_index_lifecycle(tmp_path: Path) -> None:
    async with running(tmp_path) as rest:
        await rest.ok("PUT", C, {"vectors": {"size": 2, "distance": "Dot"}})
        await rest.ok(
            "PUT",
            C + "/points?wait=true",
            {
                "points": [
                    {"id": i, "vector": [1, 0], "payload": {"k": f"v{i % 3}", "n": i}} for i in range(9)
                ]
            },
        )
        res = await rest.ok("PUT", C + "/index?wait=true", {"field_name": "k", "field_schema": "keyword"})
        assert res["status"] == "completed"
        await rest.ok(
            "PUT",
            C + "/index?wait=true",
            {"field_name": "n", "field_schema": {"type": "integer", "range": True, "lookup": False}},
        )
        schema = (await rest.ok("GET", C))["payload_schema"]
        assert schema["k"]["data_type"] == "keyword" and schema["k"]["points"] == 9
        assert schema["n"]["data_type"] == "integer"
        facet = await rest.ok("POST", C + "/facet", {"key": "k", "limit": 2})
        assert facet["hits"] == [{"value": "v0", "count": 3}, {"value": "v1", "count": 3}]
        await rest.ok("DELETE", C + "/index/k?wait=true")
        assert "k" not in (await rest.ok("GET", C))["payload_schema"]
        code, out = await rest.call("POST", C + "/facet", {"key": "k"})
        assert code == 400 and "Index required" in out["status"]["error"]


async def test_named_vector_added_and_removed_keeps_data(tmp_path: Path) -> None:
    async with running(tmp_path) as rest:
        await rest.ok("PUT", C, {"vectors": {"a": {"size": 2, "distance": "Dot"}}, "shard_number": 2})
        await rest.ok(
            "PUT",
            C + "/points?wait=true",
            {"points": [{"id": i, "vector": {"a": [i, 1]}, "payload": {"i": i}} for i in range(20)]},
        )
        await rest.ok("PUT", C + "/index?wait=true", {"field_name": "i", "field_schema": "integer"})
        res = await rest.ok("PUT", C + "/vectors/b", {"dense": {"size": 3, "distance": "Euclid"}})
        assert res["status"] == "completed"
        code, _ = await rest.call("PUT", C + "/vectors/b", {"dense": {"size": 3, "distance": "Euclid"}})
        assert code == 409
        info = await rest.ok("GET", C)
        assert info["config"]["params"]["vectors"]["b"] == {"size": 3, "distance": "Euclid"}
        assert info["points_count"] == 20 and info["payload_schema"]["i"]["points"] == 20
        await rest.ok(
            "PUT", C + "/points/vectors?wait=true", {"points": [{"id": 3, "vector": {"b": [1, 2, 3]}}]}
        )
        hits = (await rest.ok("POST", C + "/points/query", {"query": [1, 2, 3], "using": "b"}))["points"]
        assert [h["id"] for h in hits] == [3]
        await rest.ok("DELETE", C + "/vectors/a")
        rec = await rest.ok("GET", C + "/points/3")
        assert rec == {"id": 3, "payload": {"i": 3}, "vector": {"b": [1.0, 2.0, 3.0]}}
        assert list((await rest.ok("GET", C))["config"]["params"]["vectors"]) == ["b"]
        code, out = await rest.call("DELETE", C + "/vectors/b")
        assert code == 400 and "last vector" in out["status"]["error"]
        dirs = sorted(p.name for p in (tmp_path / "storage" / "collections" / "c").iterdir() if p.is_dir())
        assert len(dirs) == 1 and dirs[0].startswith("shards-")


async def test_state_survives_a_restart(tmp_path: Path) -> None:
    async with running(tmp_path) as rest:
        await rest.ok("PUT", C, {"vectors": {"x": {"size": 2, "distance": "Dot"}}, "shard_number": 3})
        await rest.ok(
            "PUT",
            C + "/points?wait=true",
            {"points": [{"id": i, "vector": {"x": [i, 1]}} for i in range(30)]},
        )
        await rest.ok("PUT", C + "/vectors/y", {"dense": {"size": 2, "distance": "Cosine"}})
        await rest.ok(
            "POST",
            "/collections/aliases",
            {"actions": [{"create_alias": {"collection_name": "c", "alias_name": "al"}}]},
        )
        await rest.ok("PUT", "/quotas", {"enabled": False, "max_disk_usage_percent": 99})
    # an interrupted rebuild leaves an unreferenced shard generation: it is cleaned on load
    col_dir = tmp_path / "storage" / "collections" / "c"
    current = orjson.loads((col_dir / "config.json").read_bytes())["shards_dir"]
    shutil.copytree(col_dir / current, col_dir / "shards-interrupted")
    async with running(tmp_path) as rest:
        assert (await rest.ok("POST", "/collections/al/points/count", {}))["count"] == 30
        info = await rest.ok("GET", C)
        assert info["config"]["params"]["shard_number"] == 3 and set(info["config"]["params"]["vectors"]) == {
            "x",
            "y",
        }
        assert (await rest.ok("GET", "/quotas"))["config"]["max_disk_usage_percent"] == 99
        assert not (col_dir / "shards-interrupted").exists()


async def test_service_endpoints(tmp_path: Path) -> None:
    async with running(tmp_path) as rest:
        code, root = await rest.call("GET", "/")
        assert code == 200 and root["title"] == "qdrant - vector search engine"
        assert root["version"] == qcluster.QDRANT_COMPAT_VERSION
        for path in ("/healthz", "/livez", "/readyz"):
            assert await rest.call("GET", path) == (
                200,
                "healthz check passed" if path != "/readyz" else "all shards are ready",
            )
        await rest.ok("PUT", C, {"vectors": {"size": 2, "distance": "Dot"}})
        await rest.ok("PUT", C + "/points?wait=true", {"points": [{"id": 1, "vector": [1, 1]}]})
        tele = await rest.ok("GET", "/telemetry")
        assert tele["collections"]["number_of_collections"] == 1 and tele["app"]["name"] == "qcluster"
        assert await rest.ok("GET", "/cluster") == {"status": "disabled"}
        assert await rest.ok("GET", "/issues") == {"issues": []}  # in the envelope, as Qdrant
        assert await rest.ok("DELETE", "/issues") is True
        opt = await rest.ok("GET", C + "/optimizations?with=queued,completed")
        assert opt["summary"]["queued_optimizations"] == 0 and opt["queued"] == [] and opt["completed"] == []
        assert "idle_segments" not in opt
        opt = await rest.ok("GET", C + "/optimizations?with= queued , idle_segments ")
        assert "completed" not in opt and opt["summary"]["idle_segments"] == len(opt["idle_segments"]) >= 1
        assert sum(s["points_count"] for s in opt["idle_segments"]) == 1  # the one point upserted
        assert all(len(s["uuid"]) == 36 for s in opt["idle_segments"])
        code, text = await rest.call("GET", "/metrics")
        assert code == 200
        assert 'collection_points{id="c"} 1.0' in text and "collections_total 1.0" in text
        assert (
            'rest_responses_total{endpoint="/collections/{collection_name}/points",method="PUT",status="200"} 1.0'
            in text
        )
        quotas = await rest.ok("GET", "/quotas")
        assert quotas["config"]["enabled"] is False and 0 <= quotas["usage"]["disk_usage_percent"] <= 100


async def test_quota_refuses_writes_while_exceeded(tmp_path: Path) -> None:
    async with running(tmp_path) as rest:
        await rest.ok("PUT", C, {"vectors": {"size": 2, "distance": "Dot"}})
        # the disk holding the storage is never below 1% full
        await rest.ok("PUT", "/quotas", {"enabled": True, "max_disk_usage_percent": 1})
        code, out = await rest.call("PUT", C + "/points", {"points": [{"id": 1, "vector": [1, 1]}]})
        assert code == 503 and "quota exceeded: disk usage" in out["status"]["error"]
        assert (await rest.ok("POST", C + "/points/count", {}))["count"] == 0  # reads still work
        await rest.ok("PUT", "/quotas", {"enabled": False})
        await rest.ok("PUT", C + "/points?wait=true", {"points": [{"id": 1, "vector": [1, 1]}]})
        assert (await rest.ok("POST", C + "/points/count", {}))["count"] == 1


async def test_collection_cluster_info_on_a_single_peer(tmp_path: Path) -> None:
    async with running(tmp_path) as rest:
        assert await rest.ok("PUT", C, {"vectors": {"size": 2, "distance": "Dot"}, "shard_number": 2}) is True
        points = [{"id": i, "vector": [1.0, float(i)]} for i in range(10)]
        await rest.ok("PUT", C + "/points?wait=true", {"points": points})
        info = await rest.ok("GET", C + "/cluster")
        assert info["shard_count"] == 2 and info["remote_shards"] == [] and info["shard_transfers"] == []
        assert [s["shard_id"] for s in info["local_shards"]] == [0, 1]
        assert sum(s["points_count"] for s in info["local_shards"]) == 10
        assert {s["state"] for s in info["local_shards"]} == {"Active"}
        status, body = await rest.call("GET", "/collections/missing/cluster")
        assert status == 404 and "missing" in body["status"]["error"]


async def test_telemetry_by_details_level(tmp_path: Path) -> None:
    """Qdrant's shape at every level (the harness validates each body against the spec): request
    figures per endpoint and status, then collections, shards and segments as the level grows."""
    async with running(tmp_path) as rest:
        await rest.ok("PUT", C, {"vectors": {"size": 2, "distance": "Dot"}})
        tele = await rest.ok("GET", "/telemetry")
        assert tele["app"]["features"]["staging"] is False
        assert set(tele) == {"id", "app", "collections", "cluster", "requests", "quota"}
        assert tele["collections"] == {"number_of_collections": 1}
        assert tele["quota"]["config"]["enabled"] is False and tele["quota"]["exceeded"]
        for i in range(3):
            await rest.ok("PUT", C + "/points?wait=true", {"points": [{"id": i, "vector": [1, i]}]})
        await rest.call("PUT", C + "/points?wait=true", {"points": [{"id": 9, "vector": [1]}]})  # a 400
        tele = await rest.ok("GET", "/telemetry")
        answered = tele["requests"]["rest"]["responses"]["PUT /collections/{collection_name}/points"]
        assert answered["200"]["count"] == 3 and answered["200"]["fail_count"] == 0
        assert answered["400"]["count"] == 1 and answered["400"]["fail_count"] == 1
        figures = answered["200"]
        assert (
            0
            < figures["min_duration_micros"]
            <= figures["avg_duration_micros"]
            <= figures["max_duration_micros"]
        )
        assert figures["last_responded"].endswith("Z")
        one = await rest.ok("GET", "/telemetry?details_level=1")
        assert {"memory", "hardware", "search_pool"} <= set(one) and one["memory"]["resident_bytes"] > 0
        (col,) = one["collections"]["collections"]
        assert set(col) == {"vectors", "optimizers_status", "params"} and col["vectors"] == 3
        two = await rest.ok("GET", "/telemetry?details_level=2")
        (col,) = two["collections"]["collections"]
        assert col["id"] == "c" and col["config"]["params"]["vectors"]["size"] == 2
        three = await rest.ok("GET", "/telemetry?details_level=3")
        (col,) = three["collections"]["collections"]
        (shard,) = col["shards"]
        local = shard["local"]
        assert local["num_points"] == 3 and local["num_vectors_by_name"] == {"": 3}
        assert local["update_queue"] == {"length": 0, "op_num": 3} and "segments" not in local
        assert (await rest.ok("GET", C))["update_queue"] == {"length": 0}
        ten = await rest.ok("GET", "/telemetry?details_level=10")
        segments = ten["collections"]["collections"][0]["shards"][0]["local"]["segments"]
        assert sum(s["info"]["num_points"] for s in segments) == 3
        assert all(
            set(s) == {"info", "config", "vector_index_searches", "payload_field_indices"} for s in segments
        )


async def test_metrics_per_collection(tmp_path: Path) -> None:
    """``?per_collection=true``: the REST request series carry the collection each request named
    (a refused one, which may name any collection, stays unlabelled); the default has no label;
    both are valid exposition text with each family once."""
    from prometheus_client.parser import text_string_to_metric_families

    async with running(tmp_path) as rest:
        await rest.ok("PUT", C, {"vectors": {"size": 2, "distance": "Dot"}})
        await rest.ok("POST", C + "/points/scroll", {"limit": 1})
        assert (await rest.call("POST", "/collections/no_such/points/scroll", {"limit": 1}))[0] == 404

        async def families(path: str) -> dict[str, list[dict[str, str]]]:
            status, text = await rest.call("GET", path)
            assert status == 200
            out: dict[str, list[dict[str, str]]] = {}
            for fam in text_string_to_metric_families(text):
                assert fam.name not in out  # each family once
                out[fam.name] = [s.labels for s in fam.samples]
            return out

        plain = await families("/metrics")
        assert all("collection" not in labels for labels in plain["rest_responses"])
        split = await families("/metrics?per_collection=true")
        scroll = "/collections/{collection_name}/points/scroll"
        scrolls = [labels for labels in split["rest_responses"] if labels["endpoint"] == scroll]
        assert {labels["collection"] for labels in scrolls} == {"c", ""}  # the 404 is unlabelled
        assert "collections_total" in split and "app_info" in split  # the other families stay
