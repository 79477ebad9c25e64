"""Real subprocess peers form a Raft cluster over their p2p ports and report it on GET /cluster."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from qcluster.testing.peer_cluster import ClusterPeer, PeerCluster, rest, wait_for

from .http import call
from .openapi_check import validate

SECRET = "e2e-cluster-secret"


def _everywhere(peers: list[ClusterPeer], cond: object, what: str) -> None:
    wait_for(lambda: all(cond(p) for p in peers), 30, what)  # type: ignore[operator]


def test_three_peers_form_a_cluster(tmp_path: Path) -> None:
    cluster = PeerCluster(tmp_path, secret=SECRET)
    try:
        peers = list(cluster.start(3))
        views = [call(p.url, "GET", "/cluster")[1] for p in peers]
        for v in views:
            assert v["result"]["status"] == "enabled"
            validate("/cluster", "get", v)
        leaders = {v["result"]["raft_info"]["leader"] for v in views}
        assert len(leaders) == 1, leaders
        ids = {v["result"]["peer_id"] for v in views}
        assert len(ids) == 3 and all(set(v["result"]["peers"]) == {str(i) for i in ids} for v in views)
        # kill -9 the leader: the other two elect a new one; the killed peer restarts and rejoins
        (leader,) = leaders
        victim = next(p for p, v in zip(peers, views, strict=True) if v["result"]["peer_id"] == leader)
        victim.kill9()
        survivors = [p for p in peers if p is not victim]
        new_leader = cluster.agreed_leader(survivors, exclude=leader)
        victim.args = []  # a restart resumes from storage/raft; no flags needed
        victim.start()
        assert cluster.agreed_leader(peers) == new_leader
    finally:
        cluster.stop()


def test_collections_are_agreed_through_raft(tmp_path: Path) -> None:
    cluster = PeerCluster(tmp_path, secret=SECRET)
    try:
        cluster.new_peer().start()
        for _ in (1, 2):
            cluster.new_peer(own_uri=False).start()  # the cluster infers the joining peer's URI
        peers = list(cluster.peers)
        cluster.wait_formed(peers)
        status, body = call(
            peers[1].url, "PUT", "/collections/everyone", {"vectors": {"size": 4, "distance": "Dot"}}
        )
        assert status == 200, body
        _everywhere(peers, lambda p: call(p.url, "GET", "/collections/everyone")[0] == 200, "collection")
        status, body = call(peers[2].url, "GET", "/collections/everyone")
        assert body["result"]["config"]["params"]["shard_number"] == 3  # defaults to the number of peers
        status, body = call(
            peers[0].url, "PUT", "/collections/everyone", {"vectors": {"size": 4, "distance": "Dot"}}
        )
        assert status == 409, body
        actions = {"actions": [{"create_alias": {"collection_name": "everyone", "alias_name": "al"}}]}
        assert call(peers[2].url, "POST", "/collections/aliases", actions)[0] == 200
        _everywhere(
            peers, lambda p: call(p.url, "GET", "/collections/al/exists")[1]["result"]["exists"], "alias"
        )
        assert call(peers[0].url, "DELETE", "/collections/everyone")[0] == 200
        _everywhere(peers, lambda p: call(p.url, "GET", "/collections/everyone")[0] == 404, "deleted")
        # remove a follower from the cluster through another peer's REST API
        leader = cluster.agreed_leader(peers)
        info = [call(p.url, "GET", "/cluster")[1]["result"] for p in peers]
        gone = next(i for i in info if i["peer_id"] != leader)
        asker = next(
            p for p, i in zip(peers, info, strict=True) if i["peer_id"] not in (leader, gone["peer_id"])
        )
        status, body = call(asker.url, "DELETE", f"/cluster/peer/{gone['peer_id']}?timeout=20")
        assert status == 200, body
        validate("/cluster/peer/{peer_id}", "delete", body)
        left = [p for p, i in zip(peers, info, strict=True) if i["peer_id"] != gone["peer_id"]]
        _everywhere(
            left,
            lambda p: str(gone["peer_id"]) not in call(p.url, "GET", "/cluster")[1]["result"]["peers"],
            "peer removed",
        )
        status, body = call(asker.url, "DELETE", "/cluster/peer/notanumber")
        assert status == 400 and "peer_id" in body["status"]["error"]
    finally:
        cluster.stop()


def test_sigterm_while_joining_stops_the_peer_promptly(tmp_path: Path) -> None:
    """A peer whose bootstrap peer never answers is still joining; SIGTERM ends it at once
    (a Kubernetes pod being deleted must not wait for the join to time out)."""
    cluster = PeerCluster(tmp_path, secret=SECRET)
    nobody = PeerCluster(tmp_path / "nobody").new_peer()  # never started: its p2p port is closed
    cluster.peers.append(nobody)
    peer = cluster.new_peer(bootstrap=nobody)
    peer.spawn()
    try:
        wait_for(lambda: rest(peer.url, "GET", "/cluster")[0] == 200, 30, "HTTP port open")
        assert rest(peer.url, "GET", "/readyz")[0] == 503
        assert peer.proc is not None
        os.killpg(peer.proc.pid, signal.SIGTERM)
        try:
            code = peer.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            raise AssertionError("peer still running 15 s after SIGTERM while joining") from None
        assert code == 0, peer.log_tail()
    finally:
        peer.kill9()
