"""ClusterState.apply for every operation, with no sockets."""

from __future__ import annotations

import orjson
import pytest

from qcluster.consensus import events as ev
from qcluster.consensus import operations as ops
from qcluster.consensus.op_codec import decode_op, encode_op
from qcluster.consensus.operations import ReplicaState as RS
from qcluster.consensus.operations import TransferRef
from qcluster.consensus.state import ClusterState
from qcluster.errors import BadInputError

A, B, C = 101, 202, 303


def cluster(*peers: int) -> ClusterState:
    state = ClusterState()
    for p in peers:
        assert state.apply(ops.add_peer(p, f"http://10.0.0.{p % 250}:6335")) == [
            ev.PeerAdded(p, f"http://10.0.0.{p % 250}:6335")
        ]
    return state


def with_collection(state: ClusterState, name: str = "c", initial: RS = RS.ACTIVE) -> ClusterState:
    placement = {0: (A, B), 1: (B, C)}
    state.apply(ops.create_collection(name, {"vectors": {"size": 4}}, placement, initial))
    return state


def rejected(events: list[ev.Event], code: str) -> bool:
    return len(events) == 1 and isinstance(events[0], ev.OpRejected) and events[0].code == code


def test_peers_add_update_remove() -> None:
    s = cluster(A, B)
    assert s.apply(ops.add_peer(A, "http://10.0.0.101:6335")) == []  # same uri again: no change
    assert rejected(s.apply(ops.add_peer(A, "http://elsewhere:1")), "already_exists")
    assert s.apply(ops.update_peer_uri(A, "http://new:6335")) == [
        ev.PeerUriChanged(A, "http://10.0.0.101:6335", "http://new:6335")
    ]
    assert s.peers[A] == "http://new:6335"
    assert rejected(s.apply(ops.update_peer_uri(999, "http://x:1")), "not_found")
    assert s.apply(ops.remove_peer(B)) == [ev.PeerRemoved(B)]
    assert list(s.peers) == [A]
    assert rejected(s.apply(ops.remove_peer(B)), "not_found")


def test_remove_peer_drops_its_replicas_and_transfers() -> None:
    s = with_collection(cluster(A, B, C))
    ref = TransferRef("c", 0, A, C)
    s.apply(ops.start_transfer(ref))
    events = s.apply(ops.remove_peer(C))
    assert events[0] == ev.TransferAborted(ref, f"peer {C} removed")
    assert ev.ReplicaRemoved("c", 0, C, RS.PARTIAL) in events
    assert ev.ReplicaRemoved("c", 1, C, RS.ACTIVE) in events
    assert events[-1] == ev.PeerRemoved(C)
    assert s.replicas_on_peer(C) == [] and not s.transfers


def test_create_collection_records_placement_and_events() -> None:
    s = cluster(A, B, C)
    op = ops.create_collection("c", {"vectors": {"size": 4}}, {0: (A, B), 1: (B, C)})
    events = s.apply(op)
    assert events[0] == ev.CollectionCreated("c")
    assert ev.ReplicaStateChanged("c", 1, C, None, RS.INITIALIZING) in events
    assert len(events) == 5
    info = s.collections["c"]
    assert info.created_at == op.created_at
    assert {sid: sorted(sh.replicas) for sid, sh in info.shards.items()} == {0: [A, B], 1: [B, C]}
    assert s.peer_load() == {A: 1, B: 2, C: 1}
    assert rejected(s.apply(ops.create_collection("c", {}, {0: (A,)})), "already_exists")


def test_create_collection_rejects_unknown_peers_and_empty_shards() -> None:
    s = cluster(A)
    assert rejected(s.apply(ops.create_collection("c", {}, {0: (A, 999)})), "bad_input")
    assert rejected(s.apply(ops.create_collection("c", {}, {0: ()})), "bad_input")
    assert "c" not in s.collections


def test_update_collection_deep_merges() -> None:
    s = cluster(A)
    s.apply(ops.create_collection("c", {"hnsw": {"m": 16, "ef": 100}, "rf": 1}, {0: (A,)}))
    assert s.apply(ops.update_collection("c", {"hnsw": {"m": 32}})) == [
        ev.CollectionUpdated("c", {"hnsw": {"m": 32}})
    ]
    assert s.collections["c"].config == {"hnsw": {"m": 32, "ef": 100}, "rf": 1}
    assert rejected(s.apply(ops.update_collection("missing", {})), "not_found")


