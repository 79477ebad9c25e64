"""The Prometheus exposition of one peer: Qdrant's metric names and labels (pure, no sockets)."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from qcluster.metrics import CollectionStats, Metrics, ReplicaStats


def _samples(m: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(m.exposition().decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_collection_and_replica_figures() -> None:
    m = Metrics()
    m.set_collections(
        [
            CollectionStats("a", points=10, vectors={"": 10}, indexed_vectors=4, segments=2),
            CollectionStats("b", points=5, vectors={"text": 5, "image": 3}, indexed_vectors=0, segments=1),
        ]
    )
    m.set_replicas(
        [
            ReplicaStats("a", (2, 2), {"Active": 4}, transfers_in=0, transfers_out=1),
            ReplicaStats("b", (1, 2, 0), {"Active": 3, "Dead": 2, "Partial": 1}, transfers_in=1),
        ]
    )
    s = _samples(m)
    assert s[("collections_total", ())] == 2
    assert s[("collections_vector_total", ())] == 18
    assert s[("collection_points", (("id", "a"),))] == 10
    assert s[("collection_vectors", (("collection", "b"), ("vector", "image")))] == 3
    assert s[("collection_vectors", (("collection", "a"), ("vector", "")))] == 10
    assert s[("collection_active_replicas_min", ())] == 0
    assert s[("collection_active_replicas_max", ())] == 2
    assert s[("collection_dead_replicas", ())] == 3
    assert s[("collection_replicas", (("id", "b"), ("state", "Dead")))] == 2
    assert s[("collection_shard_transfer_outgoing", (("id", "a"),))] == 1
    assert s[("collection_shard_transfer_incoming", (("id", "b"),))] == 1
    # a collection gone from the next scrape is gone from the exposition
    m.set_collections([CollectionStats("a", points=1, vectors={"": 1}, indexed_vectors=0, segments=1)])
    m.set_replicas([ReplicaStats("a", (1,), {"Active": 1})])
    s = _samples(m)
    assert ("collection_points", (("id", "b"),)) not in s
    assert ("collection_replicas", (("id", "b"), ("state", "Dead"))) not in s
    assert s[("collection_dead_replicas", ())] == 0


def test_rest_counts_every_status_and_times_200s_as_qdrant_does() -> None:
    m = Metrics()
    ep = "/collections/{collection_name}/points/query"
    for seconds in (0.002, 0.004, 0.009):
        m.observe_request("POST", ep, 200, seconds)
    m.observe_request("POST", ep, 404, 0.001)
    s = _samples(m)
    ok = (("endpoint", ep), ("method", "POST"), ("status", "200"))
    missing = (("endpoint", ep), ("method", "POST"), ("status", "404"))
    assert s[("rest_responses_total", ok)] == 3 and s[("rest_responses_total", missing)] == 1
    assert s[("rest_responses_fail_total", missing)] == 1 and ("rest_responses_fail_total", ok) not in s
    assert s[("rest_responses_duration_seconds_count", ok)] == 3
    assert s[("rest_responses_duration_seconds_bucket", tuple(sorted([*ok, ("le", "0.005")])))] == 2
    assert ("rest_responses_duration_seconds_count", missing) not in s
    assert s[("rest_responses_min_duration_seconds", ok)] == 0.002
    assert s[("rest_responses_max_duration_seconds", ok)] == 0.009
    assert abs(s[("rest_responses_avg_duration_seconds", ok)] - 0.005) < 1e-9


def test_grpc_and_cluster_figures() -> None:
    m = Metrics()
    m.observe_grpc("/qdrant.Points/Search", "OK", 0.003)
    m.set_cluster(None, 0)
    s = _samples(m)
    assert s[("grpc_responses_total", (("endpoint", "/qdrant.Points/Search"), ("status", "OK")))] == 1
    assert s[("cluster_enabled", ())] == 0
    health = {
        "peer_id": 7,
        "term": 3,
        "commit": 41,
        "applied_index": 40,
        "pending_operations": 1,
        "is_voter": True,
        "leader_peer_id": 7,
        "consensus_thread_status": "working",
    }
    m.set_cluster(health, 3)
    s = _samples(m)
    assert s[("cluster_enabled", ())] == 1 and s[("cluster_peers_total", ())] == 3
    assert s[("cluster_term", ())] == 3 and s[("cluster_commit", (("peer_id", "7"),))] == 41
    assert s[("cluster_pending_operations_total", ())] == 1 and s[("cluster_voter", ())] == 1
    assert s[("cluster_working_state", (("state", "working"),))] == 1
    assert s[("cluster_working_state", (("state", "stopped"),))] == 0
    assert s[("cluster_last_update_timestamp_seconds", ())] > 0
    assert s[("cluster_is_leader", ())] == 1
