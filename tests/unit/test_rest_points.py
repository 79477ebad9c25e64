"""Point writes over the REST app: both upsert forms, wait semantics, payload and vector
operations, batch updates, conditional upserts, named vectors, several shards."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.unit.rest_harness import Rest, running

P = "/collections/c/points"


async def _records(rest: Rest, ids: list[Any], **kw: Any) -> dict[Any, Any]:
    recs = await rest.ok("POST", P, {"ids": ids, "with_payload": True, **kw})
    return {r["id"]: r for r in recs}


@pytest.mark.parametrize("shards", [1, 3])
async def test_upsert_forms_retrieve_and_wait(tmp_path: Path, shards: int) -> None:
    async with running(tmp_path) as rest:
        await rest.ok(
            "PUT", "/collections/c", {"vectors": {"size": 3, "distance": "Euclid"}, "shard_number": shards}
        )
        res = await rest.ok(
            "PUT",
            P + "?wait=true",
            {"points": [{"id": i, "vector": [i, 0, 0], "payload": {"i": i}} for i in range(10)]},
        )
        assert res["status"] == "completed" and isinstance(res["operation_id"], int)
        uid = "550e8400-e29b-41d4-a716-446655440000"
        res = await rest.ok(
            "PUT",
            P,
            {
                "batch": {
                    "ids": [10, 11, uid.upper()],
                    "vectors": [[10, 0, 0], [11, 0, 0], [12, 0, 0]],
                    "payloads": [{"i": 10}, None, {"u": 1}],
                }
            },
        )
        assert res["status"] == "acknowledged"
        assert (await rest.ok("POST", P + "/count", {}))["count"] == 13
        got = await _records(rest, [3, 11, uid, 999], with_vector=True)
        assert got == {
            3: {"id": 3, "payload": {"i": 3}, "vector": [3.0, 0.0, 0.0]},
            11: {"id": 11, "payload": {}, "vector": [11.0, 0.0, 0.0]},
            uid: {"id": uid, "payload": {"u": 1}, "vector": [12.0, 0.0, 0.0]},
        }
        one = await rest.ok("GET", P + "/5")
        assert one == {"id": 5, "payload": {"i": 5}, "vector": [5.0, 0.0, 0.0]}
        assert (await rest.ok("GET", f"{P}/{uid}"))["payload"] == {"u": 1}
        # re-upsert replaces the whole point
        await rest.ok("PUT", P + "?wait=true", {"points": [{"id": 3, "vector": [0, 3, 0]}]})
        assert (await rest.ok("GET", P + "/3")) == {"id": 3, "payload": {}, "vector": [0.0, 3.0, 0.0]}
        # scroll pages through every point once, in id order (integers before UUIDs)
        seen: list[Any] = []
        offset = None
        while True:
            page = await rest.ok("POST", P + "/scroll", {"limit": 4, "offset": offset, "with_payload": False})
            seen += [p["id"] for p in page["points"]]
            offset = page["next_page_offset"]
            if offset is None:
                break
        assert seen == [*range(12), uid]


async def test_payload_operations(tmp_path: Path) -> None:
    async with running(tmp_path) as rest:
        await rest.ok("PUT", "/collections/c", {"vectors": {"size": 2, "distance": "Dot"}, "shard_number": 2})
        await rest.ok(
            "PUT",
            P + "?wait=true",
            {
                "points": [
                    {
                        "id": i,
                        "vector": [1, i],
                        "payload": {"i": i, "color": ["red", "blue"][i % 2], "nested": {"a": 1}},
                    }
                    for i in range(6)
                ]
            },
        )
        await rest.ok("POST", P + "/payload?wait=true", {"payload": {"tag": "x"}, "points": [0, 1]})
        await rest.ok("POST", P + "/payload?wait=true", {"payload": {"b": 2}, "points": [2], "key": "nested"})
        await rest.ok("PUT", P + "/payload?wait=true", {"payload": {"only": 1}, "points": [3]})
        await rest.ok("POST", P + "/payload/delete?wait=true", {"keys": ["i", "nested.a"], "points": [4]})
        await rest.ok("POST", P + "/payload/clear?wait=true", {"points": [5]})
        got = await _records(rest, list(range(6)))
        assert got[0]["payload"] == {"i": 0, "color": "red", "nested": {"a": 1}, "tag": "x"}
        assert got[2]["payload"]["nested"] == {"a": 1, "b": 2}
        assert got[3]["payload"] == {"only": 1}
        assert got[4]["payload"] == {"color": "red", "nested": {}}
        assert got[5]["payload"] == {}
        # by filter: every blue point
        blue = {"must": [{"key": "color", "match": {"value": "blue"}}]}
        await rest.ok("POST", P + "/payload?wait=true", {"payload": {"sale": True}, "filter": blue})
        sale = {"must": [{"key": "sale", "match": {"value": True}}]}
        assert (await rest.ok("POST", P + "/count", {"filter": sale}))["count"] == 1  # 3 and 5 lost color
        await rest.ok("POST", P + "/delete?wait=true", {"filter": sale})
        assert (await rest.ok("POST", P + "/count", {}))["count"] == 5
        # selector fields of the payload operations
        got = await rest.ok("POST", P, {"ids": [0, 2], "with_payload": ["tag", "nested"]})
        assert [r["payload"] for r in got] == [{"tag": "x", "nested": {"a": 1}}, {"nested": {"a": 1, "b": 2}}]
        got = await rest.ok("POST", P, {"ids": [0], "with_payload": {"exclude": ["nested", "i"]}})
        assert got[0]["payload"] == {"color": "red", "tag": "x"}


async def test_named_vectors_update_and_delete(tmp_path: Path) -> None:
    async with running(tmp_path) as rest:
        await rest.ok(
            "PUT",
            "/collections/c",
            {"vectors": {"img": {"size": 2, "distance": "Cosine"}, "txt": {"size": 3, "distance": "Dot"}}},
        )
        await rest.ok(
            "PUT",
            P + "?wait=true",
            {
                "points": [
                    {"id": 1, "vector": {"img": [1, 0], "txt": [1, 2, 3]}},
                    {"id": 2, "vector": {"txt": [0, 0, 1]}},
                ]
            },
        )
        got = await _records(rest, [1, 2], with_vector=True)
        assert got[1]["vector"] == {"img": [1.0, 0.0], "txt": [1.0, 2.0, 3.0]}
        assert got[2]["vector"] == {"txt": [0.0, 0.0, 1.0]}
        await rest.ok("PUT", P + "/vectors?wait=true", {"points": [{"id": 2, "vector": {"img": [0, 2]}}]})
        got = await _records(rest, [2], with_vector=["img"])
        assert got[2]["vector"] == {"img": [0.0, 1.0]}  # Cosine vectors are stored normalised
        await rest.ok("POST", P + "/vectors/delete?wait=true", {"points": [1], "vector": ["txt"]})
        got = await _records(rest, [1, 2], with_vector=True)
        assert got[1]["vector"] == {"img": [1.0, 0.0]} and got[2]["vector"] == {
            "img": [0.0, 1.0],
            "txt": [0.0, 0.0, 1.0],
        }
        hits = (await rest.ok("POST", P + "/query", {"query": [0, 0, 1], "using": "txt"}))["points"]
        assert [h["id"] for h in hits] == [2]  # point 1 has no txt vector any more
        code, out = await rest.call(
            "PUT", P + "/vectors", {"points": [{"id": 77, "vector": {"img": [1, 1]}}]}
        )
        assert code == 404 and "77" in out["status"]["error"]


async def test_batch_update_applies_in_order(tmp_path: Path) -> None:
    async with running(tmp_path) as rest:
        await rest.ok("PUT", "/collections/c", {"vectors": {"size": 2, "distance": "Dot"}, "shard_number": 2})
        ops = [
            {"upsert": {"points": [{"id": i, "vector": [i, 1], "payload": {"i": i}} for i in range(5)]}},
            {"upsert": {"batch": {"ids": [10], "vectors": [[1, 1]]}}},
            {"set_payload": {"payload": {"s": 1}, "points": [0, 10]}},
            {"overwrite_payload": {"payload": {"o": 1}, "points": [1]}},
            {"delete_payload": {"keys": ["i"], "points": [2]}},
            {"clear_payload": {"points": [3]}},
            {"update_vectors": {"points": [{"id": 4, "vector": [9, 9]}]}},
            {"delete": {"points": [0]}},
            {"delete_vectors": {"points": [10], "vector": [""]}},
        ]
        results = await rest.ok("POST", P + "/batch?wait=true", {"operations": ops})
        assert [r["status"] for r in results] == ["completed"] * len(ops)
        got = await _records(rest, [0, 1, 2, 3, 4, 10], with_vector=True)
        assert 0 not in got
        assert got[1]["payload"] == {"o": 1} and got[2]["payload"] == {} and got[3]["payload"] == {}
        assert got[4]["vector"] == [9.0, 9.0] and got[10]["payload"] == {"s": 1} and got[10]["vector"] is None


async def test_conditional_upserts(tmp_path: Path) -> None:
    async with running(tmp_path) as rest:
        await rest.ok("PUT", "/collections/c", {"vectors": {"size": 2, "distance": "Dot"}, "shard_number": 2})
        await rest.ok(
            "PUT",
            P + "?wait=true",
            {"points": [{"id": i, "vector": [i, 0], "payload": {"v": i}} for i in range(4)]},
        )
        await rest.ok(
            "PUT",
            P + "?wait=true",
            {
                "points": [
                    {"id": 1, "vector": [0, 1], "payload": {"v": 100}},
                    {"id": 9, "vector": [9, 9], "payload": {"v": 9}},
                ],
                "update_mode": "insert_only",
            },
        )
        got = await _records(rest, [1, 9])
        assert got[1]["payload"] == {"v": 1} and got[9]["payload"] == {"v": 9}
        await rest.ok(
            "PUT",
            P + "?wait=true",
            {
                "points": [{"id": 2, "vector": [0, 2], "payload": {"v": 200}}, {"id": 20, "vector": [1, 1]}],
                "update_mode": "update_only",
            },
        )
        got = await _records(rest, [2, 20])
        assert got == {2: {"id": 2, "payload": {"v": 200}, "vector": None}}
        # update_filter: existing points change only when they match; new points are inserted
        await rest.ok(
            "PUT",
            P + "?wait=true",
            {
                "batch": {
                    "ids": [0, 3, 30],
                    "vectors": [[5, 5], [5, 5], [5, 5]],
                    "payloads": [{"v": -1}, {"v": -1}, {"v": -1}],
                },
                "update_filter": {"must": [{"key": "v", "range": {"gte": 3}}]},
            },
        )
        got = await _records(rest, [0, 3, 30])
        assert (
            got[0]["payload"] == {"v": 0}
            and got[3]["payload"] == {"v": -1}
            and got[30]["payload"] == {"v": -1}
        )
        await rest.ok(
            "PUT",
            P + "/vectors?wait=true",
            {
                "points": [{"id": 1, "vector": [7, 7]}, {"id": 3, "vector": [7, 7]}],
                "update_filter": {"must": [{"key": "v", "match": {"value": 1}}]},
            },
        )
        got = await _records(rest, [1, 3], with_vector=True)
        assert got[1]["vector"] == [7.0, 7.0] and got[3]["vector"] == [5.0, 5.0]