def test_delete_collection_drops_aliases_and_transfers() -> None:
    s = with_collection(cluster(A, B, C))
    s.apply(ops.create_alias("al", "c"))
    s.apply(ops.start_transfer(TransferRef("c", 0, A, C)))
    events = s.apply(ops.delete_collection("c"))
    assert isinstance(events[0], ev.TransferAborted)
    assert ev.AliasDeleted("al", "c") in events
    assert events[-1] == ev.CollectionDeleted("c")
    assert not s.collections and not s.aliases and not s.transfers
    assert rejected(s.apply(ops.delete_collection("c")), "not_found")


def test_aliases_create_rename_delete() -> None:
    s = with_collection(cluster(A, B, C))
    with_collection(s, "d")
    assert s.apply(ops.create_alias("al", "c")) == [ev.AliasCreated("al", "c")]
    assert s.resolve_collection("al") == "c"
    # re-pointing an existing alias
    assert s.apply(ops.create_alias("al", "d")) == [ev.AliasDeleted("al", "c"), ev.AliasCreated("al", "d")]
    assert s.apply(ops.rename_alias("al", "bl")) == [ev.AliasDeleted("al", "d"), ev.AliasCreated("bl", "d")]
    assert s.aliases == {"bl": "d"}
    assert rejected(s.apply(ops.rename_alias("nope", "x")), "not_found")
    assert rejected(s.apply(ops.create_alias("x", "missing")), "not_found")
    assert rejected(s.apply(ops.create_alias("c", "d")), "bad_input")  # alias named like a collection
    assert s.apply(ops.delete_alias("bl")) == [ev.AliasDeleted("bl", "d")]
    assert rejected(s.apply(ops.delete_alias("bl")), "not_found")
    assert s.resolve_collection("bl") is None


def test_alias_actions_are_atomic() -> None:
    s = with_collection(cluster(A, B, C))
    s.apply(ops.create_alias("keep", "c"))
    op = ops.change_aliases(
        ops.AliasAction(ops.AliasActionKind.DELETE, "keep"),
        ops.AliasAction(ops.AliasActionKind.CREATE, "new", collection="missing"),
    )
    assert rejected(s.apply(op), "not_found")
    assert s.aliases == {"keep": "c"}  # the delete before the failing create did not happen


def test_set_replica_state_with_from_state() -> None:
    s = with_collection(cluster(A, B, C))
    assert s.apply(ops.set_replica_state("c", 0, A, RS.DEAD, RS.ACTIVE)) == [
        ev.ReplicaStateChanged("c", 0, A, RS.ACTIVE, RS.DEAD)
    ]
    # stale: A is Dead now, not Active
    stale = s.apply(ops.set_replica_state("c", 0, A, RS.PARTIAL, RS.ACTIVE))
    assert stale == [ev.ReplicaStateStale("c", 0, A, RS.ACTIVE, RS.DEAD)]
    assert s.replica_state("c", 0, A) is RS.DEAD
    # no replica yet + expected state: stale; from_state=None creates it
    assert s.apply(ops.set_replica_state("c", 0, C, RS.ACTIVE, RS.DEAD)) == [
        ev.ReplicaStateStale("c", 0, C, RS.DEAD, None)
    ]
    assert s.apply(ops.set_replica_state("c", 0, C, RS.LISTENER, None)) == [
        ev.ReplicaStateChanged("c", 0, C, None, RS.LISTENER)
    ]
    assert s.apply(ops.set_replica_state("c", 0, C, RS.LISTENER, None)) == []  # already there
    assert rejected(s.apply(ops.set_replica_state("c", 9, A, RS.ACTIVE, None)), "not_found")
    assert rejected(s.apply(ops.set_replica_state("c", 0, 999, RS.ACTIVE, None)), "bad_input")


