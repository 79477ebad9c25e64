"""ClusterState's handlers for replica states and shard transfers (``state.py`` dispatches to
them; the same rules: pure, validate first, mutate last)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from qcluster.consensus import events as ev
from qcluster.consensus import operations as ops
from qcluster.consensus.operations import ReplicaState, TransferRef
from qcluster.consensus.state_records import Reject, ShardInfo, TransferInfo, transfer_sort_key

if TYPE_CHECKING:
    from qcluster.consensus.state import ClusterState


_TAKING_WRITES = frozenset({ReplicaState.ACTIVE, ReplicaState.INITIALIZING})


def set_replica_state(s: ClusterState, op: ops.SetReplicaState) -> list[ev.Event]:
    shard = s._shard(op.collection, op.shard_id)
    if op.peer_id not in s.peers:
        raise Reject("bad_input", f"peer {op.peer_id} doesn't exist")
    current = shard.replicas.get(op.peer_id)
    if op.holders and not any(_still_holds(shard, op, i) for i in range(len(op.holders))):
        # checked first: a write whose holders were all deactivated meanwhile (by coordinators
        # that did not know of each other), or rebuilt since, must fail, whatever became of the
        # failed replica
        return [ev.ReplicaChangeRefused(op.collection, op.shard_id, op.peer_id, op.holders)]
    if op.holders and op.view and _changed_since_view(shard, op):
        return [ev.ReplicaChangeRefused(op.collection, op.shard_id, op.peer_id, op.holders)]
    if op.from_state is not None and current != op.from_state:
        return [ev.ReplicaStateStale(op.collection, op.shard_id, op.peer_id, op.from_state, current)]
    if current == op.state:
        return []
    shard.replicas[op.peer_id] = op.state
    out: list[ev.Event] = [ev.ReplicaStateChanged(op.collection, op.shard_id, op.peer_id, current, op.state)]
    if current is ReplicaState.ACTIVE:
        # A source that stops taking writes stops forwarding them: its targets would miss every
        # write acknowledged without it, so their transfers end here (not at a finish that the
        # source proposed before it was deactivated and that may still be in the log).
        out += _end_sending(s, op.collection, op.shard_id, op.peer_id, f"became {op.state.value}")
    return out


def _end_sending(s: ClusterState, collection: str, shard_id: int, peer: int, why: str) -> list[ev.Event]:
    """Abort every transfer of the shard whose source is ``peer``'s replica."""
    sending = [
        r for r in s.transfers if (r.collection, r.shard_id, r.from_peer) == (collection, shard_id, peer)
    ]
    out: list[ev.Event] = []
    for ref in sorted(sending, key=transfer_sort_key):
        out += _end_transfer(s, ref, f"the source replica on peer {peer} {why}")
    return out


def _still_holds(shard: ShardInfo, op: ops.SetReplicaState, i: int) -> bool:
    """Holder ``i`` still takes writes and has not changed state since the coordinator's view (a
    replica Dead and then filled by a transfer may no longer hold the write: chaos, points-partition
    seed 16: a coordinator cut off with the only copy of a write had its replica rebuilt from
    the others before its proposals to mark them Dead were applied)."""
    peer = op.holders[i]
    if peer == op.peer_id or shard.replicas.get(peer) not in _TAKING_WRITES:
        return False
    return not op.holders_since or shard.since.get(peer, 0) == op.holders_since[i]


def _changed_since_view(shard: ShardInfo, op: ops.SetReplicaState) -> bool:
    """A replica takes writes now, is not a holder, and was not in the coordinator's view or
    changed state since (chaos quick seed 1913: a coordinator cut off with a write that only its
    own replica took proposed to mark the other Active one Dead; meanwhile the third, Dead in its
    view, was rebuilt from that other one, without the write, and made Active)."""
    seen = dict(zip(op.view, op.view_since, strict=True))
    for peer, state in shard.replicas.items():
        if peer == op.peer_id or peer in op.holders or state not in _TAKING_WRITES:
            continue
        if peer not in seen or shard.since.get(peer, 0) != seen[peer]:
            return True
    return False


def remove_replica(s: ClusterState, op: ops.RemoveReplica) -> list[ev.Event]:
    shard = s._shard(op.collection, op.shard_id)
    current = shard.replicas.get(op.peer_id)
    if current is None or (op.from_state is not None and current != op.from_state):
        return [ev.ReplicaStateStale(op.collection, op.shard_id, op.peer_id, op.from_state, current)]
    out = s._drop_transfers(
        lambda t: (
            (t.collection, t.shard_id) == (op.collection, op.shard_id)
            and op.peer_id in (t.from_peer, t.to_peer)
        ),
        f"replica of peer {op.peer_id} removed",
    )
    del shard.replicas[op.peer_id]
    out.append(ev.ReplicaRemoved(op.collection, op.shard_id, op.peer_id, current))
    return out


