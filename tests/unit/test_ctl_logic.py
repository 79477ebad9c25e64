"""``qcluster ctl``'s pure parts: transfer comments, readiness reasons, drain plans, request
bodies, and the terminal rendering of API shapes (no sockets)."""

from __future__ import annotations

import io
from typing import Any

import pytest
from rich.console import Console

from qcluster.ctl import render
from qcluster.ctl.comment import parse_comment
from qcluster.ctl.readiness import not_ready
from qcluster.ctl.shard_ops import DrainRefused, Move, moved, plan_drain, shard_request
from qcluster.ctl.views import ClusterStatus, ClusterView, CollectionCluster, ShardTransfer


def _cluster(peers: list[int], leader: int | None = 1, me: int = 1) -> ClusterStatus:
    return ClusterStatus.model_validate(
        {
            "status": "enabled",
            "peer_id": me,
            "peers": {str(p): {"uri": f"http://p{p}:6335"} for p in peers},
            "raft_info": {
                "term": 3,
                "commit": 40,
                "pending_operations": 0,
                "leader": leader,
                "role": "Leader",
            },
        }
    )


def _collection(
    me: int, placement: dict[int, dict[int, str]], transfers: list[dict[str, Any]] | None = None
) -> CollectionCluster:
    """``placement``: shard id -> {peer id: state}; the view as peer ``me`` answers it."""
    local, remote = [], []
    for shard, holders in placement.items():
        for peer, state in holders.items():
            if peer == me:
                local.append({"shard_id": shard, "points_count": 10, "state": state})
            else:
                remote.append({"shard_id": shard, "peer_id": peer, "state": state})
    return CollectionCluster.model_validate(
        {
            "peer_id": me,
            "shard_count": len(placement),
            "local_shards": local,
            "remote_shards": remote,
            "shard_transfers": transfers or [],
        }
    )


def test_comment_of_a_record_transfer() -> None:
    p = parse_comment(
        "transferring (3.20s) | Transferring records (1200/5000), ETA: 9.10s | read: 0.40s, send: 1.10s"
    )
    assert (p.stage, p.stage_seconds, p.done, p.total, p.eta_seconds) == (
        "transferring",
        3.2,
        1200,
        5000,
        9.1,
    )
    assert p.fraction == pytest.approx(0.24)


def test_comment_of_a_qcluster_transfer() -> None:
    p = parse_comment("stream_records: copying points 4000/10000 points (40%), 2100 points/s, ETA 3 s")
    assert (p.stage, p.done, p.total, p.unit, p.eta_seconds) == ("copying points", 4000, 10000, "points", 3.0)
    p = parse_comment("snapshot: sending snapshot 1024/4096 bytes (25%)")
    assert (p.stage, p.done, p.total, p.unit, p.eta_seconds) == (
        "sending snapshot",
        1024,
        4096,
        "bytes",
        None,
    )
    p = parse_comment("wal_delta: finishing")
    assert (p.stage, p.done, p.total) == ("finishing", None, None)


def test_comment_of_older_versions_and_stages_only() -> None:
    p = parse_comment("Transferring records (10/20), started 3s ago, ETA: 1.5s")
    assert (p.stage, p.done, p.total, p.eta_seconds) == (None, 10, 20, 1.5)
    p = parse_comment("creating snapshot (0.51s)")
    assert (p.stage, p.stage_seconds, p.done, p.total, p.fraction) == (
        "creating snapshot",
        0.51,
        None,
        None,
        None,
    )
    assert parse_comment(None) == parse_comment("") == parse_comment("something else entirely")


def test_ready_when_every_replica_is_active_and_there_is_a_leader() -> None:
    view = ClusterView("u", _cluster([1, 2, 3]), {"a": _collection(1, {0: {1: "Active", 2: "Active"}})})
    assert not_ready(view) == []


def test_not_ready_names_each_reason() -> None:
    transfer = {"shard_id": 1, "from": 2, "to": 3, "sync": False, "method": "stream_records"}
    view = ClusterView(
        "u",
        _cluster([1, 2, 3], leader=None),
        {"a": _collection(1, {0: {1: "Active", 2: "Dead"}, 1: {2: "Active", 3: "Partial"}}, [transfer])},
    )
    assert not_ready(view) == [
        "the cluster has no Raft leader",
        "collection 'a' shard 0 on peer 2 is Dead",
        "collection 'a' shard 1 on peer 3 is Partial",
        "collection 'a' shard 1 is being transferred 2 -> 3",
    ]


def test_single_peer_mode_needs_no_leader() -> None:
    view = ClusterView("u", ClusterStatus(status="disabled"), {"a": _collection(0, {0: {0: "Active"}})})
    assert not_ready(view) == []