def test_remove_replica() -> None:
    s = with_collection(cluster(A, B, C))
    assert s.apply(ops.remove_replica("c", 0, A, RS.DEAD)) == [
        ev.ReplicaStateStale("c", 0, A, RS.DEAD, RS.ACTIVE)
    ]
    assert s.apply(ops.remove_replica("c", 0, A, RS.ACTIVE)) == [ev.ReplicaRemoved("c", 0, A, RS.ACTIVE)]
    assert s.apply(ops.remove_replica("c", 0, A)) == [ev.ReplicaStateStale("c", 0, A, None, None)]


def test_transfer_move_lifecycle() -> None:
    s = with_collection(cluster(A, B, C))
    ref = TransferRef("c", 0, A, C)
    assert s.apply(ops.start_transfer(ref, "snapshot", sync=False)) == [
        ev.TransferStarted(ref, "snapshot", False),
        ev.ReplicaStateChanged("c", 0, C, None, RS.PARTIAL),
    ]
    assert rejected(s.apply(ops.start_transfer(ref)), "already_exists")
    assert s.apply(ops.finish_transfer(ref)) == [
        ev.TransferFinished(ref),
        ev.ReplicaStateChanged("c", 0, C, RS.PARTIAL, RS.ACTIVE),
        ev.ReplicaRemoved("c", 0, A, RS.ACTIVE),
    ]
    assert sorted(s.collections["c"].shards[0].replicas) == [B, C]
    assert rejected(s.apply(ops.finish_transfer(ref)), "not_found")


def test_transfer_replicate_keeps_source_and_abort_restores() -> None:
    s = with_collection(cluster(A, B, C))
    ref = TransferRef("c", 0, A, C)
    s.apply(ops.start_transfer(ref, sync=True))
    assert s.apply(ops.abort_transfer(ref, "disk full")) == [
        ev.TransferAborted(ref, "disk full"),
        ev.ReplicaRemoved("c", 0, C, RS.PARTIAL),  # the target replica was created for it
    ]
    # a Dead replica that is being recovered goes back to Dead on abort
    s.apply(ops.set_replica_state("c", 0, B, RS.DEAD, RS.ACTIVE))
    ref_b = TransferRef("c", 0, A, B)
    s.apply(ops.start_transfer(ref_b, sync=True))
    assert s.apply(ops.abort_transfer(ref_b, "x"))[1] == ev.ReplicaStateChanged(
        "c", 0, B, RS.PARTIAL, RS.DEAD
    )
    s.apply(ops.start_transfer(ref_b, sync=True))
    s.apply(ops.finish_transfer(ref_b))
    assert s.collections["c"].shards[0].replicas == {A: RS.ACTIVE, B: RS.ACTIVE}


def test_finishing_only_promotes_a_target_that_is_still_partial() -> None:
    s = with_collection(cluster(A, B, C))
    ref = TransferRef("c", 0, A, C)
    s.apply(ops.start_transfer(ref, sync=False))
    # a write failed on the target meanwhile: it was marked Dead and may miss that write
    s.apply(ops.set_replica_state("c", 0, C, RS.DEAD, RS.PARTIAL))
    assert rejected(s.apply(ops.finish_transfer(ref)), "bad_input")
    replicas = s.collections["c"].shards[0].replicas
    assert replicas[A] is RS.ACTIVE and replicas[C] is RS.DEAD  # the move's source is kept
    assert ref in s.transfers  # still there for the driver to abort