def start_transfer(s: ClusterState, op: ops.StartTransfer) -> list[ev.Event]:
    t = op.transfer
    shard = s._shard(t.collection, t.shard_id)
    if t.from_peer == t.to_peer:
        raise Reject("bad_input", "a transfer needs two different peers")
    if t.to_peer not in s.peers:
        raise Reject("bad_input", f"target peer {t.to_peer} doesn't exist")
    if shard.replicas.get(t.from_peer) is not ReplicaState.ACTIVE:
        raise Reject("bad_input", f"peer {t.from_peer} has no active replica of shard {t.shard_id} to send")
    busy = [
        r
        for r in s.transfers
        if (r.collection, r.shard_id) == (t.collection, t.shard_id) and t.to_peer == r.to_peer
    ]
    if busy:
        raise Reject("already_exists", f"shard {t.shard_id} is already being transferred to peer {t.to_peer}")
    target = shard.replicas.get(t.to_peer)
    if target is ReplicaState.ACTIVE:
        raise Reject(
            "already_exists", f"peer {t.to_peer} already holds an active replica of shard {t.shard_id}"
        )
    s.transfers[t] = TransferInfo(t, op.method, op.sync, op.started_at, target is None)
    shard.replicas[t.to_peer] = ReplicaState.PARTIAL
    return [
        ev.TransferStarted(t, op.method, op.sync),
        ev.ReplicaStateChanged(t.collection, t.shard_id, t.to_peer, target, ReplicaState.PARTIAL),
    ]


def find_transfer(s: ClusterState, t: TransferRef) -> TransferInfo:
    info = s.transfers.get(t)
    if info is None:
        raise Reject("not_found", f"no transfer of shard {t.shard_id} from {t.from_peer} to {t.to_peer}")
    return info


def finish_transfer(s: ClusterState, op: ops.FinishTransfer) -> list[ev.Event]:
    t = op.transfer
    info = find_transfer(s, t)
    shard = s._shard(t.collection, t.shard_id)
    if shard.replicas.get(t.from_peer) is not ReplicaState.ACTIVE:
        # cannot happen while deactivating a source ends its transfers; kept as the rule itself
        raise Reject("bad_input", f"the source replica on peer {t.from_peer} is no longer Active")
    old = shard.replicas.get(t.to_peer)
    if old is not ReplicaState.PARTIAL:
        # The target was marked Dead (or removed) meanwhile: it may miss writes, so it must not be
        # promoted (nor the source of a move dropped). The driver aborts instead.
        raise Reject("bad_input", f"the target replica on peer {t.to_peer} is {old}, no longer Partial")
    del s.transfers[t]
    out: list[ev.Event] = [ev.TransferFinished(t)]
    shard.replicas[t.to_peer] = ReplicaState.ACTIVE
    out.append(ev.ReplicaStateChanged(t.collection, t.shard_id, t.to_peer, old, ReplicaState.ACTIVE))
    if not info.sync and t.from_peer in shard.replicas:
        out.append(ev.ReplicaRemoved(t.collection, t.shard_id, t.from_peer, shard.replicas.pop(t.from_peer)))
        out += _end_sending(s, t.collection, t.shard_id, t.from_peer, "moved away")
    return out


def abort_transfer(s: ClusterState, op: ops.AbortTransfer) -> list[ev.Event]:
    find_transfer(s, op.transfer)
    return _end_transfer(s, op.transfer, op.reason)


def _end_transfer(s: ClusterState, t: TransferRef, reason: str) -> list[ev.Event]:
    """Abort ``t``: its target goes back to Dead, or is removed when it was made for it."""
    info = s.transfers.pop(t)
    shard = s._shard(t.collection, t.shard_id)
    out: list[ev.Event] = [ev.TransferAborted(t, reason)]
    old = shard.replicas.get(t.to_peer)
    if old is ReplicaState.PARTIAL:
        if info.target_was_new:
            del shard.replicas[t.to_peer]
            out.append(ev.ReplicaRemoved(t.collection, t.shard_id, t.to_peer, old))
        else:
            shard.replicas[t.to_peer] = ReplicaState.DEAD
            out.append(ev.ReplicaStateChanged(t.collection, t.shard_id, t.to_peer, old, ReplicaState.DEAD))
    return out
