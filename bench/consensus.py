"""Consensus benchmark: a 3-peer cluster of ``qcluster serve`` subprocesses on 127.0.0.1.

Measures (all over REST, as an operator sees it):
- create-collection latency, p50 / p99, sent to the leader and to a follower (the call returns
  once every peer holding a replica has created the collection);
- metadata-key write latency (one Raft round, no collection files), leader and follower;
- the same metadata write on a one-peer cluster (no follower to wait for);
- leader failover: kill -9 of the leader, then the time until the two survivors agree on a new
  leader and until a metadata write through a survivor succeeds again; the victim restarts and
  rejoins before the next kill.

    python bench/consensus.py [--quick] [--json PATH] [--kills N] [--creates N]

Full: 100 creations per target, 10 leader kills; --quick: 20 creations, 3 kills (< 1 minute).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import machine, percentile, progress, say, ticker, write_json
from qcluster.testing.peer_cluster import ClusterPeer, PeerCluster, rest, wait_for

VECTORS = {"vectors": {"size": 64, "distance": "Cosine"}}
PEERS = 3


def _timed(fn: Any) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000.0


def _summary(lat_ms: list[float]) -> dict[str, Any]:
    return {
        "n": len(lat_ms),
        "p50_ms": percentile(lat_ms, 50),
        "p99_ms": percentile(lat_ms, 99),
        "max_ms": max(lat_ms),
    }


def _ok(status: int, body: Any, what: str) -> None:
    if status != 200:
        raise RuntimeError(f"{what}: HTTP {status}: {body}")


def creates(peer: ClusterPeer, prefix: str, count: int, label: str) -> dict[str, Any]:
    lat = []
    for i in range(count):
        name = f"{prefix}-{i}"

        def create(name: str = name) -> None:
            _ok(*rest(peer.url, "PUT", f"/collections/{name}?timeout=30", VECTORS), f"create {name}")

        lat.append(_timed(create))
        progress(label, i + 1, count)
    return _summary(lat)


def key_writes(peer: ClusterPeer, count: int, label: str) -> dict[str, Any]:
    lat = []
    for i in range(count):

        def put(i: int = i) -> None:
            _ok(*rest(peer.url, "PUT", f"/cluster/metadata/keys/bench-{i % 10}", {"i": i}), "metadata write")

        lat.append(_timed(put))
        progress(label, i + 1, count)
    return _summary(lat)


def failover(cluster: PeerCluster, kills: int) -> dict[str, Any]:
    elect_ms, write_ms = [], []
    for k in range(kills):
        peers = cluster.peers
        leader = cluster.wait_formed(peers)
        victim = cluster.by_id(leader)
        survivors = [p for p in peers if p is not victim]
        victim.kill9()
        t0 = time.perf_counter()
        cluster.agreed_leader(survivors, exclude=leader, timeout=30)
        elect_ms.append((time.perf_counter() - t0) * 1000.0)
        target, path = survivors[0].url, f"/cluster/metadata/keys/kill-{k}?timeout=1"
        wait_for(
            lambda target=target, path=path, k=k: rest(target, "PUT", path, k, timeout=3)[0] == 200,
            30,
            "metadata write after the kill",
            every=0.01,
        )
        write_ms.append((time.perf_counter() - t0) * 1000.0)
        victim.args = []
        victim.start()
        cluster.wait_formed(peers)
        progress("leader kills", k + 1, kills)
    return {
        "kills": kills,
        "new_leader_p50_ms": percentile(elect_ms, 50),
        "new_leader_max_ms": max(elect_ms),
        "write_ok_p50_ms": percentile(write_ms, 50),
        "write_ok_max_ms": max(write_ms),
        "new_leader_ms": elect_ms,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", default=None)
    ap.add_argument("--kills", type=int, default=None)
    ap.add_argument("--creates", type=int, default=None)
    ap.add_argument("--skip-qcluster", action="store_true", help="accepted for run_all; nothing to skip")
    args = ap.parse_args()
    kills = args.kills or (3 if args.quick else 10)
    count = args.creates or (20 if args.quick else 100)
    result: dict[str, Any] = {"machine": machine(), "peers": PEERS, "creates": count}
    with tempfile.TemporaryDirectory(prefix="qcluster-consensus-bench-") as tmp:
        cluster = PeerCluster(Path(tmp), secret="bench-secret")
        try:
            with ticker(f"starting {PEERS} peers"):
                cluster.start(PEERS)
            leader_id = cluster.wait_formed(cluster.peers)
            leader = cluster.by_id(leader_id)
            follower = next(p for p in cluster.peers if p is not leader)
            result["create_collection_leader"] = creates(leader, "via-leader", count, "create via leader")
            result["create_collection_follower"] = creates(
                follower, "via-follower", count, "create via follower"
            )
            result["metadata_write_leader"] = key_writes(leader, count, "key write via leader")
            result["metadata_write_follower"] = key_writes(follower, count, "key write via follower")
            result["failover"] = failover(cluster, kills)
        finally:
            cluster.stop()
    with tempfile.TemporaryDirectory(prefix="qcluster-consensus-bench-1-") as tmp:
        single = PeerCluster(Path(tmp), secret="bench-secret")
        try:
            (alone,) = single.start(1)
            result["metadata_write_single_peer"] = key_writes(alone, count, "key write, 1-peer cluster")
        finally:
            single.stop()
    say("")
    for key in (
        "metadata_write_single_peer",
        "create_collection_leader",
        "create_collection_follower",
        "metadata_write_leader",
        "metadata_write_follower",
    ):
        r = result[key]
        say(f"{key:<28} p50 {r['p50_ms']:7.1f} ms  p99 {r['p99_ms']:7.1f} ms  (n={r['n']})")
    fo = result["failover"]
    say(
        f"failover over {fo['kills']} kills: new leader p50 {fo['new_leader_p50_ms']:.0f} ms, max "
        f"{fo['new_leader_max_ms']:.0f} ms; write ok p50 {fo['write_ok_p50_ms']:.0f} ms, max {fo['write_ok_max_ms']:.0f} ms"
    )
    write_json(args.json, result)


if __name__ == "__main__":
    main()