def test_deactivating_a_transfer_source_ends_its_transfers() -> None:
    # chaos (quick campaign, seed 1601): the source proposed its finish, then a write failed on it
    # and was acknowledged by the other replica after the source was marked Dead; the finish,
    # applied after that, made Active a target that never saw the write (the source had not)
    s = with_collection(cluster(A, B, C))
    s.apply(ops.set_replica_state("c", 0, B, RS.DEAD, RS.ACTIVE))
    to_b, to_c = TransferRef("c", 0, A, B), TransferRef("c", 0, A, C)
    s.apply(ops.start_transfer(to_b, sync=True))
    s.apply(ops.start_transfer(to_c, sync=True))
    events = s.apply(ops.set_replica_state("c", 0, A, RS.DEAD, RS.ACTIVE))
    assert events[0] == ev.ReplicaStateChanged("c", 0, A, RS.ACTIVE, RS.DEAD)
    assert [type(e) for e in events[1:]] == [
        ev.TransferAborted,
        ev.ReplicaStateChanged,
        ev.TransferAborted,
        ev.ReplicaRemoved,
    ]
    assert events[2] == ev.ReplicaStateChanged("c", 0, B, RS.PARTIAL, RS.DEAD)  # Dead again
    assert events[4] == ev.ReplicaRemoved("c", 0, C, RS.PARTIAL)  # made for the transfer
    assert not s.transfers
    assert rejected(s.apply(ops.finish_transfer(to_b)), "not_found")
    assert s.collections["c"].shards[0].replicas == {A: RS.DEAD, B: RS.DEAD}
    # a transfer of another shard from the same peer goes on
    s = with_collection(cluster(A, B, C))
    other = TransferRef("c", 1, B, A)
    s.apply(ops.start_transfer(other, sync=True))
    assert len(s.apply(ops.set_replica_state("c", 0, B, RS.DEAD, RS.ACTIVE))) == 1
    assert other in s.transfers


def test_a_finished_move_ends_the_other_transfers_from_its_source() -> None:
    s = with_collection(cluster(A, B, C))
    s.apply(ops.set_replica_state("c", 0, B, RS.DEAD, RS.ACTIVE))
    move, copy = TransferRef("c", 0, A, C), TransferRef("c", 0, A, B)
    s.apply(ops.start_transfer(move, sync=False))
    s.apply(ops.start_transfer(copy, sync=True))
    events = s.apply(ops.finish_transfer(move))
    assert ev.ReplicaRemoved("c", 0, A, RS.ACTIVE) in events
    assert events[-2:] == [
        ev.TransferAborted(copy, f"the source replica on peer {A} moved away"),
        ev.ReplicaStateChanged("c", 0, B, RS.PARTIAL, RS.DEAD),
    ]
    assert not s.transfers


def test_a_finish_needs_an_active_source() -> None:
    s = with_collection(cluster(A, B, C))
    ref = TransferRef("c", 0, A, C)
    s.apply(ops.start_transfer(ref, sync=True))
    s.collections["c"].shards[0].replicas[A] = RS.DEAD  # as if it left Active some other way
    assert rejected(s.apply(ops.finish_transfer(ref)), "bad_input")
    assert s.collections["c"].shards[0].replicas[C] is RS.PARTIAL


def test_transfer_rejections() -> None:
    s = with_collection(cluster(A, B, C))
    assert rejected(s.apply(ops.start_transfer(TransferRef("c", 0, A, A))), "bad_input")
    assert rejected(s.apply(ops.start_transfer(TransferRef("c", 0, C, A))), "bad_input")  # C holds no replica
    assert rejected(s.apply(ops.start_transfer(TransferRef("c", 0, A, B))), "already_exists")  # B is active
    assert rejected(s.apply(ops.start_transfer(TransferRef("c", 0, A, 999))), "bad_input")
    assert rejected(s.apply(ops.abort_transfer(TransferRef("c", 0, A, C), "r")), "not_found")


def test_shard_keys() -> None:
    s = cluster(A, B)
    s.apply(ops.create_collection("c", {"sharding_method": "custom"}, {}))
    assert s.apply(ops.create_shard_key("c", "eu", {0: (A, B)})) == [
        ev.ShardKeyCreated("c", "eu", (0,)),
        ev.ReplicaStateChanged("c", 0, A, None, RS.ACTIVE),
        ev.ReplicaStateChanged("c", 0, B, None, RS.ACTIVE),
    ]
    assert rejected(s.apply(ops.create_shard_key("c", "eu", {1: (A,)})), "already_exists")
    assert rejected(s.apply(ops.create_shard_key("c", "us", {0: (A,)})), "bad_input")  # shard id reused
    s.apply(ops.create_shard_key("c", 7, {1: (B,), 2: (A,)}))
    assert s.collections["c"].shards[2].shard_key == 7
    events = s.apply(ops.delete_shard_key("c", 7))
    assert events[-1] == ev.ShardKeyDeleted("c", 7, (1, 2))
    assert sorted(s.collections["c"].shards) == [0]
    assert rejected(s.apply(ops.delete_shard_key("c", 7)), "not_found")


