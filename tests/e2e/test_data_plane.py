"""The data plane across real subprocess peers: placement, replication, failures, consistency,
custom sharding. Each replica is also read on its own over the p2p port (real gRPC), so a test can
prove replicas hold the same points, not only that the merged answer looks right."""

from __future__ import annotations

import os
import random
import signal
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from qcluster.testing.peer_cluster import ClusterPeer, PeerCluster, rest, wait_for
from qcluster.testing.replicas import replica_contents

DIM = 8


def _points(ids: range | list[int], tag: str = "v1", seed: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [
        {"id": i, "vector": [rng.random() for _ in range(DIM)], "payload": {"i": i, "tag": tag}} for i in ids
    ]


def _create(peer: ClusterPeer, name: str, **params: Any) -> None:
    body = {"vectors": {"size": DIM, "distance": "Cosine"}, **params}
    status, answer = rest(peer.url, "PUT", f"/collections/{name}?timeout=30", body)
    assert status == 200, answer


def _upsert(peer: ClusterPeer, name: str, points: list[dict[str, Any]], query: str = "") -> tuple[int, Any]:
    return rest(peer.url, "PUT", f"/collections/{name}/points?wait=true{query}", {"points": points})


def _count(peer: ClusterPeer, name: str, query: str = "") -> int:
    status, body = rest(peer.url, "POST", f"/collections/{name}/points/count{query}", {"exact": True})
    assert status == 200, body
    return int(body["result"]["count"])


def _layout(peer: ClusterPeer, name: str) -> dict[str, Any]:
    status, body = rest(peer.url, "GET", f"/collections/{name}/cluster")
    assert status == 200, body
    return dict(body["result"])


def _replicas(peer: ClusterPeer, name: str) -> dict[int, dict[int, str]]:
    """shard id -> {peer id: state} as ``peer`` sees the agreed placement."""
    info = _layout(peer, name)
    out: dict[int, dict[int, str]] = {}
    for s in info["local_shards"]:
        out.setdefault(s["shard_id"], {})[info["peer_id"]] = s["state"]
    for s in info["remote_shards"]:
        out.setdefault(s["shard_id"], {})[s["peer_id"]] = s["state"]
    return out


def _assert_replicas_identical(cluster: PeerCluster, name: str, expect_ids: set[int] | None = None) -> None:
    """Every Active replica of every shard holds the same ids and contents; together they hold
    exactly ``expect_ids``."""
    by_id = {p.peer_id(): p for p in cluster.running()}
    placement = _replicas(next(iter(by_id.values())), name)
    seen: set[int] = set()
    for sid, replicas in placement.items():
        contents = [
            replica_contents(by_id[peer].p2p_uri, name, sid)
            for peer, state in sorted(replicas.items())
            if state == "Active" and peer in by_id
        ]
        assert contents, f"shard {sid} has no Active replica on a running peer: {replicas}"
        for other in contents[1:]:
            assert other == contents[0], f"replicas of shard {sid} differ"
        assert not (seen & set(contents[0])), f"shard {sid} shares points with another shard"
        seen |= {int(i) for i in contents[0]}
    if expect_ids is not None:
        assert seen == expect_ids


def test_points_land_only_on_their_shards_replicas(tmp_path: Path) -> None:
    cluster = PeerCluster(tmp_path)
    try:
        peers = cluster.start(3)
        _create(peers[1], "c", shard_number=6, replication_factor=2)
        # placement balanced: 12 replicas, 4 per peer, two per shard on distinct peers
        placement = _replicas(peers[0], "c")
        assert sorted(placement) == list(range(6))
        assert all(len(r) == 2 and set(r.values()) == {"Active"} for r in placement.values())
        load = Counter(p for r in placement.values() for p in r)
        assert sorted(load.values()) == [4, 4, 4]
        # 10k points written through all three peers, in batches
        ids = list(range(10_000))
        for n, start in enumerate(range(0, len(ids), 500)):
            status, body = _upsert(peers[n % 3], "c", _points(ids[start : start + 500], seed=start))
            assert status == 200, body
        for p in peers:
            assert _count(p, "c") == 10_000
            info = _layout(p, "c")
            held = {s["shard_id"] for s in info["local_shards"]}
            assert held == {sid for sid, r in placement.items() if info["peer_id"] in r}
        per_peer = [sum(s["points_count"] for s in _layout(p, "c")["local_shards"]) for p in peers]
        assert sum(per_peer) == 20_000 and all(n < 10_000 for n in per_peer)
        _assert_replicas_identical(cluster, "c", set(ids))
        # every point API through every peer, including the merged reads
        status, body = rest(peers[2].url, "POST", "/collections/c/points", {"ids": [1, 5000, 9999]})
        assert status == 200 and [r["id"] for r in body["result"]] == [1, 5000, 9999]
        status, body = rest(peers[0].url, "POST", "/collections/c/points/scroll", {"limit": 2500})
        assert status == 200 and [r["id"] for r in body["result"]["points"]] == list(range(2500))
        assert body["result"]["next_page_offset"] == 2500
        query = {"query": _points([1], seed=0)[0]["vector"], "limit": 5, "with_payload": True}
        answers = [rest(p.url, "POST", "/collections/c/points/query", query)[1]["result"] for p in peers]
        assert all(len(a["points"]) == 5 for a in answers)
        assert len({tuple(h["id"] for h in a["points"]) for a in answers}) == 1
        assert all(h["payload"]["tag"] == "v1" for h in answers[0]["points"])
        status, body = rest(
            peers[1].url, "POST", "/collections/c/points/delete?wait=true", {"points": ids[:100]}
        )
        assert status == 200, body
        status, body = rest(
            peers[2].url,
            "POST",
            "/collections/c/points/payload?wait=true",
            {"payload": {"x": 1}, "points": [500]},
        )
        assert status == 200, body
        assert all(_count(p, "c") == 9_900 for p in peers)
        _assert_replicas_identical(cluster, "c", set(ids[100:]))
    finally:
        cluster.stop()


def test_a_peer_killed_mid_load_is_marked_dead_and_writes_go_on(tmp_path: Path) -> None:
    cluster = PeerCluster(tmp_path)
    try:
        peers = cluster.start(3)
        _create(peers[0], "c", shard_number=3, replication_factor=2, write_consistency_factor=1)
        _create(peers[0], "r3", shard_number=2, replication_factor=3)
        assert _upsert(peers[0], "r3", _points(range(300)))[0] == 200
        victim = peers[2]
        victim_id = victim.peer_id()
        errors: list[Any] = []
        written: list[int] = []

        def load() -> None:
            for start in range(0, 3000, 100):
                status, body = _upsert(
                    peers[start // 100 % 2], "c", _points(range(start, start + 100), seed=start)
                )
                if status != 200:
                    errors.append(body)
                else:
                    written.extend(range(start, start + 100))

        writer = threading.Thread(target=load)
        writer.start()
        wait_for(lambda: len(written) >= 500, 60, "the first writes")
        victim.kill9()
        writer.join(120)
        assert not errors, errors[:3]
        assert len(written) == 3000
        survivors = peers[:2]
        for p in survivors:
            states = _replicas(p, "c")
            assert all(r.get(victim_id) in (None, "Dead") for r in states.values()), states
            assert _count(p, "c") == 3000
        query = {"query": _points([7], seed=0)[0]["vector"], "limit": 3}
        for p in survivors:
            status, body = rest(p.url, "POST", "/collections/c/points/query", query)
            assert status == 200 and len(body["result"]["points"]) == 3
        _assert_replicas_identical(cluster, "c", set(range(3000)))
        # rf 3 keeps serving reads with two of three peers down
        peers[1].kill9()
        assert _count(peers[0], "r3") == 300
        status, body = rest(peers[0].url, "POST", "/collections/r3/points", {"ids": [0, 299]})
        assert status == 200 and len(body["result"]) == 2
    finally:
        cluster.stop()


def test_a_replica_that_stops_answering_never_leaves_a_silent_partial_write(tmp_path: Path) -> None:
    cluster = PeerCluster(tmp_path)
    cluster.env["QDRANT__CLUSTER__GRPC_TIMEOUT_MS"] = "1500"
    try:
        peers = cluster.start(3)
        _create(peers[0], "c", shard_number=1, replication_factor=3, write_consistency_factor=1)
        assert _upsert(peers[0], "c", _points(range(10)))[0] == 200
        frozen = peers[2]
        frozen_id = frozen.peer_id()
        assert frozen.proc is not None
        os.kill(frozen.proc.pid, signal.SIGSTOP)
        try:
            # one replica times out: the write is acknowledged only after it is marked Dead
            status, body = _upsert(peers[0], "c", _points(range(10, 20), tag="v2"))
            assert status == 200, body
            assert _replicas(peers[0], "c")[0][frozen_id] == "Dead"
            assert _replicas(peers[1], "c")[0][frozen_id] == "Dead"
            # with a second peer frozen there is no quorum to mark it: a clear error, not a silent success
            os.kill(peers[1].proc.pid, signal.SIGSTOP)  # type: ignore[union-attr]
            try:
                status, body = _upsert(peers[0], "c", _points(range(20, 30), tag="v3"))
                assert status >= 500, body
                assert "could not be marked Dead" in body["status"]["error"]
            finally:
                os.kill(peers[1].proc.pid, signal.SIGCONT)  # type: ignore[union-attr]
            # once consensus is back, the background retry marks the replica that missed the write
            # Dead, and its peer recovers it from the one that has it (automatic recovery)
            laggard = peers[1]
            wait_for(
                lambda: (
                    _replicas(peers[0], "c")[0].get(laggard.peer_id()) == "Active"
                    and replica_contents(laggard.p2p_uri, "c", 0)
                    == replica_contents(peers[0].p2p_uri, "c", 0)
                ),
                120,
                "the laggard healed from the replica that took the write",
            )
        finally:
            os.kill(frozen.proc.pid, signal.SIGCONT)

        # every replica converges to the same points, every acknowledged write among them
        # (asked of peers[0]: the frozen peer's own view is stale until it has caught up)
        def converged() -> bool:
            if set(_replicas(peers[0], "c")[0].values()) != {"Active"}:
                return False
            contents = [replica_contents(p.p2p_uri, "c", 0) for p in peers]
            return contents[0] == contents[1] == contents[2]

        wait_for(converged, 120, "every replica Active and identical")
        assert set(replica_contents(frozen.p2p_uri, "c", 0)) >= set(range(20))
    finally:
        cluster.stop()


def test_a_batch_spanning_shards_waits_out_a_restarting_shard_instead_of_half_applying(
    tmp_path: Path,
) -> None:
    """Chaos quick seed 1902: a batch over several shards was applied on those whose replicas
    answered and failed on one whose only replica was restarting. Each shard's part now persists
    (re-sent with its clock tag), so the batch lands whole once the peer is back."""
    cluster = PeerCluster(tmp_path)
    cluster.env["QDRANT__CLUSTER__WRITE_PERSIST_SEC"] = "90"  # longer than any restart here
    try:
        peers = cluster.start(3)
        _create(peers[0], "c", shard_number=3, replication_factor=1)
        placement = _replicas(peers[0], "c")
        victim = peers[2]
        victim_id = victim.peer_id()
        (victim_shard,) = [sid for sid, reps in placement.items() if victim_id in reps]
        here = [sid for sid, reps in placement.items() if peers[0].peer_id() in reps]
        victim.kill9()
        outcome: list[tuple[int, Any]] = []
        writer = threading.Thread(
            target=lambda: outcome.append(_upsert(peers[0], "c", _points(range(60)), "&timeout=60"))
        )
        writer.start()
        # the parts of the shards whose replicas answer are applied: the write is in flight
        wait_for(
            lambda: any(replica_contents(peers[0].p2p_uri, "c", sid) for sid in here),
            30,
            "the batch applied on a shard of a live peer",
        )
        assert not outcome, outcome  # still waiting on the killed peer's shard
        victim.args = []  # a restart resumes from storage
        victim.start()
        writer.join(60)
        assert outcome and outcome[0][0] == 200, outcome
        assert replica_contents(victim.p2p_uri, "c", victim_shard)  # its part landed too
        assert _count(peers[1], "c") == 60
    finally:
        cluster.stop()


def test_strong_ordering_keeps_replicas_identical_under_concurrent_updates(tmp_path: Path) -> None:
    cluster = PeerCluster(tmp_path)
    try:
        peers = cluster.start(3)
        _create(peers[0], "c", shard_number=2, replication_factor=3)
        ids = list(range(20))
        failures: list[Any] = []

        def writer(n: int) -> None:
            for round_ in range(15):
                status, body = _upsert(
                    peers[n],
                    "c",
                    _points(ids, tag=f"w{n}-{round_}", seed=n * 100 + round_),
                    "&ordering=strong",
                )
                if status != 200:
                    failures.append(body)

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not failures, failures[:3]
        _assert_replicas_identical(cluster, "c", set(ids))
        # consistency=all reads the same points through every peer
        views = []
        for p in peers:
            status, body = rest(
                p.url, "POST", "/collections/c/points?consistency=all", {"ids": ids, "with_vector": True}
            )
            assert status == 200, body
            views.append(body["result"])
        assert views[0] == views[1] == views[2]
        assert len(views[0]) == len(ids)
        status, body = _upsert(peers[0], "c", _points(ids), "&ordering=sideways")
        assert status == 400 and "ordering" in body["status"]["error"]
    finally:
        cluster.stop()


def _shard_keys(peer: ClusterPeer, name: str) -> set[object]:
    status, body = rest(peer.url, "GET", f"/collections/{name}/shards")
    assert status == 200, body
    return {k["key"] for k in body["result"]["shard_keys"]}


def test_custom_sharding_keeps_tenants_on_their_own_shards(tmp_path: Path) -> None:
    cluster = PeerCluster(tmp_path)
    try:
        peers = cluster.start(3)
        _create(peers[0], "t", sharding_method="custom", shard_number=2, replication_factor=2)
        for key in ("acme", 7):
            status, body = rest(peers[1].url, "PUT", "/collections/t/shards?timeout=30", {"shard_key": key})
            assert status == 200, body
        # the keys are agreed; each peer lists them once it applied the change
        wait_for(lambda: _shard_keys(peers[2], "t") == {"acme", 7}, 30, "the keys listed on another peer")
        status, body = rest(
            peers[0].url, "PUT", "/collections/t/points?wait=true", {"points": _points(range(50))}
        )
        assert status == 400 and "shard_key" in body["status"]["error"]
        body_a = {"points": _points(range(50)), "shard_key": "acme"}
        assert rest(peers[0].url, "PUT", "/collections/t/points?wait=true", body_a)[0] == 200
        body_b = {"points": _points(range(100, 130)), "shard_key": 7}
        assert rest(peers[1].url, "PUT", "/collections/t/points?wait=true", body_b)[0] == 200
        for p in peers:
            assert _count(p, "t") == 80
            status, body = rest(p.url, "POST", "/collections/t/points/count", {"shard_key": "acme"})
            assert status == 200 and body["result"]["count"] == 50
            status, body = rest(p.url, "POST", "/collections/t/points/count", {"shard_key": 7})
            assert body["result"]["count"] == 30
        # a delete with a selector touches only that key's shards
        status, body = rest(
            peers[2].url,
            "POST",
            "/collections/t/points/delete?wait=true",
            {"filter": {"must": [{"key": "tag", "match": {"value": "v1"}}]}, "shard_key": 7},
        )
        assert status == 200, body
        assert _count(peers[0], "t") == 50
        layout = _layout(peers[0], "t")
        keys = {s["shard_id"]: s["shard_key"] for s in layout["local_shards"] + layout["remote_shards"]}
        assert dict(Counter(keys.values())) == {"acme": 2, 7: 2}
        status, body = rest(peers[1].url, "POST", "/collections/t/shards/delete", {"shard_key": "acme"})
        assert status == 200, body
        wait_for(lambda: _count(peers[2], "t") == 0, 30, "the key's shards gone")
        status, body = rest(peers[1].url, "POST", "/collections/t/points/count", {"shard_key": "acme"})
        assert status == 404, body
    finally:
        cluster.stop()
