"""The query API over the REST app, checked against brute-force references computed here with
numpy: nearest, recommend (three strategies), discover, context, fusion, MMR, order_by, sample,
prefetch, groups with lookup, lookup_from, and the legacy endpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from qcluster.collection.query.fusion import dbsf, mmr, rrf
from tests.unit.rest_harness import Rest, running

Q = "/collections/q/points/query"
N, DIM = 120, 8


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


async def _load(rest: Rest, distance: str = "Cosine", shards: int = 1) -> np.ndarray:
    rng = np.random.default_rng(11)
    vecs = rng.standard_normal((N, DIM)).astype(np.float32)
    await rest.ok(
        "PUT", "/collections/q", {"vectors": {"size": DIM, "distance": distance}, "shard_number": shards}
    )
    await rest.ok(
        "PUT",
        "/collections/q/points?wait=true",
        {
            "points": [
                {"id": i, "vector": vecs[i].tolist(), "payload": {"n": i, "g": i % 5, "even": i % 2 == 0}}
                for i in range(N)
            ]
        },
    )
    return vecs


def _cos(vecs: np.ndarray, q: np.ndarray) -> np.ndarray:
    return _unit(vecs) @ _unit(q)


async def _ids(rest: Rest, body: dict[str, Any]) -> list[Any]:
    return [p["id"] for p in (await rest.ok("POST", Q, body))["points"]]


@pytest.mark.parametrize("shards", [1, 2])
async def test_nearest(tmp_path: Path, shards: int) -> None:
    async with running(tmp_path) as rest:
        vecs = await _load(rest, shards=shards)
        q = vecs[7] + 0.1
        ref = np.argsort(-_cos(vecs, q))
        hits = (await rest.ok("POST", Q, {"query": q.tolist(), "limit": 5, "with_payload": ["n"]}))["points"]
        assert [h["id"] for h in hits] == ref[:5].tolist()
        assert [h["score"] for h in hits] == pytest.approx(np.sort(_cos(vecs, q))[::-1][:5], abs=1e-5)
        assert hits[0]["payload"] == {"n": int(ref[0])} and hits[0]["vector"] is None
        assert await _ids(rest, {"query": q.tolist(), "limit": 3, "offset": 2}) == ref[2:5].tolist()
        thr = float(_cos(vecs, q)[ref[3]])
        assert (
            await _ids(rest, {"query": q.tolist(), "limit": 50, "score_threshold": thr - 1e-6})
            == ref[:4].tolist()
        )
        by_id = await _ids(rest, {"query": 7, "limit": 4})
        assert (
            7 not in by_id and by_id == [i for i in np.argsort(-_cos(vecs, vecs[7])).tolist() if i != 7][:4]
        )
        nearest = await _ids(rest, {"query": {"nearest": q.tolist()}, "limit": 5})
        assert nearest == ref[:5].tolist()
        even = await _ids(
            rest,
            {
                "query": q.tolist(),
                "limit": 5,
                "filter": {"must": [{"key": "even", "match": {"value": True}}]},
            },
        )
        assert even == [i for i in ref.tolist() if i % 2 == 0][:5]
        with_vec = (await rest.ok("POST", Q, {"query": q.tolist(), "limit": 1, "with_vector": True}))[
            "points"
        ][0]
        assert with_vec["vector"] == pytest.approx(_unit(vecs[ref[0]]).tolist(), abs=1e-5)
        # no query: points in id order
        assert await _ids(rest, {"limit": 4, "offset": 3}) == [3, 4, 5, 6]


async def test_euclid_scores_are_distances(tmp_path: Path) -> None:
    async with running(tmp_path) as rest:
        vecs = await _load(rest, "Euclid")
        q = vecs[3] * 0.5
        dist = np.linalg.norm(vecs - q, axis=1)
        hits = (await rest.ok("POST", Q, {"query": q.tolist(), "limit": 4}))["points"]
        assert [h["id"] for h in hits] == np.argsort(dist)[:4].tolist()
        assert [h["score"] for h in hits] == pytest.approx(np.sort(dist)[:4], rel=1e-4)
        cut = float(np.sort(dist)[1]) + 1e-4
        assert (
            await _ids(rest, {"query": q.tolist(), "limit": 10, "score_threshold": cut})
            == np.argsort(dist)[:2].tolist()
        )
        # rescoring prefetched points keeps distances ascending
        pre = {"prefetch": {"query": vecs[9].tolist(), "limit": 30}, "query": q.tolist(), "limit": 3}
        pre_ids = set(np.argsort(np.linalg.norm(vecs - vecs[9], axis=1))[:30].tolist())
        expect = [i for i in np.argsort(dist).tolist() if i in pre_ids][:3]
        hits = (await rest.ok("POST", Q, pre))["points"]
        assert [h["id"] for h in hits] == expect and hits[0]["score"] <= hits[1]["score"]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (x / (1 + np.abs(x)) + 1)


def _best_score(s: np.ndarray, pos: list[int], neg: list[int]) -> np.ndarray:
    bp = s[:, pos].max(axis=1) if pos else np.full(len(s), -np.inf)
    bn = s[:, neg].max(axis=1) if neg else np.full(len(s), -np.inf)
    return np.where(bp > bn, _sigmoid(bp), -_sigmoid(bn))


async def test_recommend_strategies_match_the_reference(tmp_path: Path) -> None:
    async with running(tmp_path) as rest:
        vecs = await _load(rest)
        unit = _unit(vecs)
        sims = unit @ unit.T  # sims[i, j]: point i to example j
        pos, neg = [1, 2], [3]
        excluded = set(pos + neg)

        def ranked(scores: np.ndarray, k: int) -> list[int]:
            return [i for i in np.argsort(-scores, kind="stable").tolist() if i not in excluded][:k]

        avg = unit[pos].mean(axis=0)
        target = avg + (avg - unit[neg].mean(axis=0))
        got = await _ids(rest, {"query": {"recommend": {"positive": pos, "negative": neg}}, "limit": 5})
        assert got == ranked(_cos(vecs, target), 5)

        everything = {"query": vecs[0].tolist(), "limit": N}
        for strategy, ref in (
            ("best_score", _best_score(sims, pos, neg)),
            ("sum_scores", sims[:, pos].sum(axis=1) - sims[:, neg].sum(axis=1)),
        ):
            spec = {"recommend": {"positive": pos, "negative": neg, "strategy": strategy}}
            # over prefetched points (all of them) the ranking and scores are exact
            hits = (await rest.ok("POST", Q, {"prefetch": everything, "query": spec, "limit": 6}))["points"]
            assert [h["id"] for h in hits] == ranked(ref, 6), strategy
            assert [h["score"] for h in hits] == pytest.approx([ref[h["id"]] for h in hits], abs=1e-5)
            # through ANN candidates: scores follow the formula, best first, examples excluded
            hits = (await rest.ok("POST", Q, {"query": spec, "limit": 6}))["points"]
            assert len(hits) == 6 and not excluded & {h["id"] for h in hits}
            assert [h["score"] for h in hits] == pytest.approx([ref[h["id"]] for h in hits], abs=1e-5)
            assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
            assert hits[0]["id"] == ranked(ref, 1)[0], strategy
        only_neg = {"recommend": {"negative": [5], "strategy": "best_score"}}
        hits = (await rest.ok("POST", Q, {"query": only_neg, "limit": 3}))["points"]
        assert all(h["score"] < 0 for h in hits)
        code, out = await rest.call("POST", Q, {"query": {"recommend": {"negative": [5]}}})
        assert code == 422 and "Positive vectors should not be empty" in out["status"]["error"]


async def test_discover_and_context_match_the_reference(tmp_path: Path) -> None:
    async with running(tmp_path) as rest:
        vecs = await _load(rest)
        unit = _unit(vecs)
        sims = unit @ unit.T
        pairs = [(10, 11), (12, 13)]
        rank = sum(np.where(sims[:, p] > sims[:, n], 1.0, -1.0) for p, n in pairs)
        discover_ref = rank + _sigmoid(sims[:, 20])
        eps = np.finfo(np.float32).eps
        context_ref = sum(
            (lambda d: d / (1 + np.abs(d)))(np.minimum(sims[:, p] - sims[:, n] - eps, 0.0)) for p, n in pairs
        )
        ctx = [{"positive": p, "negative": n} for p, n in pairs]
        everything = {"query": vecs[0].tolist(), "limit": N}
        for query, ref, excluded in (
            ({"discover": {"target": 20, "context": ctx}}, discover_ref, {10, 11, 12, 13, 20}),
            ({"context": ctx}, context_ref, {10, 11, 12, 13}),
        ):
            hits = (await rest.ok("POST", Q, {"prefetch": everything, "query": query, "limit": 5}))["points"]
            expect = [i for i in np.argsort(-ref, kind="stable").tolist() if i not in excluded]
            assert [h["score"] for h in hits] == pytest.approx([ref[i] for i in expect[:5]], abs=1e-5)
            hits = (await rest.ok("POST", Q, {"query": query, "limit": 5}))["points"]
            assert len(hits) == 5 and not excluded & {h["id"] for h in hits}
            assert [h["score"] for h in hits] == pytest.approx([ref[h["id"]] for h in hits], abs=1e-5)


async def test_fusion_and_mmr(tmp_path: Path) -> None:
    async with running(tmp_path) as rest:
        vecs = await _load(rest)
        a, b = vecs[30].tolist(), vecs[31].tolist()
        la = np.argsort(-_cos(vecs, vecs[30]))[:10].tolist()
        lb = np.argsort(-_cos(vecs, vecs[31]))[:10].tolist()
        prefetch = [{"query": a, "limit": 10}, {"query": b, "limit": 10}]
        ref = rrf([[(i, 0.0) for i in la], [(i, 0.0) for i in lb]])
        hits = (await rest.ok("POST", Q, {"prefetch": prefetch, "query": {"fusion": "rrf"}, "limit": 5}))[
            "points"
        ]
        assert [(h["id"], h["score"]) for h in hits] == [(p, pytest.approx(s)) for p, s in ref[:5]]
        ref_w = rrf([[(i, 0.0) for i in la], [(i, 0.0) for i in lb]], k=60, weights=[3.0, 1.0])
        body = {"prefetch": prefetch, "query": {"rrf": {"k": 60, "weights": [3.0, 1.0]}}, "limit": 5}
        assert await _ids(rest, body) == [p for p, _ in ref_w[:5]]
        code, out = await rest.call("POST", Q, {**body, "query": {"rrf": {"weights": [1.0]}}})
        assert code == 400 and "weights" in out["status"]["error"]
        hits = (await rest.ok("POST", Q, {"prefetch": prefetch, "query": {"fusion": "dbsf"}, "limit": 3}))[
            "points"
        ]
        assert hits[0]["score"] >= hits[1]["score"] >= hits[2]["score"]
        # MMR: with no diversity it is the nearest search; with diversity it spreads out
        plain = await _ids(rest, {"query": a, "limit": 5})
        assert (
            await _ids(
                rest, {"query": {"nearest": a, "mmr": {"diversity": 0.0, "candidates_limit": 40}}, "limit": 5}
            )
            == plain
        )
        diverse = (
            await rest.ok(
                "POST",
                Q,
                {"query": {"nearest": a, "mmr": {"diversity": 0.9, "candidates_limit": 40}}, "limit": 5},
            )
        )["points"]
        assert diverse[0]["id"] == plain[0] and [h["id"] for h in diverse] != plain
        assert diverse[1]["score"] == pytest.approx(float(_cos(vecs, vecs[30])[diverse[1]["id"]]), abs=1e-5)


async def test_order_by_sample_prefetch_filter(tmp_path: Path) -> None:
    async with running(tmp_path) as rest:
        vecs = await _load(rest)
        await rest.ok("PUT", "/collections/q/index?wait=true", {"field_name": "n", "field_schema": "integer"})
        hits = (
            await rest.ok("POST", Q, {"query": {"order_by": {"key": "n", "direction": "desc"}}, "limit": 3})
        )["points"]
        assert [(h["id"], h["order_value"]) for h in hits] == [(119, 119), (118, 118), (117, 117)]
        assert await _ids(rest, {"query": {"order_by": {"key": "n", "start_from": 50}}, "limit": 2}) == [
            50,
            51,
        ]
        assert await _ids(rest, {"query": {"order_by": "n"}, "limit": 2, "offset": 1}) == [1, 2]
        even = {"must": [{"key": "even", "match": {"value": True}}]}
        sample = await _ids(rest, {"query": {"sample": "random"}, "limit": 10, "filter": even})
        assert len(set(sample)) == 10 and all(i % 2 == 0 for i in sample)
        # the request filter also applies inside prefetches
        got = await _ids(
            rest,
            {
                "prefetch": {"query": vecs[1].tolist(), "limit": 20},
                "query": vecs[1].tolist(),
                "filter": even,
                "limit": 5,
            },
        )
        assert all(i % 2 == 0 for i in got) and len(got) == 5
        # order_by over prefetched points
        got = await _ids(
            rest,
            {"prefetch": {"query": vecs[1].tolist(), "limit": 10}, "query": {"order_by": "n"}, "limit": 10},
        )
        assert got == sorted(np.argsort(-_cos(vecs, vecs[1]))[:10].tolist())


async def test_groups_lookup_and_lookup_from(tmp_path: Path) -> None:
    async with running(tmp_path) as rest:
        vecs = await _load(rest)
        await rest.ok("PUT", "/collections/meta", {"vectors": {"size": DIM, "distance": "Cosine"}})
        await rest.ok(
            "PUT",
            "/collections/meta/points?wait=true",
            {
                "points": [
                    {"id": g, "vector": vecs[g].tolist(), "payload": {"name": f"group {g}"}} for g in range(5)
                ]
            },
        )
        q = vecs[4].tolist()
        res = await rest.ok(
            "POST",
            Q + "/groups",
            {
                "query": q,
                "group_by": "g",
                "group_size": 2,
                "limit": 3,
                "with_payload": ["n"],
                "with_lookup": "meta",
            },
        )
        ranked = np.argsort(-_cos(vecs, vecs[4])).tolist()
        order: list[int] = []
        for i in ranked:
            if i % 5 not in order:
                order.append(i % 5)
        assert [g["id"] for g in res["groups"]] == order[:3]
        for g in res["groups"]:
            assert [h["id"] for h in g["hits"]] == [i for i in ranked if i % 5 == g["id"]][:2]
            assert all(h["payload"] == {"n": h["id"]} for h in g["hits"])
            assert g["lookup"] == {"id": g["id"], "payload": {"name": f"group {g['id']}"}, "vector": None}
        legacy = await rest.ok(
            "POST",
            "/collections/q/points/search/groups",
            {
                "vector": q,
                "group_by": "g",
                "group_size": 1,
                "limit": 2,
                "with_lookup": {"collection": "meta", "with_payload": False},
            },
        )
        assert [g["id"] for g in legacy["groups"]] == order[:2] and legacy["groups"][0]["lookup"][
            "payload"
        ] is None
        # the lookup's vectors by either spelling Qdrant accepts; a missing lookup collection: 404
        for spelling in ("with_vectors", "with_vector"):
            got = await rest.ok(
                "POST",
                Q + "/groups",
                {
                    "query": q,
                    "group_by": "g",
                    "limit": 1,
                    "with_lookup": {"collection": "meta", spelling: True},
                },
            )
            (group,) = got["groups"]
            unit = vecs[group["id"]] / np.linalg.norm(vecs[group["id"]])  # (Cosine: stored normalised)
            assert group["lookup"]["vector"] == pytest.approx(unit.tolist(), abs=1e-6)
        status, body = await rest.call(
            "POST", Q + "/groups", {"query": q, "group_by": "g", "with_lookup": "nowhere"}
        )
        assert status == 404 and "Collection nowhere not found" in body["status"]["error"]
        # lookup_from: example ids resolved in another collection, and not excluded here
        got = await _ids(
            rest,
            {"query": {"recommend": {"positive": [2]}}, "lookup_from": {"collection": "meta"}, "limit": 3},
        )
        assert got == np.argsort(-_cos(vecs, vecs[2]))[:3].tolist() and got[0] == 2


async def test_legacy_endpoints(tmp_path: Path) -> None:
    async with running(tmp_path) as rest:
        vecs = await _load(rest)
        base = "/collections/q/points"
        ref = np.argsort(-_cos(vecs, vecs[5])).tolist()
        hits = await rest.ok(
            "POST", base + "/search", {"vector": vecs[5].tolist(), "limit": 3, "with_payload": True}
        )
        assert [h["id"] for h in hits] == ref[:3] and hits[0]["payload"]["n"] == 5
        top = await rest.ok(
            "POST", base + "/search", {"vector": vecs[5].tolist(), "top": 3}
        )  # limit's old name
        assert [h["id"] for h in top] == ref[:3]
        named = await rest.ok(
            "POST", base + "/search", {"vector": {"name": "", "vector": vecs[5].tolist()}, "limit": 2}
        )
        assert [h["id"] for h in named] == ref[:2]
        batch = await rest.ok(
            "POST",
            base + "/search/batch",
            {
                "searches": [
                    {"vector": vecs[5].tolist(), "limit": 1},
                    {"vector": vecs[6].tolist(), "limit": 1},
                ]
            },
        )
        assert [b[0]["id"] for b in batch] == [5, 6]
        rec = await rest.ok("POST", base + "/recommend", {"positive": [5], "limit": 3})
        assert [h["id"] for h in rec] == [i for i in ref if i != 5][:3]
        recb = await rest.ok("POST", base + "/recommend/batch", {"searches": [{"positive": [5], "limit": 1}]})
        assert recb[0][0]["id"] == ref[1]
        groups = await rest.ok(
            "POST",
            base + "/recommend/groups",
            {"positive": [5], "group_by": "g", "group_size": 1, "limit": 2},
        )
        assert len(groups["groups"]) == 2
        disc = await rest.ok(
            "POST", base + "/discover", {"target": 5, "context": [{"positive": 6, "negative": 7}], "limit": 3}
        )
        assert len(disc) == 3 and not {5, 6, 7} & {h["id"] for h in disc}
        ctx_only = await rest.ok(
            "POST", base + "/discover", {"context": [{"positive": 6, "negative": 7}], "limit": 2}
        )
        assert all(h["score"] <= 0 for h in ctx_only)
        discb = await rest.ok(
            "POST", base + "/discover/batch", {"searches": [{"target": 5, "context": [], "limit": 2}]}
        )
        assert [h["id"] for h in discb[0]] == [i for i in ref if i != 5][:2]


def test_rrf_and_dbsf_formulas() -> None:
    lists = [[("a", 9.0), ("b", 8.0)], [("b", 0.3), ("c", 0.2)]]
    assert rrf(lists) == [
        ("b", pytest.approx(1 / 3 + 1 / 2)),
        ("a", pytest.approx(1 / 2)),
        ("c", pytest.approx(1 / 3)),
    ]
    weighted = dict(rrf(lists, k=1, weights=[2.0, 0.0]))
    assert weighted == {"a": pytest.approx(1 / 0.5), "b": pytest.approx(1 / 1.0), "c": 0.0}
    fused = dict(dbsf([[("a", 1.0), ("b", 3.0)], [("a", 5.0)]]))
    sd = np.std([1.0, 3.0], ddof=1)
    lo = 2.0 - 3 * sd
    assert fused["b"] == pytest.approx((3.0 - lo) / (6 * sd))
    assert fused["a"] == pytest.approx((1.0 - lo) / (6 * sd) + 0.5)


def test_mmr_picks() -> None:
    relevance = np.array([0.9, 0.85, 0.5])
    pairwise = np.array([[1.0, 0.99, 0.0], [0.99, 1.0, 0.0], [0.0, 0.0, 1.0]])
    asked: list[int] = []

    def row(i: int) -> np.ndarray:
        asked.append(i)
        return pairwise[i]

    assert mmr(relevance, row, 0.0, 3) == [0, 1, 2]
    asked.clear()
    assert mmr(relevance, row, 0.5, 2) == [0, 2]  # 1 is a near-copy of 0
    assert asked == [0, 2]  # rows only for picked candidates: memory stays O(n)
    assert mmr(relevance, row, 0.5, 0) == []


async def test_relevance_feedback_with_the_naive_formula(tmp_path: Path) -> None:
    """Qdrant's checks in its order, the nearest query itself when no feedback pair forms, and
    ``a * sim(target) + sum(confidence ** b * c * (sim(p) - sim(n)))`` against brute force."""
    async with running(tmp_path) as rest:
        vecs = await _load(rest)
        unit = _unit(vecs)
        naive = {"a": 0.5, "b": 1.5, "c": 2.0}

        async def feedback(
            items: list[dict[str, Any]], strategy: Any = naive, **extra: Any
        ) -> tuple[int, Any]:
            body = {
                "relevance_feedback": {
                    "target": vecs[0].tolist(),
                    "feedback": items,
                    "strategy": {"naive": strategy},
                }
            }
            return await rest.call("POST", Q, {"query": body, **extra})

        status, out = await feedback([])
        assert status == 422 and "feedback elements must be non-empty" in out["status"]["error"]
        status, out = await feedback([{"example": 1, "score": 0.5}], {"a": 1, "b": -1.0, "c": 1})
        assert status == 422 and out["status"]["error"] == (
            "Validation error in JSON body: [internal.query.relevance_feedback.strategy.naive.b: value -1.0 "
            "invalid, must be 0.0 or larger]"
        )
        status, out = await feedback([{"example": 10_000, "score": 0.5}])
        assert status == 404 and out["status"]["error"] == "Not found: No point with id 10000 found"
        # one example forms no pair: with a = 1 the answer is the nearest query's, scores included
        status, alone = await feedback(
            [{"example": vecs[7].tolist(), "score": 0.9}], {"a": 1, "b": 3, "c": 9}, limit=4
        )
        nearest = await rest.ok("POST", Q, {"query": vecs[0].tolist(), "limit": 4})
        assert status == 200 and alone["result"] == nearest and len(nearest["points"]) == 4
        # three examples by id: every pair with different scores counts; the examples are excluded
        items = [{"example": 5, "score": 0.9}, {"example": 6, "score": 0.2}, {"example": 7, "score": 0.2}]
        status, out = await feedback(items, limit=5, prefetch={"query": vecs[0].tolist(), "limit": N})
        assert status == 200
        sims = unit @ unit[0]
        want = naive["a"] * sims
        for p, n in ((5, 6), (5, 7)):  # (6, 7): equal scores, no pair
            weight = (0.9 - 0.2) ** naive["b"] * naive["c"]
            want = want + weight * (unit @ unit[p] - unit @ unit[n])
        want[[5, 6, 7]] = -np.inf
        order = np.argsort(-want)[:5]
        got = out["result"]["points"]
        assert [p["id"] for p in got] == order.tolist()
        assert [p["score"] for p in got] == pytest.approx(want[order].tolist(), abs=1e-4)
        # without prefetch: candidates around the target and the better examples, same ranking here
        assert (
            await _ids(
                rest,
                {
                    "query": {
                        "relevance_feedback": {
                            "target": vecs[0].tolist(),
                            "feedback": items,
                            "strategy": {"naive": naive},
                        }
                    },
                    "limit": 5,
                },
            )
            == order.tolist()
        )