def test_metadata_keys() -> None:
    s = ClusterState()
    assert s.apply(ops.set_metadata("k", {"a": [1, 2]})) == [ev.MetadataChanged("k", {"a": [1, 2]})]
    assert s.metadata == {"k": {"a": [1, 2]}}
    assert s.apply(ops.delete_metadata("k")) == [ev.MetadataChanged("k", None)]
    assert s.apply(ops.delete_metadata("k")) == []
    assert rejected(s.apply(ops.set_metadata("", 1)), "bad_input")


def test_duplicate_request_ids_are_ignored() -> None:
    s = cluster(A)
    op = ops.create_collection("c", {}, {0: (A,)})
    first = s.apply(op)
    assert first[0] == ev.CollectionCreated("c")
    s.apply(ops.delete_collection("c"))
    assert s.apply(op) == [ev.DuplicateOp(op.request_id)]  # a retry after a delete does not resurrect
    assert "c" not in s.collections
    # rejected operations are remembered too: the retry of a rejected op stays a no-op
    bad = ops.delete_collection("missing")
    assert rejected(s.apply(bad), "not_found")
    assert s.apply(bad) == [ev.DuplicateOp(bad.request_id)]


def test_dedup_table_is_bounded_and_deterministic() -> None:
    s = ClusterState(dedup_capacity=3)
    sent = [ops.set_metadata(f"k{i}", i) for i in range(5)]
    for op in sent:
        s.apply(op)
    assert list(s.applied_requests) == [op.request_id for op in sent[2:]]
    assert s.apply(sent[0]) == [ev.MetadataChanged("k0", 0)]  # evicted: applies again


def test_state_roundtrips_through_bytes_and_replays_identically() -> None:
    s = with_collection(cluster(A, B, C))
    s.apply(ops.create_alias("al", "c"))
    s.apply(ops.start_transfer(TransferRef("c", 1, B, A), "snapshot"))
    s.apply(ops.set_metadata("m", [1, "x", None]))
    s.apply(ops.create_collection("k", {}, {}))
    s.apply(ops.create_shard_key("k", 3, {0: (A,)}))
    copy = ClusterState.from_bytes(s.to_bytes())
    assert copy == s
    assert copy.to_bytes() == s.to_bytes()
    nxt = ops.remove_peer(B)
    assert copy.apply(nxt) == s.apply(nxt)
    assert copy == s


def test_every_operation_roundtrips_through_its_encoding() -> None:
    ref = TransferRef("c", 1, A, B)
    samples: list[ops.Op] = [
        ops.add_peer(A, "http://a:1"),
        ops.remove_peer(A),
        ops.update_peer_uri(A, "http://b:2"),
        ops.create_collection("c", {"x": {"y": 1}}, {0: (A, B), 3: (C,)}),
        ops.update_collection("c", {"x": 2}),
        ops.delete_collection("c"),
        ops.create_alias("a", "c"),
        ops.rename_alias("a", "b"),
        ops.delete_alias("b"),
        ops.set_replica_state("c", 0, A, RS.DEAD, RS.ACTIVE),
        ops.set_replica_state("c", 0, A, RS.ACTIVE, None),
        ops.remove_replica("c", 0, A, RS.DEAD),
        ops.start_transfer(ref, "wal_delta", sync=True),
        ops.finish_transfer(ref),
        ops.abort_transfer(ref, "why"),
        ops.create_shard_key("c", "k", {4: (A,)}),
        ops.delete_shard_key("c", 12),
        ops.set_metadata("k", {"v": [1]}),
        ops.delete_metadata("k"),
    ]
    for op in samples:
        assert decode_op(encode_op(op)) == op


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b"not json", "op"),
        (b'{"kind": "nope", "request_id": "r"}', "kind"),
        (b'{"kind": "remove_peer", "request_id": ""}', "request_id"),
        (b'{"kind": "remove_peer", "request_id": "r", "peer_id": 0}', "peer_id"),
        (b'{"kind": "remove_peer", "request_id": "r", "peer_id": 9007199254740993}', "peer_id"),
        (
            b'{"kind": "set_replica_state", "request_id": "r", "collection": "c", "shard_id": 0,'
            b' "peer_id": 1, "state": "Zombie", "from_state": null}',
            "state",
        ),
        (
            b'{"kind": "create_collection", "request_id": "r", "name": "c", "config": {},'
            b' "placement": [[0, [1, 1]]], "created_at": 1, "initial_state": "Active"}',
            "placement",
        ),
    ],
)
def test_decode_rejects_bad_operations_naming_the_field(raw: bytes, field: str) -> None:
    from qcluster.errors import BadInputError

    with pytest.raises(BadInputError) as info:
        decode_op(raw)
    assert info.value.field == field


