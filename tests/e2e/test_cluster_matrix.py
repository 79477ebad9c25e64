"""The metadata plane's acceptance matrix with real subprocess peers, over REST only.

Peers are started the way Qdrant's multi-peer harness starts them (no cluster secret: the p2p port
then listens on loopback only). Every JSON answer of the cluster endpoints is checked against the
reference OpenAPI spec where the spec has the path.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from qcluster.testing.peer_cluster import ClusterPeer, PeerCluster, rest, wait_for
from qcluster.testing.server import free_port

from .http import call
from .openapi_check import validate

VECTORS = {"vectors": {"size": 4, "distance": "Cosine"}}


def _collections(peer: ClusterPeer) -> set[str]:
    status, body = rest(peer.url, "GET", "/collections")
    assert status == 200, body
    return {c["name"] for c in body["result"]["collections"]}


def _put_key(peer: ClusterPeer, key: str, value: object, timeout: int = 10) -> tuple[int, object]:
    return rest(
        peer.url, "PUT", f"/cluster/metadata/keys/{key}?timeout={timeout}", value, timeout=timeout + 5
    )


def test_five_peers_agree_and_survive_a_leader_kill(tmp_path: Path) -> None:
    cluster = PeerCluster(tmp_path)
    try:
        first = cluster.new_peer().start()
        # /cluster answers 200 from the moment the HTTP port is open, before the peer is ready
        for _ in range(4):
            peer = cluster.new_peer()
            _start_watching_cluster_endpoint(peer)
        peers = cluster.peers
        leader = cluster.wait_formed(peers)
        ids = {p.peer_id() for p in peers}
        assert len(ids) == 5 and first.peer_id() in ids
        for p in peers:
            status, body = rest(p.url, "GET", "/cluster")
            validate("/cluster", "get", body)
            assert set(body["result"]["peers"]) == {str(i) for i in ids}

        # a collection created through a follower exists on every peer once the call returns
        follower = next(p for p in peers if p.peer_id() != leader)
        status, body = rest(follower.url, "PUT", "/collections/c1?timeout=20", VECTORS)
        assert status == 200, body
        for p in peers:
            assert "c1" in _collections(p), p.url

        # a config change through another peer reaches every peer (only the changed keys travel)
        patch = {"optimizers_config": {"indexing_threshold": 12345}}
        assert rest(peers[3].url, "PATCH", "/collections/c1", patch)[0] == 200
        for p in peers:
            wait_for(
                lambda p=p: (
                    rest(p.url, "GET", "/collections/c1")[1]["result"]["config"]["optimizer_config"][
                        "indexing_threshold"
                    ]
                    == 12345
                ),
                10,
                "updated config everywhere",
            )

        # cluster metadata keys, agreed through Raft
        assert _put_key(follower, "owner", {"team": "search"})[0] == 200
        for p in peers:
            wait_for(
                lambda p=p: (
                    rest(p.url, "GET", "/cluster/metadata/keys/owner")[1].get("result") == {"team": "search"}
                ),
                10,
                "metadata key everywhere",
            )
        assert rest(peers[2].url, "GET", "/cluster/metadata/keys")[1]["result"] == ["owner"]
        # bad input: 400 naming the field, nothing stored
        status, body = call(peers[1].url, "PUT", "/cluster/metadata/keys/broken", raw=b"{not json")
        assert status == 400 and "body" in body["status"]["error"], body
        status, body = call(peers[1].url, "PUT", "/cluster/metadata/keys/" + "k" * 300, {"v": 1})
        assert status == 400 and "key" in body["status"]["error"], body
        assert rest(peers[1].url, "GET", "/cluster/metadata/keys")[1]["result"] == ["owner"]
        status, body = rest(peers[3].url, "GET", "/cluster/metadata/keys/missing")
        assert status == 404 and "missing" in body["status"]["error"]

        # telemetry: the agreed topology and every peer's figures
        status, body = rest(peers[4].url, "GET", "/cluster/telemetry")
        assert status == 200, body
        validate("/cluster/telemetry", "get", body)
        tele = body["result"]
        assert tele["cluster"]["number_of_peers"] == 5
        assert all(v["responsive"] for v in tele["cluster"]["peers"].values())
        replicas = {r["peer_id"] for s in tele["collections"]["c1"]["shards"] for r in s["replicas"]}
        assert replicas == ids
        # the collection's placement as each peer sees it: its own replicas local, the rest remote
        for p in peers:
            status, body = rest(p.url, "GET", "/collections/c1/cluster")
            assert status == 200, body
            validate("/collections/{collection_name}/cluster", "get", body)
            view = body["result"]
            assert view["peer_id"] == p.peer_id() and view["shard_count"] == 5
            assert {s["shard_id"] for s in view["local_shards"]} | {
                s["shard_id"] for s in view["remote_shards"]
            } == set(range(5))
            assert all(s["peer_id"] != view["peer_id"] for s in view["remote_shards"])
        status, text = rest(peers[0].url, "GET", "/metrics")
        assert status == 200 and "cluster_term " in text and "cluster_peers_total 5.0" in text

        # kill -9 the leader: a new leader takes metadata writes again within 3 s
        victim = cluster.by_id(leader)
        survivors = [p for p in peers if p is not victim]
        victim.kill9()
        killed_at = time.monotonic()
        wait_for(
            lambda: _put_key(survivors[0], "after-kill", 1, timeout=1)[0] == 200, 3.0, "write after kill"
        )
        assert time.monotonic() - killed_at < 3.0
        new_leader = cluster.agreed_leader(survivors, exclude=leader)
        assert new_leader != leader
        # a collection created while the old leader is down goes to the live peers only
        status, body = rest(survivors[1].url, "PUT", "/collections/c2?timeout=20", VECTORS)
        assert status == 200, body
        status, body = rest(survivors[1].url, "GET", "/cluster/telemetry")
        shards = body["result"]["collections"]["c2"]["shards"]
        holders = {r["peer_id"] for shard in shards for r in shard["replicas"]}
        assert len(shards) == 5 and leader not in holders and holders == ids - {leader}, shards
        # the killed peer restarts (no flags: stored state) and catches up with what it missed
        victim.args = []
        victim.start()
        assert victim.peer_id() == leader
        wait_for(lambda: {"c1", "c2"} <= _collections(victim), 30, "restarted peer has c2")
        status, body = rest(victim.url, "GET", "/cluster/metadata/keys/after-kill")
        assert status == 200 and body["result"] == 1
        assert cluster.agreed_leader(peers) == new_leader
        # /cluster/recover: catch up and re-apply the agreed metadata locally
        status, body = rest(victim.url, "POST", "/cluster/recover")
        assert status == 200 and body["result"] is True, body
        validate("/cluster/recover", "post", body)
        assert {"c1", "c2"} <= _collections(victim)
    finally:
        cluster.stop()


def _start_watching_cluster_endpoint(peer: ClusterPeer) -> None:
    """Start the peer and poll ``/cluster`` meanwhile: every answer received is a 200."""
    proc_started = False
    answers: list[int] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            status, _ = rest(peer.url, "GET", "/cluster", timeout=2)
            if status:
                answers.append(status)
            time.sleep(0.02)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        peer.start()
        proc_started = True
    finally:
        done.set()
        thread.join()
    assert proc_started and answers and set(answers) == {200}, answers


def test_restart_matrix_quorum_and_peer_removal(tmp_path: Path) -> None:
    cluster = PeerCluster(tmp_path, secret="matrix-secret")
    try:
        peers = list(cluster.start(3))
        a, b, c = peers
        assert rest(b.url, "PUT", "/collections/kept", VECTORS)[0] == 200
        actions = {"actions": [{"create_alias": {"collection_name": "kept", "alias_name": "kept-alias"}}]}
        assert rest(c.url, "POST", "/collections/aliases", actions)[0] == 200
        assert _put_key(a, "k", [1, 2, 3])[0] == 200
        ids = [p.peer_id() for p in peers]

        # full-cluster kill -9 and restart keeps every committed operation
        for p in peers:
            p.kill9()
        for p in peers:
            p.args = []
            p.spawn()
        for p in peers:
            p.wait_ready(60)
        cluster.wait_formed(peers)
        for p in peers:
            assert "kept" in _collections(p)
            assert rest(p.url, "GET", "/collections/kept-alias/exists")[1]["result"]["exists"] is True
            wait_for(
                lambda p=p: rest(p.url, "GET", "/cluster/metadata/keys/k")[1].get("result") == [1, 2, 3],
                10,
                "metadata key after full restart",
            )
        assert [p.peer_id() for p in peers] == ids

        # a peer restarted on a new p2p port keeps its id; the others learn the new URI
        c.stop()
        c.set_p2p_port(free_port())
        c.args = ["--uri", c.p2p_uri]
        c.start()
        assert c.peer_id() == ids[2]
        wait_for(
            lambda: all(
                (info := p.info()) is not None and info["peers"].get(str(ids[2]), {}).get("uri") == c.p2p_uri
                for p in peers
            ),
            30,
            "new uri everywhere",
        )
        cluster.wait_formed(peers)

        # the p2p port of a real peer shrugs off a crafted pickle sent over raw TCP
        canary = tmp_path / "pwned"
        _send_raw(a.p2p_port, _evil_pickle(canary))
        _send_raw(a.p2p_port, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + _evil_pickle(canary))
        assert not canary.exists()
        assert a.info() is not None and a.proc is not None and a.proc.poll() is None

        # removal: refused while the peer holds replicas, done with force; a peer without
        # replicas goes without force
        status, body = rest(a.url, "DELETE", f"/cluster/peer/{ids[2]}")
        assert status == 400 and "replicas" in body["status"]["error"], body
        d = cluster.new_peer()
        d.start()
        cluster.wait_formed([*peers, d])
        d_id = d.peer_id()
        status, body = rest(b.url, "DELETE", f"/cluster/peer/{d_id}?timeout=20")
        assert status == 200, body
        status, body = rest(a.url, "DELETE", f"/cluster/peer/{ids[2]}?force=true&timeout=20")
        assert status == 200, body
        wait_for(
            lambda: all(
                (info := p.info()) is not None and set(info["peers"]) == {str(ids[0]), str(ids[1])}
                for p in (a, b)
            ),
            20,
            "removed peers gone",
        )
        d.stop()
        c.stop()

        # without a quorum (one of two voters left), metadata operations fail within their timeout
        b.kill9()
        started = time.monotonic()
        status, body = rest(a.url, "PUT", "/collections/nope?timeout=5", VECTORS, timeout=30)
        elapsed = time.monotonic() - started
        assert status == 503 and "quorum" in body["status"]["error"], body
        assert elapsed < 5 + 2, elapsed
        status, body = _put_key(a, "nope", 1, timeout=3)
        assert status == 503 and "quorum" in body["status"]["error"], body
    finally:
        cluster.stop()


def _evil_pickle(canary: Path) -> bytes:
    code = (
        "import pickle, os\n"
        "class E:\n"
        f"    def __reduce__(self): return (os.system, ('touch {canary}',))\n"
        "import sys; sys.stdout.buffer.write(pickle.dumps(E()))\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, check=True).stdout


def _send_raw(port: int, payload: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(payload)
        s.settimeout(2)
        with contextlib.suppress(OSError):
            s.recv(1024)
