"""What an applied operation changed: :meth:`ClusterState.apply` returns a list of these.

The reactor hands them, in log order, to the table of contents, which turns them into I/O
(create a local shard, start a transfer, ...). Events describe changes, not requests: an event is
only emitted when the state really changed, except the three "nothing happened, and here is why"
events (:class:`OpRejected`, :class:`ReplicaStateStale`, :class:`DuplicateOp`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from qcluster.consensus.operations import ReplicaState, ShardKey, TransferRef

RejectCode = Literal["not_found", "already_exists", "bad_input"]


@dataclass(frozen=True, slots=True)
class Event:
    pass


@dataclass(frozen=True, slots=True)
class PeerAdded(Event):
    peer_id: int
    uri: str


@dataclass(frozen=True, slots=True)
class PeerRemoved(Event):
    peer_id: int


@dataclass(frozen=True, slots=True)
class PeerUriChanged(Event):
    peer_id: int
    old_uri: str
    uri: str


@dataclass(frozen=True, slots=True)
class CollectionCreated(Event):
    name: str


@dataclass(frozen=True, slots=True)
class CollectionUpdated(Event):
    name: str
    config_diff: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CollectionDeleted(Event):
    name: str


@dataclass(frozen=True, slots=True)
class AliasCreated(Event):
    alias: str
    collection: str


@dataclass(frozen=True, slots=True)
class AliasDeleted(Event):
    alias: str
    collection: str


@dataclass(frozen=True, slots=True)
class ReplicaStateChanged(Event):
    """``old_state`` is None when the replica was created by this change."""

    collection: str
    shard_id: int
    peer_id: int
    old_state: ReplicaState | None
    state: ReplicaState


@dataclass(frozen=True, slots=True)
class ReplicaRemoved(Event):
    collection: str
    shard_id: int
    peer_id: int
    old_state: ReplicaState


@dataclass(frozen=True, slots=True)
class ReplicaStateStale(Event):
    """A replica change named a ``from_state`` the replica is no longer in (None: no replica)."""

    collection: str
    shard_id: int
    peer_id: int
    expected: ReplicaState | None
    actual: ReplicaState | None


@dataclass(frozen=True, slots=True)
class ReplicaChangeRefused(Event):
    """A replica change made for a write was refused: none of the replicas holding the write
    (``holders``) takes writes any more, so the write must not be acknowledged."""

    collection: str
    shard_id: int
    peer_id: int
    holders: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class TransferStarted(Event):
    transfer: TransferRef
    method: str
    sync: bool


@dataclass(frozen=True, slots=True)
class TransferFinished(Event):
    transfer: TransferRef


@dataclass(frozen=True, slots=True)
class TransferAborted(Event):
    transfer: TransferRef
    reason: str


@dataclass(frozen=True, slots=True)
class ShardKeyCreated(Event):
    collection: str
    shard_key: ShardKey
    shard_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ShardKeyDeleted(Event):
    collection: str
    shard_key: ShardKey
    shard_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class MetadataChanged(Event):
    """``value`` None: the key was deleted."""

    key: str
    value: Any


@dataclass(frozen=True, slots=True)
class OpRejected(Event):
    """The operation was not valid against the state it met; nothing changed."""

    code: RejectCode
    message: str


@dataclass(frozen=True, slots=True)
class DuplicateOp(Event):
    """The request id was applied before; nothing changed."""

    request_id: str


@dataclass(frozen=True, slots=True)
class StateReset(Event):
    """This peer replaced its whole state with a snapshot (restart or install from the leader).
    Listeners reconcile against the new state instead of replaying individual changes."""

    index: int
