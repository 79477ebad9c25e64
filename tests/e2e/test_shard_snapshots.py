"""Shard snapshots on one peer and in a cluster: create / list / download / stream / delete /
upload / recover, checksums, a shard this peer does not hold (a 404, never an empty "ok"), and
recovery with priority snapshot / replica / no_sync."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path
from typing import Any

import requests

from qcluster.testing.peer_cluster import PeerCluster, rest, wait_for
from qcluster.testing.replicas import replica_contents
from qcluster.testing.server import ServerProcess

from .test_data_plane import _points, _replicas, _upsert


def _count(url: str, name: str) -> int:
    status, body = rest(url, "POST", f"/collections/{name}/points/count", {"exact": True})
    assert status == 200, body
    return int(body["result"]["count"])


def test_shard_snapshots_on_one_peer(tmp_path: Path) -> None:
    srv = ServerProcess(tmp_path / "peer").start()
    try:
        url = srv.url
        body = {"vectors": {"size": 8, "distance": "Dot"}, "shard_number": 2}
        assert rest(url, "PUT", "/collections/s", body)[0] == 200
        assert rest(url, "PUT", "/collections/s/points?wait=true", {"points": _points(range(100))})[0] == 200
        base = f"{url}/collections/s/shards/0/snapshots"
        status, made = rest(url, "POST", "/collections/s/shards/0/snapshots")
        assert status == 200, made
        snap = made["result"]
        assert snap["name"].endswith(".snapshot") and len(snap["checksum"]) == 64
        status, listed = rest(url, "GET", "/collections/s/shards/0/snapshots")
        assert [d["name"] for d in listed["result"]] == [snap["name"]]
        raw = requests.get(f"{base}/{snap['name']}", timeout=30).content
        assert hashlib.sha256(raw).hexdigest() == snap["checksum"]
        streamed = requests.get(f"{url}/collections/s/shards/0/snapshot", timeout=30)
        assert streamed.status_code == 200
        with tarfile.open(fileobj=io.BytesIO(streamed.content)) as tar:
            assert "manifest.json" in tar.getnames()
        shard0 = _count_in_shard(url, 0)
        # change the data, then recover shard 0 from the snapshot: its points come back as they were
        assert (
            rest(url, "POST", "/collections/s/points/delete?wait=true", {"points": list(range(100))})[0]
            == 200
        )
        assert _count(url, "s") == 0
        status, answer = rest(
            url,
            "PUT",
            "/collections/s/shards/0/snapshots/recover",
            {"location": f"{base}/{snap['name']}", "checksum": "0" * 64},
        )
        assert status == 400 and "checksum" in answer["status"]["error"]
        assert _count(url, "s") == 0  # nothing changed
        recovered = requests.post(
            f"{base}/upload?priority=no_sync&checksum={snap['checksum']}",
            files={"snapshot": ("x", raw)},
            timeout=60,
        )
        assert recovered.status_code == 200, recovered.text
        assert _count(url, "s") == shard0 > 0
        junk = requests.post(f"{base}/upload", files={"snapshot": ("x", b"junk")}, timeout=30)
        assert junk.status_code == 400 and "snapshot" in junk.json()["status"]["error"]
        assert _count(url, "s") == shard0
        bad = requests.post(f"{base}/upload?priority=sometimes", files={"snapshot": ("x", raw)}, timeout=30)
        assert bad.status_code == 400 and "priority" in bad.json()["status"]["error"]
        assert rest(url, "GET", "/collections/s/shards/7/snapshots")[0] == 404
        assert rest(url, "DELETE", f"/collections/s/shards/0/snapshots/{snap['name']}")[0] == 200
        assert rest(url, "GET", "/collections/s/shards/0/snapshots")[1]["result"] == []
    finally:
        srv.stop()


def _count_in_shard(url: str, shard: int) -> int:
    status, body = rest(url, "GET", "/collections/s/cluster")
    assert status == 200, body
    return next(s["points_count"] for s in body["result"]["local_shards"] if s["shard_id"] == shard)


def test_shard_snapshot_recovery_in_a_cluster(tmp_path: Path) -> None:
    cluster = PeerCluster(tmp_path)
    try:
        peers = cluster.start(3)
        body: dict[str, Any] = {
            "vectors": {"size": 8, "distance": "Dot"},
            "shard_number": 1,
            "replication_factor": 2,
        }
        assert rest(peers[0].url, "PUT", "/collections/c?timeout=30", body)[0] == 200
        assert _upsert(peers[0], "c", _points(range(50)))[0] == 200
        replicas = _replicas(peers[0], "c")[0]
        by_id = {p.peer_id(): p for p in peers}
        holder, other = (by_id[p] for p in sorted(replicas))
        outsider = next(p for p in peers if p.peer_id() not in replicas)
        status, answer = rest(outsider.url, "POST", "/collections/c/shards/0/snapshots")
        assert status == 404 and "no replica on this peer" in answer["status"]["error"], answer
        status, made = rest(holder.url, "POST", "/collections/c/shards/0/snapshots")
        assert status == 200, made
        location = f"{holder.url}/collections/c/shards/0/snapshots/{made['result']['name']}"
        # the data moves on after the snapshot
        assert _upsert(peers[0], "c", _points(range(50, 80)))[0] == 200

        # priority "replica": the restored replica syncs back from the others (the newer data wins)
        status, answer = rest(
            holder.url,
            "PUT",
            "/collections/c/shards/0/snapshots/recover",
            {"location": location, "priority": "replica"},
        )
        assert status == 200, answer
        wait_for(lambda: set(_replicas(peers[0], "c")[0].values()) == {"Active"}, 120, "replica resynced")
        wait_for(
            lambda: set(replica_contents(holder.p2p_uri, "c", 0)) == set(range(80)), 120, "newer data back"
        )

        # priority "snapshot": the snapshot wins, the other replica syncs from it
        status, answer = rest(
            holder.url,
            "PUT",
            "/collections/c/shards/0/snapshots/recover",
            {"location": location, "priority": "snapshot"},
        )
        assert status == 200, answer
        wait_for(lambda: set(_replicas(peers[0], "c")[0].values()) == {"Active"}, 120, "others resynced")
        wait_for(
            lambda: set(replica_contents(other.p2p_uri, "c", 0)) == set(range(50)),
            120,
            "snapshot data everywhere",
        )
        assert replica_contents(holder.p2p_uri, "c", 0) == replica_contents(other.p2p_uri, "c", 0)
        assert all(_count(p.url, "c") == 50 for p in peers)
    finally:
        cluster.stop()


def test_collection_snapshot_recovery_in_a_cluster(tmp_path: Path) -> None:
    """A collection snapshot recovered on one peer of a cluster reaches every replica of the
    shards that peer holds (priority snapshot), yields to the cluster's newer data (priority
    replica), and creates a collection the cluster lacks (through consensus, on every peer)."""
    cluster = PeerCluster(tmp_path)
    try:
        peers = cluster.start(3)
        body = {"vectors": {"size": 8, "distance": "Dot"}, "shard_number": 1, "replication_factor": 3}
        assert rest(peers[0].url, "PUT", "/collections/c?timeout=30", body)[0] == 200
        assert _upsert(peers[0], "c", _points(range(50)))[0] == 200
        status, made = rest(peers[0].url, "POST", "/collections/c/snapshots")
        assert status == 200, made
        location = f"{peers[0].url}/collections/c/snapshots/{made['result']['name']}"
        assert _upsert(peers[1], "c", _points(range(50, 80)))[0] == 200

        def settled(n: int, name: str = "c") -> bool:
            states = {st for shard in _replicas(peers[0], name).values() for st in shard.values()}
            return states == {"Active"} and all(_count(p.url, name) == n for p in peers)

        # priority "replica" (the default): the cluster's newer data wins, the peer resyncs
        status, answer = rest(peers[2].url, "PUT", "/collections/c/snapshots/recover", {"location": location})
        assert status == 200, answer
        wait_for(lambda: settled(80), 120, "the cluster's data kept everywhere")
        # priority "snapshot": the archive wins on every replica
        body_s = {"location": location, "priority": "snapshot"}
        status, answer = rest(peers[2].url, "PUT", "/collections/c/snapshots/recover", body_s)
        assert status == 200, answer
        wait_for(lambda: settled(50), 120, "the snapshot's data everywhere")
        p0 = replica_contents(peers[0].p2p_uri, "c", 0)
        assert p0 == replica_contents(peers[1].p2p_uri, "c", 0) == replica_contents(peers[2].p2p_uri, "c", 0)
        # into a collection the cluster does not have: created through consensus, the archive wins
        status, answer = rest(
            peers[1].url, "PUT", "/collections/copy/snapshots/recover", {"location": location}
        )
        assert status == 200, answer
        wait_for(lambda: settled(50, "copy"), 120, "the new collection on every peer")
        # a snapshot whose vectors differ from the collection's: 400, nothing changes
        other = {"vectors": {"size": 4, "distance": "Dot"}, "shard_number": 1, "replication_factor": 3}
        assert rest(peers[0].url, "PUT", "/collections/small?timeout=30", other)[0] == 200
        status, answer = rest(
            peers[0].url, "PUT", "/collections/small/snapshots/recover", {"location": location}
        )
        assert status == 400 and "vectors" in answer["status"]["error"], answer
    finally:
        cluster.stop()