def test_a_write_coordinator_cannot_deactivate_the_replicas_left_holding_its_write() -> None:
    """Two coordinators with stale views each mark the other's replica Dead for a write only
    their own took: the second change is refused (its write must fail), so the shard keeps an
    Active replica and no acknowledged write is held by Dead replicas only."""
    s = with_collection(cluster(A, B, C))  # shard 0 on A and B, Active
    # A took a write B failed: B Dead, A (the holder) Active
    assert s.apply(ops.set_replica_state("c", 0, B, RS.DEAD, RS.ACTIVE, holders=(A,))) == [
        ev.ReplicaStateChanged("c", 0, B, RS.ACTIVE, RS.DEAD)
    ]
    # B, not yet knowing it is Dead, took a write A failed: refused, A stays Active
    refused = s.apply(ops.set_replica_state("c", 0, A, RS.DEAD, RS.ACTIVE, holders=(B,)))
    assert refused == [ev.ReplicaChangeRefused("c", 0, A, (B,))]
    assert s.replica_state("c", 0, A) is RS.ACTIVE
    # refused even when the failed replica is already Dead: the holders decide for the write
    assert s.apply(ops.set_replica_state("c", 0, B, RS.DEAD, RS.ACTIVE, holders=(B,))) == [
        ev.ReplicaChangeRefused("c", 0, B, (B,))
    ]
    # without holders (an operator's or a recovery's change) the old rule holds
    assert s.apply(ops.set_replica_state("c", 0, A, RS.DEAD, RS.ACTIVE)) == [
        ev.ReplicaStateChanged("c", 0, A, RS.ACTIVE, RS.DEAD)
    ]
    # Initializing replicas take writes too (a new collection)
    t = with_collection(cluster(A, B, C), initial=RS.INITIALIZING)
    assert t.apply(ops.set_replica_state("c", 1, C, RS.DEAD, RS.INITIALIZING, holders=(B,))) == [
        ev.ReplicaStateChanged("c", 1, C, RS.INITIALIZING, RS.DEAD)
    ]


def test_a_holder_rebuilt_since_the_write_does_not_count() -> None:
    """Chaos, points-partition seed 16: B, cut off, took a write alone and asked to mark A Dead;
    meanwhile the others marked B Dead and rebuilt it from A (without the write). B's request,
    applied after that, must be refused: B no longer holds the write."""
    s = with_collection(cluster(A, B, C))  # shard 0 on A and B, Active
    seen = s.collections["c"].shards[0].since[B]  # B's view when it sent the write
    assert s.collections["c"].shards[0].since[A] == seen  # both created by the same operation
    s.apply(ops.set_replica_state("c", 0, B, RS.DEAD, RS.ACTIVE, holders=(A,)))
    rebuild = TransferRef("c", 0, A, B)
    s.apply(ops.start_transfer(rebuild, sync=True))
    s.apply(ops.finish_transfer(rebuild))
    assert s.replica_state("c", 0, B) is RS.ACTIVE
    assert s.collections["c"].shards[0].since[B] > seen
    late = ops.set_replica_state("c", 0, A, RS.DEAD, RS.ACTIVE, holders=(B,), holders_since=(seen,))
    assert s.apply(late) == [ev.ReplicaChangeRefused("c", 0, A, (B,))]
    assert s.replica_state("c", 0, A) is RS.ACTIVE
    # a holder unchanged since the coordinator's view counts
    now = s.collections["c"].shards[0].since[B]
    fresh = ops.set_replica_state("c", 0, A, RS.DEAD, RS.ACTIVE, holders=(B,), holders_since=(now,))
    assert s.apply(fresh) == [ev.ReplicaStateChanged("c", 0, A, RS.ACTIVE, RS.DEAD)]
    # the versions survive a snapshot of the state
    back = ClusterState.from_bytes(s.to_bytes())
    assert (
        back.version == s.version
        and back.collections["c"].shards[0].since == s.collections["c"].shards[0].since
    )
    # a removed replica has no version
    s.apply(ops.remove_replica("c", 0, A))
    assert A not in s.collections["c"].shards[0].since


