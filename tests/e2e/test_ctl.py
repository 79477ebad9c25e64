"""``qcluster ctl`` against real subprocess peers: status, wait-ready, transfers, the shard
operations (the server's answer is what the user sees) and drain."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from qcluster.testing.peer_cluster import ClusterPeer, PeerCluster, rest, wait_for
from qcluster.testing.server import ServerProcess

SECRET = "ctl-e2e-secret"


def ctl(
    url: str, *args: str, api_key: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    key = ["--api-key", api_key] if api_key else []
    return subprocess.run(
        [sys.executable, "-m", "qcluster", "ctl", "--url", url, *key, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def ctl_json(url: str, *args: str) -> Any:
    done = ctl(url, *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PeerCluster]:
    c = PeerCluster(Path(tmp_path_factory.mktemp("ctl")), secret=SECRET)
    try:
        peers = c.start(3)
        for name, shards, rf in (("ctl_docs", 3, 2), ("ctl_solo", 1, 1)):
            body = {
                "vectors": {"size": 4, "distance": "Dot"},
                "shard_number": shards,
                "replication_factor": rf,
            }
            status, answer = rest(peers[0].url, "PUT", f"/collections/{name}", body)
            assert status == 200, answer
            points = [{"id": i, "vector": [1.0, i / 100, 0.5, 0.25], "payload": {"n": i}} for i in range(300)]
            status, answer = rest(
                peers[1].url, "PUT", f"/collections/{name}/points?wait=true", {"points": points}
            )
            assert status == 200, answer
        yield c
    finally:
        c.stop()


def _placement(url: str, name: str) -> dict[int, set[int]]:
    status, body = rest(url, "GET", f"/collections/{name}/cluster")
    assert status == 200, body
    res = body["result"]
    out: dict[int, set[int]] = {}
    for s in res["local_shards"]:
        out.setdefault(s["shard_id"], set()).add(res["peer_id"])
    for s in res["remote_shards"]:
        out.setdefault(s["shard_id"], set()).add(s["peer_id"])
    return out


def test_status_shows_the_cluster_as_its_api_does(cluster: PeerCluster) -> None:
    url = cluster.peers[1].url
    view = ctl_json(url, "status")
    _, raw = rest(url, "GET", "/cluster")
    assert view["cluster"]["peers"] == raw["result"]["peers"]
    assert view["cluster"]["raft_info"]["leader"] == raw["result"]["raft_info"]["leader"]
    assert set(view["collections"]) >= {"ctl_docs", "ctl_solo"}
    docs = view["collections"]["ctl_docs"]
    assert docs["shard_count"] == 3
    held = _placement(url, "ctl_docs")
    assert len(docs["local_shards"]) + len(docs["remote_shards"]) == sum(len(p) for p in held.values()) == 6
    tree = ctl(url, "status")
    assert tree.returncode == 0, tree.stderr
    leader = str(raw["result"]["raft_info"]["leader"])
    assert f"leader {leader}" in tree.stdout
    for peer_id, info in raw["result"]["peers"].items():
        assert peer_id in tree.stdout and info["uri"] in tree.stdout
    assert "ctl_docs" in tree.stdout and "shard 2" in tree.stdout and "Active" in tree.stdout


def test_metrics_agree_with_status(cluster: PeerCluster) -> None:
    """/metrics (Qdrant's names) tells the same replica and Raft story as ctl status."""
    url = cluster.peers[1].url
    view = ctl_json(url, "status")
    status, text = rest(url, "GET", "/metrics")
    assert status == 200
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    me = str(view["cluster"]["peer_id"])
    assert samples[("cluster_peers_total", ())] == len(view["cluster"]["peers"]) == 3
    assert samples[("cluster_term", ())] >= 1 and samples[("cluster_commit", (("peer_id", me),))] >= 1
    assert samples[("cluster_working_state", (("state", "working"),))] == 1
    for name, info in view["collections"].items():
        shards = info["local_shards"] + info["remote_shards"]
        active = sum(s["state"] == "Active" for s in shards)
        assert samples[("collection_replicas", (("id", name), ("state", "Active")))] == active
    # ctl_solo has one replica per shard, ctl_docs two
    assert samples[("collection_active_replicas_min", ())] == 1
    assert samples[("collection_active_replicas_max", ())] == 2
    assert samples[("collection_dead_replicas", ())] == 0
    assert samples[("collection_shard_transfer_incoming", (("id", "ctl_docs"),))] == 0


def test_wait_ready(cluster: PeerCluster, tmp_path: Path) -> None:
    url = cluster.peers[2].url
    done = ctl(url, "wait-ready", "--timeout", "60")
    assert done.returncode == 0, done.stderr
    assert "every replica is Active" in done.stdout
    assert ctl_json(url, "wait-ready", "--timeout", "60")["ready"] is True
    # a peer that is not there: non-zero, with the reason, once the timeout passes
    gone = ServerProcess(tmp_path)  # a free port nobody listens on
    done = ctl(gone.url, "wait-ready", "--timeout", "1", "--interval", "0.2")
    assert done.returncode == 1
    assert "not ready" in done.stderr and "cannot reach the server" in done.stderr


def test_transfers_lists_what_the_api_lists(cluster: PeerCluster) -> None:
    url = cluster.peers[0].url
    listed = {
        (name, t["shard_id"], t["from"], t["to"])
        for name in ("ctl_docs", "ctl_solo")
        for t in rest(url, "GET", f"/collections/{name}/cluster")[1]["result"]["shard_transfers"]
    }
    shown = ctl_json(url, "transfers")
    assert {(t["collection"], t["shard_id"], t["from"], t["to"]) for t in shown} == listed
    if not listed:
        done = ctl(url, "transfers")
        assert done.returncode == 0 and "no shard transfers" in done.stdout


def test_shard_operations_show_the_servers_answer(cluster: PeerCluster) -> None:
    """Aborting a transfer that does not exist and dropping a replica a peer does not hold are
    refused by any server: ctl exits 1 and prints the server's own error."""
    url = cluster.peers[0].url
    a, b = (p.peer_id() for p in cluster.peers[:2])
    held = _placement(url, "ctl_solo")
    (holder,) = held[0]
    other = next(p.peer_id() for p in cluster.peers if p.peer_id() != holder)
    cases = [
        (
            ["abort", "ctl_docs", "0", str(a), str(b)],
            {"abort_transfer": {"shard_id": 0, "from_peer_id": a, "to_peer_id": b}},
        ),
        (["drop", "ctl_solo", "0", str(other)], {"drop_replica": {"shard_id": 0, "peer_id": other}}),
    ]
    for argv, body in cases:
        status, answer = rest(url, "POST", f"/collections/{argv[1]}/cluster", body)
        assert status >= 400, answer
        done = ctl(url, *argv)
        assert done.returncode == 1
        assert f"HTTP {status}" in done.stderr and answer["status"]["error"] in " ".join(done.stderr.split())
    assert _placement(url, "ctl_solo") == held


def _count(url: str, name: str) -> int:
    status, body = rest(url, "POST", f"/collections/{name}/points/count", {"exact": True})
    assert status == 200, body
    return int(body["result"]["count"])


def test_move_then_follow_transfers_and_wait_ready(cluster: PeerCluster) -> None:
    """A move the server accepts: ctl reports it, ``transfers`` follows it until none is left,
    ``wait-ready`` sees every replica Active again, and the shard now lives on the target. A server
    that cannot move shards refuses in its own words instead."""
    url = cluster.peers[0].url
    held = _placement(url, "ctl_solo")
    (source,) = held[0]
    target = next(p.peer_id() for p in cluster.peers if p.peer_id() != source)
    done = ctl(url, "move", "ctl_solo", "0", str(source), str(target))
    if done.returncode != 0:
        assert done.returncode == 1 and "HTTP 4" in done.stderr, done.stderr
        return
    assert "move_shard accepted" in done.stdout
    follow = ctl(url, "transfers", "--interval", "0.2", "--follow-timeout", "120")
    assert follow.returncode == 0, follow.stderr
    assert ctl_json(url, "transfers") == []
    ready = ctl(url, "wait-ready", "--timeout", "120")
    assert ready.returncode == 0, ready.stderr
    wait_for(lambda: _placement(url, "ctl_solo") == {0: {target}}, 60, "the shard on its new peer")
    assert _count(url, "ctl_solo") == 300


def _peer_ids(url: str) -> set[int]:
    return {int(p) for p in rest(url, "GET", "/cluster")[1]["result"]["peers"]}


def test_drain(cluster: PeerCluster) -> None:
    """A peer without replicas is removed at once. A peer holding replicas is emptied and removed
    with every collection at its replication factor where the server moves shards; a server that
    cannot move them refuses the first move, and the peer stays, holding all it held."""
    url = cluster.peers[0].url
    spare: ClusterPeer = cluster.new_peer()
    spare.start()
    spare_id = spare.peer_id()
    wait_for(lambda: spare_id in _peer_ids(url), 30, "the new peer listed")
    done = ctl(url, "drain", str(spare_id), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"peer": spare_id, "removed": True, "moved": []}
    wait_for(lambda: spare_id not in _peer_ids(url), 30, "the drained peer removed")
    spare.stop()

    before = {name: _placement(url, name) for name in ("ctl_docs", "ctl_solo")}
    victim = cluster.peers[2].peer_id()
    done = ctl(url, "drain", str(victim), "--interval", "0.2", "--move-timeout", "120")
    after = {name: _placement(url, name) for name in before}
    if done.returncode == 0:
        assert victim not in _peer_ids(url)
        for name, shards in after.items():
            assert _count(url, name) == 300
            assert all(victim not in peers for peers in shards.values())
            assert {s: len(p) for s, p in shards.items()} == {s: len(p) for s, p in before[name].items()}
    else:
        assert done.returncode == 1
        text = " ".join(done.stderr.split())
        assert "the server refused to move" in text and f"peer {victim} was not removed" in text
        assert "HTTP 4" in text or "HTTP 5" in text
        assert victim in _peer_ids(url) and after == before


def test_api_key_and_single_peer(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, env={"QDRANT__SERVICE__API_KEY": "ctl-key"}).start()
    try:
        refused = ctl(server.url, "status")
        assert refused.returncode == 1 and "HTTP 401" in refused.stderr
        status, _ = rest(
            server.url,
            "PUT",
            "/collections/one",
            {"vectors": {"size": 2, "distance": "Dot"}},
            headers={"api-key": "ctl-key"},
        )
        assert status == 200
        done = ctl(server.url, "status", api_key="ctl-key")
        assert done.returncode == 0, done.stderr
        assert "cluster mode disabled" in done.stdout and "one" in done.stdout
        ready = ctl(server.url, "wait-ready", "--timeout", "30", "--json", api_key="ctl-key")
        assert ready.returncode == 0 and json.loads(ready.stdout)["ready"] is True
    finally:
        server.stop()
