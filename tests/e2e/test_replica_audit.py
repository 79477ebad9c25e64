"""Replicas that disagree on a write whose coordinator is gone end up agreeing (the replica audit,
qcluster/cluster/replica_audit.py), with real peers and real gRPC."""

from __future__ import annotations

from pathlib import Path

from qcluster.shards.clock import ClockTag
from qcluster.shards.operations import DeletePoints, PointSelector
from qcluster.testing.peer_cluster import PeerCluster, rest, wait_for
from qcluster.testing.replicas import replica_contents, write_one_replica


def test_replicas_that_disagree_on_a_write_nobody_settles_end_up_agreeing(tmp_path: Path) -> None:
    cluster = PeerCluster(tmp_path)
    cluster.env["QDRANT__CLUSTER__GRPC_TIMEOUT_MS"] = "2000"
    cluster.env["QDRANT__CLUSTER__REPLICA_AUDIT_INTERVAL_SEC"] = "0.5"
    try:
        peers = cluster.start(2)
        body = {"vectors": {"size": 4, "distance": "Dot"}, "shard_number": 1, "replication_factor": 2}
        status, answer = rest(peers[0].url, "PUT", "/collections/c?timeout=30", body)
        assert status == 200, answer
        points = [{"id": i, "vector": [1.0, 0.0, 0.0, float(i)]} for i in range(50)]
        status, answer = rest(peers[0].url, "PUT", "/collections/c/points?wait=true", {"points": points})
        assert status == 200, answer
        uris = [p.p2p_uri for p in peers]
        assert replica_contents(uris[0], "c", 0) == replica_contents(uris[1], "c", 0)
        # A delete applied on peer 1's replica only, tagged with a clock no live coordinator uses:
        # what a coordinator killed halfway through a write leaves behind.
        tag = ClockTag(peers[0].peer_id(), 10_000, 1)
        write_one_replica(uris[1], "c", 0, DeletePoints(PointSelector(ids=(7,))), tag)
        assert 7 in replica_contents(uris[0], "c", 0) and 7 not in replica_contents(uris[1], "c", 0)

        def agree() -> bool:
            status, info = rest(peers[0].url, "GET", "/collections/c/cluster")
            states = [s["state"] for s in info["result"]["local_shards"] + info["result"]["remote_shards"]]
            if status != 200 or states != ["Active", "Active"]:
                return False
            return replica_contents(uris[0], "c", 0) == replica_contents(uris[1], "c", 0)

        wait_for(agree, 60, "both replicas Active and identical")
        assert set(replica_contents(uris[0], "c", 0)) == set(range(50)) - {7}  # rebuilt from the holder
    finally:
        cluster.stop()