def test_holders_travel_through_the_codec() -> None:
    op = ops.set_replica_state("c", 0, A, RS.DEAD, RS.ACTIVE, holders=(B, C))
    back = decode_op(encode_op(op))
    assert back == op
    plain = ops.set_replica_state("c", 0, A, RS.DEAD, RS.ACTIVE)
    assert "holders" not in plain.payload() and decode_op(encode_op(plain)) == plain
    versioned = ops.set_replica_state("c", 0, A, RS.DEAD, RS.ACTIVE, holders=(B, C), holders_since=(4, 9))
    assert decode_op(encode_op(versioned)) == versioned
    raw = orjson.loads(encode_op(versioned))
    raw["holders_since"] = [4]  # one version per holder
    with pytest.raises(BadInputError) as err:
        decode_op(orjson.dumps(raw))
    assert err.value.field == "holders_since"


def test_a_replica_rebuilt_since_the_writes_view_blocks_its_deactivations() -> None:
    """Chaos quick seed 1913: C, cut off, took a write alone (A failed it, B was Dead in its view)
    and asked to mark A Dead. Meanwhile the others rebuilt B from A, without the write, and made
    it Active. C's request, applied after that, must be refused (B may lack the write), although
    its holder C is unchanged."""
    s = with_collection(cluster(A, B, C))  # shard 0 on A and B, Active
    grow = TransferRef("c", 0, A, C)
    s.apply(ops.start_transfer(grow, sync=True))
    s.apply(ops.finish_transfer(grow))
    s.apply(ops.set_replica_state("c", 0, B, RS.DEAD, RS.ACTIVE))
    shard = s.collections["c"].shards[0]
    seen = dict(shard.since)  # C's view when it sent the write
    rebuild = TransferRef("c", 0, A, B)
    s.apply(ops.start_transfer(rebuild, sync=True))
    s.apply(ops.finish_transfer(rebuild))
    assert s.replica_state("c", 0, B) is RS.ACTIVE and shard.since[B] != seen[B]

    def mark_a(b_since: int) -> ops.SetReplicaState:
        return ops.set_replica_state(
            "c", 0, A, RS.DEAD, RS.ACTIVE, (C,), (seen[C],), view=(A, B), view_since=(seen[A], b_since)
        )

    assert s.apply(mark_a(seen[B])) == [ev.ReplicaChangeRefused("c", 0, A, (C,))]
    assert s.replica_state("c", 0, A) is RS.ACTIVE
    # a view in which B is as it is now: A is marked
    assert s.apply(mark_a(shard.since[B])) == [ev.ReplicaStateChanged("c", 0, A, RS.ACTIVE, RS.DEAD)]
    # a replica that takes writes but was not in the view at all also refuses
    s.apply(ops.set_replica_state("c", 0, A, RS.ACTIVE, RS.DEAD))
    unseen = ops.set_replica_state(
        "c", 0, A, RS.DEAD, RS.ACTIVE, (C,), (seen[C],), view=(A,), view_since=(shard.since[A],)
    )
    assert s.apply(unseen) == [ev.ReplicaChangeRefused("c", 0, A, (C,))]


def test_a_writes_view_travels_through_the_codec() -> None:
    op = ops.set_replica_state("c", 0, A, RS.DEAD, RS.ACTIVE, (B,), (3,), view=(A, C), view_since=(1, 2))
    assert decode_op(encode_op(op)) == op
    raw = orjson.loads(encode_op(op))
    raw["view_since"] = [1]  # one version per replica of the view
    with pytest.raises(BadInputError) as err:
        decode_op(orjson.dumps(raw))
    assert err.value.field == "view_since"
