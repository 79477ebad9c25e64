"""The records ClusterState is made of (shards, collections, transfers) and the rejection its
handlers raise; kept apart so the handler modules can use them without importing the state."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from qcluster.consensus import events as ev
from qcluster.consensus.operations import ReplicaState, ShardKey, TransferRef


class Reject(Exception):
    """An operation that does not fit the state it meets: the handler changes nothing and `apply`
    answers `OpRejected` with this code and message."""

    def __init__(self, code: ev.RejectCode, message: str) -> None:
        super().__init__(message)
        self.code: ev.RejectCode = code
        self.message = message


@dataclass
class ShardInfo:
    replicas: dict[int, ReplicaState] = field(default_factory=dict)  # peer id -> state
    shard_key: ShardKey | None = None
    # peer id -> the state version (``ClusterState.version``) at which its replica last changed
    # state: a write's coordinator names the versions it saw for the replicas that took the write,
    # and a replica rebuilt since (Dead, then filled again by a transfer) no longer counts for it
    since: dict[int, int] = field(default_factory=dict)


@dataclass
class CollectionInfo:
    name: str
    config: dict[str, Any]
    shards: dict[int, ShardInfo]
    created_at: float


@dataclass
class TransferInfo:
    transfer: TransferRef
    method: str
    sync: bool
    started_at: float
    target_was_new: bool  # the target replica was created for the transfer (abort removes it)


def transfer_sort_key(t: TransferRef) -> tuple[str, int, int, int]:
    """Transfers in a stable order (events of one operation come out the same on every peer)."""
    return (t.collection, t.shard_id, t.from_peer, t.to_peer)
