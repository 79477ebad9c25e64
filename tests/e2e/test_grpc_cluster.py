"""Cluster operations over Qdrant's public gRPC API with real subprocess peers:
``UpdateCollectionClusterSetup`` (through qdrant-client with ``prefer_grpc=True``) replicates and
drops shard replicas with the checks REST's ``POST /collections/{c}/cluster`` makes, and
``CollectionClusterInfo`` shows the result on every peer."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from qdrant_client import QdrantClient, models
from qdrant_client import grpc as pb

from qcluster.testing.peer_cluster import ClusterPeer, PeerCluster, rest, wait_for
from qcluster.testing.replicas import replica_contents

from .test_data_plane import _create, _points, _upsert


def _client(peer: ClusterPeer) -> QdrantClient:
    return QdrantClient(url=peer.url, grpc_port=peer.grpc_port, prefer_grpc=True, timeout=60)


def _states(client: QdrantClient, name: str) -> dict[int, str]:
    """peer id -> state of the replicas of shard 0, as the peer behind ``client`` sees them."""
    info = client.collection_cluster_info(name)
    out = {}
    for s in info.local_shards:
        if s.shard_id == 0:
            out[info.peer_id] = str(s.state.value)
    out.update({s.peer_id: str(s.state.value) for s in info.remote_shards if s.shard_id == 0})
    return out


def _refused(client: QdrantClient, name: str, op: models.ClusterOperations, code: grpc.StatusCode) -> str:
    with pytest.raises(grpc.RpcError) as info:
        client.cluster_collection_update(name, op)
    assert info.value.code() == code, (info.value.code(), info.value.details())
    return str(info.value.details())


def _raw_refused(
    peer: ClusterPeer, request: pb.UpdateCollectionClusterSetupRequest, code: grpc.StatusCode
) -> str:
    """What qdrant-client's models cannot express, sent as the raw message."""
    with (
        grpc.insecure_channel(f"127.0.0.1:{peer.grpc_port}") as channel,
        pytest.raises(grpc.RpcError) as info,
    ):
        pb.CollectionsStub(channel).UpdateCollectionClusterSetup(request, timeout=60)
    assert info.value.code() == code, (info.value.code(), info.value.details())
    return str(info.value.details())


def test_cluster_setup_over_grpc_replicates_and_drops_replicas(tmp_path: Path) -> None:
    cluster = PeerCluster(tmp_path)
    try:
        peers = cluster.start(2)
        ids = {p.peer_id(): p for p in peers}
        _create(peers[0], "c", shard_number=1, replication_factor=1)
        assert _upsert(peers[0], "c", _points(range(500)))[0] == 200
        first, second = _client(peers[0]), _client(peers[1])
        states = _states(second, "c")
        [holder] = states
        [other] = [p for p in ids if p != holder]
        assert states == {holder: "Active"}

        # operator mistakes: the shared checks, as gRPC status codes
        same = models.MoveShardOperation(
            move_shard=models.MoveShard(shard_id=0, from_peer_id=holder, to_peer_id=holder)
        )
        assert "cannot transfer shard to itself" in _refused(
            second, "c", same, grpc.StatusCode.INVALID_ARGUMENT
        )
        reshard = pb.UpdateCollectionClusterSetupRequest(
            collection_name="c",
            replicate_shard=pb.ReplicateShard(
                shard_id=0, to_shard_id=1, from_peer_id=holder, to_peer_id=other
            ),
        )
        assert "resharding" in _raw_refused(peers[1], reshard, grpc.StatusCode.INVALID_ARGUMENT)
        abort = models.AbortTransferOperation(
            abort_transfer=models.AbortShardTransfer(shard_id=0, from_peer_id=holder, to_peer_id=other)
        )
        assert "no transfer" in _refused(second, "c", abort, grpc.StatusCode.NOT_FOUND)

        # replicate through the peer that holds nothing, with an explicit method
        replicate = models.ReplicateShardOperation(
            replicate_shard=models.ReplicateShard(
                shard_id=0,
                from_peer_id=holder,
                to_peer_id=other,
                method=models.ShardTransferMethod.WAL_DELTA,
            )
        )
        assert second.cluster_collection_update("c", replicate) is True
        wait_for(
            lambda: (
                _states(first, "c") == {holder: "Active", other: "Active"}
                and not first.collection_cluster_info("c").shard_transfers
            ),
            120,
            "the replica copied and Active",
        )
        copied = replica_contents(ids[other].p2p_uri, "c", 0)
        assert copied == replica_contents(ids[holder].p2p_uri, "c", 0)
        assert set(copied) == set(range(500))

        # drop the original; the copy is now the last Active replica and cannot be dropped
        drop = models.DropReplicaOperation(drop_replica=models.Replica(shard_id=0, peer_id=holder))
        assert first.cluster_collection_update("c", drop) is True
        wait_for(lambda: _states(second, "c") == {other: "Active"}, 60, "the dropped replica gone")
        last = models.DropReplicaOperation(drop_replica=models.Replica(shard_id=0, peer_id=other))
        assert "last Active replica" in _refused(first, "c", last, grpc.StatusCode.INVALID_ARGUMENT)
        status, body = rest(peers[0].url, "POST", "/collections/c/points/count", {"exact": True})
        assert status == 200 and body["result"]["count"] == 500, body

        # an operation qcluster does not offer is UNIMPLEMENTED, not a silent no-op
        request = pb.UpdateCollectionClusterSetupRequest(
            collection_name="c",
            replicate_points=pb.ReplicatePoints(
                from_shard_key=pb.ShardKey(keyword="a"), to_shard_key=pb.ShardKey(keyword="b")
            ),
        )
        _raw_refused(peers[0], request, grpc.StatusCode.UNIMPLEMENTED)
        first.close()
        second.close()
    finally:
        cluster.stop()
