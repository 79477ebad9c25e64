"""The hostile suite against a 3-peer cluster: the same requests, sent to every peer in turn (in a
cluster a request fans out, and collection changes go through consensus to every peer). Every
answer is below 500 within the suite's bound, and no peer goes down: afterwards each is alive,
ready, agrees on the collections, and the seeded points are all there.

The default run sends the issue's cases, the bounds and one huge value per numeric field; the
slow run sends the whole single-peer sweep and a fuzz pass.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from qcluster.testing.peer_cluster import ClusterPeer, PeerCluster, rest, wait_for

from . import hostile
from .hostile import VEC, deep_filter, error_of, send, with_raw


@pytest.fixture(scope="module")
def peers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[ClusterPeer]]:
    cluster = PeerCluster(Path(tmp_path_factory.mktemp("hostile-cluster")))
    try:
        peers = cluster.start(3)
        hostile.seed(peers[0].url)
        wait_for(
            lambda: all(rest(p.url, "GET", "/collections/c")[0] == 200 for p in peers), 30, "c on every peer"
        )
        yield peers
        _assert_cluster_healthy(peers)
    finally:
        cluster.stop()


def _assert_cluster_healthy(peers: list[ClusterPeer]) -> None:
    for p in peers:
        assert p.proc is not None and p.proc.poll() is None, p.log_tail()
        assert rest(p.url, "GET", "/readyz")[0] == 200
        status, out = rest(p.url, "GET", "/collections")
        assert status == 200 and "c" in {c["name"] for c in out["result"]["collections"]}
    hostile.assert_healthy(peers[0].url)  # every seeded point, where it was written


def test_the_issue_cases_on_every_peer(peers: list[ClusterPeer]) -> None:
    for p in peers:
        status, out = send(
            p.url,
            "POST",
            "/collections/c/points/query",
            raw=with_raw({"query": VEC}, filter=deep_filter(200)),
        )
        assert status == 400 and "max_filter_depth" in error_of(out)
        for path, body in (
            ("/points/query", {"query": VEC, "limit": 10**9}),
            ("/points/recommend", {"positive": [VEC], "limit": 10**9}),
            ("/points/query", {"prefetch": {"query": VEC, "limit": 10**9}, "query": {"fusion": "rrf"}}),
            ("/points/query/groups", {"query": VEC, "group_by": "g", "group_size": 10**9}),
        ):
            assert send(p.url, "POST", "/collections/c" + path, body)[0] == 200
        status, out = send(
            p.url, "PUT", "/collections/s", {"vectors": {"size": 4, "distance": "Dot"}, "shard_number": 10**6}
        )
        assert status == 400 and "max_shard_number" in error_of(out)
        status, out = send(
            p.url,
            "PUT",
            "/collections/s",
            {"vectors": {"size": 4, "distance": "Dot"}, "hnsw_config": {"m": 10**6}},
        )
        assert status == 400 and "max_hnsw_m" in error_of(out)
    _assert_cluster_healthy(peers)


def test_bounds_and_huge_numbers_round_robin(peers: list[ClusterPeer]) -> None:
    ring = itertools.cycle(peers)
    searches = [{"vector": VEC, "limit": 1} for _ in range(1001)]
    status, out = send(next(ring).url, "POST", "/collections/c/points/search/batch", {"searches": searches})
    assert status == 400 and "max_batch_queries" in error_of(out)
    status, out = send(next(ring).url, "POST", "/collections/c/points", {"ids": list(range(100_001))})
    assert status == 400 and "max_points_per_request" in error_of(out)
    status, out = send(
        next(ring).url,
        "PUT",
        "/collections/meta",
        raw=with_raw({"vectors": {"size": 4, "distance": "Dot"}}, metadata=hostile.deep_value(100)),
    )
    assert status == 400 and "max_json_depth" in error_of(out)
    for path, body, _ in hostile.Sweep(hostile.READ_TEMPLATES, (2**64 - 1, -(2**63), 1e308), cycle=True):
        send(next(ring).url, "POST", "/collections/c" + path, body)
    # cluster operations and peer removal with numbers no cluster has: 4xx naming the field
    huge = {"shard_id": 2**64 - 1, "from_peer_id": 2**63 - 1, "to_peer_id": 2**64 - 1}
    for op, field in (
        ({"move_shard": huge}, "move_shard"),
        ({"replicate_shard": {**huge, "shard_id": 0}}, "replicate_shard"),
        ({"drop_replica": {"shard_id": 2**64 - 1, "peer_id": 2**64 - 1}}, "drop_replica"),
        ({"abort_transfer": huge}, "abort_transfer"),
    ):
        status, out = send(next(ring).url, "POST", "/collections/c/cluster", op)
        assert 400 <= status < 500 and field in error_of(out), (op, out)
    for raw in ("9" * 5000, str(2**64), "\u00b2"):
        status, out = send(next(ring).url, "DELETE", f"/cluster/peer/{raw}")
        assert status == 400 and "peer_id" in error_of(out), out
    _assert_cluster_healthy(peers)


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_full_sweep_and_fuzz_on_every_peer(peers: list[ClusterPeer]) -> None:
    from .test_hostile_fuzz import REQUESTS

    for p in peers:
        hostile.sweep_reads(p.url, "c", hostile.HUGE_INTS + hostile.HUGE_FLOATS)
    hostile.sweep_configs(peers[1].url, (2**63 - 1, 1e308, 2**64 - 1))
    ring = itertools.cycle(peers)

    @settings(max_examples=300, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(REQUESTS)
    def run(request: tuple[str, str, dict[str, object]]) -> None:
        method, path, body = request
        send(next(ring).url, method, "/collections/c" + path, body)

    run()
    _assert_cluster_healthy(peers)