def test_drain_plan_keeps_replication_and_balances() -> None:
    view = ClusterView(
        "u",
        _cluster([1, 2, 3, 4]),
        {
            "a": _collection(1, {0: {1: "Active", 2: "Active"}, 1: {1: "Active", 3: "Active"}}),
            "b": _collection(1, {0: {1: "Active", 4: "Active"}, 1: {2: "Active", 3: "Active"}}),
        },
    )
    moves = plan_drain(view, 1)
    assert len(moves) == 3
    for m in moves:
        held = {
            r.peer_id for r in view.replicas() if (r.collection, r.shard_id) == (m.collection, m.shard_id)
        }
        assert m.from_peer == 1 and m.to_peer not in held
    # loads before: 2 -> 2, 3 -> 2, 4 -> 1; three moves land one on each peer
    assert sorted(m.to_peer for m in moves) == [2, 3, 4]


def test_drain_plan_refusals() -> None:
    full = ClusterView("u", _cluster([1, 2]), {"a": _collection(1, {0: {1: "Active", 2: "Active"}})})
    with pytest.raises(DrainRefused, match="replication factor"):
        plan_drain(full, 1)
    with pytest.raises(DrainRefused, match="not a member"):
        plan_drain(full, 9)
    assert plan_drain(ClusterView("u", _cluster([1, 2, 3]), {}), 3) == []


def test_a_move_is_over_once_the_source_is_gone_and_the_target_active() -> None:
    move = Move("a", 0, 1, 3)
    assert not moved(_collection(2, {0: {1: "Active", 3: "Partial"}}), "a", move)
    assert not moved(_collection(2, {0: {3: "Partial"}}), "a", move)
    assert moved(_collection(2, {0: {2: "Active", 3: "Active"}}), "a", move)


def test_requests_have_qdrants_shapes() -> None:
    assert shard_request("move_shard", 2, from_peer=1, to_peer=3, method="snapshot") == {
        "move_shard": {"shard_id": 2, "from_peer_id": 1, "to_peer_id": 3, "method": "snapshot"}
    }
    assert shard_request("replicate_shard", 0, from_peer=1, to_peer=2) == {
        "replicate_shard": {"shard_id": 0, "from_peer_id": 1, "to_peer_id": 2}
    }
    assert shard_request("abort_transfer", 0, from_peer=1, to_peer=2, method="snapshot") == {
        "abort_transfer": {"shard_id": 0, "from_peer_id": 1, "to_peer_id": 2}
    }
    assert shard_request("drop_replica", 4, peer=7) == {"drop_replica": {"shard_id": 4, "peer_id": 7}}


def _text(renderable: Any) -> str:
    out = io.StringIO()
    Console(file=out, width=120, color_system=None).print(renderable)
    return out.getvalue()


def test_status_tree_shows_peers_leader_and_replica_states() -> None:
    transfer = {"shard_id": 0, "from": 1, "to": 3, "sync": False, "method": "snapshot"}
    view = ClusterView(
        "http://x:6333",
        _cluster([1, 2, 3]),
        {"docs": _collection(1, {0: {1: "Active", 2: "Dead"}}, [transfer])},
    )
    text = _text(render.status_tree(view))
    assert "term 3, commit 40, leader 1" in text
    assert "http://p2:6335" in text and "[leader, answering]" in text
    assert "docs" in text and "shard 0" in text
    assert "peer 1  Active  local, 10 points" in text and "peer 2  Dead" in text
    assert "docs/0: 1 -> 3 move (snapshot)" in text


def test_progress_bars_follow_the_comment() -> None:
    out = io.StringIO()
    progress = render.transfer_progress(Console(file=out, width=160, color_system=None))
    bar = render.new_bar(progress, "docs/0: 1 -> 3")
    t = ShardTransfer.model_validate(
        {
            "shard_id": 0,
            "from": 1,
            "to": 3,
            "comment": "transferring (2.00s) | Transferring records (250/1000), ETA: 6.00s",
        }
    )
    render.show_transfer(progress, bar, t)
    task = progress.tasks[bar]
    assert (task.completed, task.total, task.fields["eta"], task.fields["stage"]) == (
        250,
        1000,
        6.0,
        "transferring",
    )
    assert "250/1000 records" in _text(progress) and "ETA 6s" in _text(progress)
    render.show_transfer(
        progress, bar, ShardTransfer.model_validate({"shard_id": 0, "from": 1, "to": 3, "comment": "odd"})
    )
    task = progress.tasks[bar]  # no counts in this comment: the last known ones stay
    assert (task.completed, task.total, task.fields["stage"]) == (250, 1000, "odd")
    render.finish_bar(progress, bar)
    assert progress.tasks[bar].finished
