"""Real subprocess peers form a Raft cluster over their p2p ports and report it on GET /cluster."""

from __future__ import annotations

import time
from pathlib import Path

from qcluster.testing.server import ServerProcess, free_port

from .http import call
from .openapi_check import validate

SECRET = "e2e-cluster-secret"


def _peer(tmp: Path, name: str, p2p: int, extra: list[str]) -> ServerProcess:
    env = {
        "QDRANT__CLUSTER__ENABLED": "true",
        "QDRANT__CLUSTER__P2P__PORT": str(p2p),
        "QDRANT__CLUSTER__SECRET": SECRET,
    }
    return ServerProcess(tmp / name, env=env, args=extra)


def test_three_peers_form_a_cluster(tmp_path: Path) -> None:
    ports = [free_port() for _ in range(3)]
    first_uri = f"http://127.0.0.1:{ports[0]}"
    peers = [_peer(tmp_path, "p0", ports[0], ["--uri", first_uri])]
    try:
        peers[0].start()
        for i in (1, 2):
            peer = _peer(
                tmp_path,
                f"p{i}",
                ports[i],
                ["--bootstrap", first_uri, "--uri", f"http://127.0.0.1:{ports[i]}"],
            )
            peers.append(peer)
            peer.start()
        deadline = time.monotonic() + 60
        views: list[dict] = []
        while time.monotonic() < deadline:
            views = []
            for peer in peers:
                status, body = call(peer.url, "GET", "/cluster")
                assert status == 200
                views.append(body)
            if all(len(v["result"]["peers"]) == 3 and v["result"]["raft_info"]["leader"] for v in views):
                break
            time.sleep(0.1)
        else:
            raise AssertionError(f"cluster did not form: {views}")
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
        new_leader = _agreed_leader(survivors, exclude=leader)
        victim.args = []  # a restart resumes from storage/raft; no flags needed
        victim.start()
        assert _agreed_leader(peers, exclude=None) == new_leader
    finally:
        for peer in reversed(peers):
            peer.stop()


def _agreed_leader(peers: list[ServerProcess], exclude: int | None, timeout: float = 30.0) -> int:
    deadline = time.monotonic() + timeout
    seen: list[object] = []
    while time.monotonic() < deadline:
        seen = []
        for peer in peers:
            status, body = call(peer.url, "GET", "/cluster")
            seen.append(body["result"]["raft_info"]["leader"] if status == 200 else None)
        if seen[0] is not None and seen[0] != exclude and len(set(seen)) == 1:
            return int(seen[0])  # type: ignore[call-overload]
        time.sleep(0.1)
    raise AssertionError(f"no agreed leader: {seen}")


def test_collections_are_agreed_through_raft(tmp_path: Path) -> None:
    ports = [free_port() for _ in range(3)]
    first_uri = f"http://127.0.0.1:{ports[0]}"
    peers = [_peer(tmp_path, "p0", ports[0], ["--uri", first_uri])]
    try:
        peers[0].start()
        for i in (1, 2):
            peers.append(_peer(tmp_path, f"p{i}", ports[i], ["--bootstrap", first_uri]))
            peers[-1].start()
        _agreed_leader(peers, exclude=None)
        status, body = call(
            peers[1].url, "PUT", "/collections/shared", {"vectors": {"size": 4, "distance": "Dot"}}
        )
        assert status == 200, body
        _wait_everywhere(peers, lambda p: call(p.url, "GET", "/collections/shared")[0] == 200)
        status, body = call(peers[2].url, "GET", "/collections/shared")
        assert body["result"]["config"]["params"]["shard_number"] == 3  # defaults to the number of peers
        status, body = call(
            peers[0].url, "PUT", "/collections/shared", {"vectors": {"size": 4, "distance": "Dot"}}
        )
        assert status == 409, body
        actions = {"actions": [{"create_alias": {"collection_name": "shared", "alias_name": "al"}}]}
        assert call(peers[2].url, "POST", "/collections/aliases", actions)[0] == 200
        _wait_everywhere(peers, lambda p: call(p.url, "GET", "/collections/al/exists")[1]["result"]["exists"])
        assert call(peers[0].url, "DELETE", "/collections/shared")[0] == 200
        _wait_everywhere(peers, lambda p: call(p.url, "GET", "/collections/shared")[0] == 404)
        # remove a follower from the cluster through another peer's REST API
        leader = _agreed_leader(peers, exclude=None)
        info = [call(p.url, "GET", "/cluster")[1]["result"] for p in peers]
        gone = next(i for i in info if i["peer_id"] != leader)
        asker = next(
            p for p, i in zip(peers, info, strict=True) if i["peer_id"] not in (leader, gone["peer_id"])
        )
        status, body = call(asker.url, "DELETE", f"/cluster/peer/{gone['peer_id']}?timeout=20")
        assert status == 200, body
        validate("/cluster/peer/{peer_id}", "delete", body)
        left = [p for p, i in zip(peers, info, strict=True) if i["peer_id"] != gone["peer_id"]]
        _wait_everywhere(
            left, lambda p: str(gone["peer_id"]) not in call(p.url, "GET", "/cluster")[1]["result"]["peers"]
        )
        status, body = call(asker.url, "DELETE", "/cluster/peer/notanumber")
        assert status == 400 and "peer_id" in body["status"]["error"]
    finally:
        for peer in reversed(peers):
            peer.stop()


def _wait_everywhere(peers: list[ServerProcess], cond: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(cond(p) for p in peers):  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError("condition not reached on every peer")


def test_sigterm_while_joining_stops_the_peer_promptly(tmp_path: Path) -> None:
    """A peer whose bootstrap peer never answers is still joining; SIGTERM ends it at once
    (a Kubernetes pod being deleted must not wait for the join to time out)."""
    import os
    import signal
    import subprocess

    from qcluster.testing.peer_cluster import rest, wait_for

    nobody = f"http://127.0.0.1:{free_port()}"
    peer = _peer(tmp_path, "p0", free_port(), ["--bootstrap", nobody])
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
