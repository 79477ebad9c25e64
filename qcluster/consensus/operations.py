"""Typed consensus operations: the only things that change the cluster state.

Every operation carries a ``request_id`` (the proposer retries with the same id; the state ignores
repeats) and everything :meth:`ClusterState.apply` must not invent itself: timestamps, placements,
peer ids. Build operations with the named constructors at the bottom (they draw the request id and
the timestamp); :mod:`op_codec` encodes and decodes them.

Replica changes name the state they expect to replace (``from_state``), so a proposal made on a
stale view is a no-op instead of a regression.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

from qcluster.types import ReplicaState as ReplicaState
from qcluster.types import ShardKey as ShardKey

MAX_PEER_ID = 2**53
# shard id -> the peers that hold a replica of it
Placement = Mapping[int, tuple[int, ...]]


class AliasActionKind(StrEnum):
    CREATE = "create"
    DELETE = "delete"
    RENAME = "rename"


@dataclass(frozen=True, slots=True)
class AliasAction:
    """create: ``alias`` -> ``collection``; delete: ``alias``; rename: ``alias`` -> ``new_alias``."""

    kind: AliasActionKind
    alias: str
    collection: str = ""
    new_alias: str = ""


@dataclass(frozen=True, slots=True)
class Op:
    KIND: ClassVar[str] = ""
    request_id: str

    def payload(self) -> dict[str, Any]:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class AddPeer(Op):
    KIND: ClassVar[str] = "add_peer"
    peer_id: int
    uri: str

    def payload(self) -> dict[str, Any]:
        return {"peer_id": self.peer_id, "uri": self.uri}


@dataclass(frozen=True, slots=True)
class RemovePeer(Op):
    """Removes the peer, its replicas and the transfers that involve it."""

    KIND: ClassVar[str] = "remove_peer"
    peer_id: int

    def payload(self) -> dict[str, Any]:
        return {"peer_id": self.peer_id}


@dataclass(frozen=True, slots=True)
class UpdatePeerUri(Op):
    KIND: ClassVar[str] = "update_peer_uri"
    peer_id: int
    uri: str

    def payload(self) -> dict[str, Any]:
        return {"peer_id": self.peer_id, "uri": self.uri}


@dataclass(frozen=True, slots=True)
class CreateCollection(Op):
    """``config`` is the collection's JSON config (owned by the TOC); ``placement`` was computed
    by :mod:`qcluster.consensus.placement` before proposing."""

    KIND: ClassVar[str] = "create_collection"
    name: str
    config: Mapping[str, Any]
    placement: Placement
    created_at: float
    initial_state: ReplicaState = ReplicaState.INITIALIZING

    def payload(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "config": dict(self.config),
            "placement": _placement_out(self.placement),
            "created_at": self.created_at,
            "initial_state": self.initial_state.value,
        }


@dataclass(frozen=True, slots=True)
class UpdateCollection(Op):
    """``config_diff`` is deep-merged into the config (keys absent from it stay as they were)."""

    KIND: ClassVar[str] = "update_collection"
    name: str
    config_diff: Mapping[str, Any]

    def payload(self) -> dict[str, Any]:
        return {"name": self.name, "config_diff": dict(self.config_diff)}


@dataclass(frozen=True, slots=True)
class DeleteCollection(Op):
    KIND: ClassVar[str] = "delete_collection"
    name: str

    def payload(self) -> dict[str, Any]:
        return {"name": self.name}


@dataclass(frozen=True, slots=True)
class ChangeAliases(Op):
    """All actions apply, in order, or none does."""

    KIND: ClassVar[str] = "change_aliases"
    actions: tuple[AliasAction, ...]

    def payload(self) -> dict[str, Any]:
        return {
            "actions": [
                {"kind": a.kind.value, "alias": a.alias, "collection": a.collection, "new_alias": a.new_alias}
                for a in self.actions
            ]
        }


@dataclass(frozen=True, slots=True)
class SetReplicaState(Op):
    """Set a replica's state if it is currently ``from_state``; ``from_state=None`` means "whatever
    it is, and create the replica if it does not exist"."""

    KIND: ClassVar[str] = "set_replica_state"
    collection: str
    shard_id: int
    peer_id: int
    state: ReplicaState
    from_state: ReplicaState | None
    # The peers whose replicas hold a write this change is made for (a write coordinator marking
    # the replicas that failed it): the change applies only while one of them still takes writes
    # (Active or Initializing), else it is refused and the write must not be acknowledged. Empty:
    # no such condition.
    holders: tuple[int, ...] = ()
    # For each holder, the state version its replica had changed state at in the coordinator's
    # view (``ShardInfo.since``): a holder whose replica changed state since (rebuilt by a
    # transfer after the write) does not count. Empty: not checked (operations logged before).
    holders_since: tuple[int, ...] = ()
    # The other replicas of the shard in the coordinator's view (the failed one included) and the
    # state version each had changed state at: a replica that takes writes now and is neither a
    # holder nor unchanged since that view (a Dead one rebuilt meanwhile from replicas without
    # the write, a transfer target finished since) may lack the write, so the change is refused.
    # Empty: not checked (operations logged before, or no view).
    view: tuple[int, ...] = ()
    view_since: tuple[int, ...] = ()

    def payload(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "collection": self.collection,
            "shard_id": self.shard_id,
            "peer_id": self.peer_id,
            "state": self.state.value,
            "from_state": None if self.from_state is None else self.from_state.value,
        }
        if self.holders:
            out["holders"] = list(self.holders)
        if self.holders_since:
            out["holders_since"] = list(self.holders_since)
        if self.view:
            out["view"] = list(self.view)
            out["view_since"] = list(self.view_since)
        return out


@dataclass(frozen=True, slots=True)
class RemoveReplica(Op):
    KIND: ClassVar[str] = "remove_replica"
    collection: str
    shard_id: int
    peer_id: int
    from_state: ReplicaState | None

    def payload(self) -> dict[str, Any]:
        return {
            "collection": self.collection,
            "shard_id": self.shard_id,
            "peer_id": self.peer_id,
            "from_state": None if self.from_state is None else self.from_state.value,
        }


@dataclass(frozen=True, slots=True)
class TransferRef:
    collection: str
    shard_id: int
    from_peer: int
    to_peer: int


@dataclass(frozen=True, slots=True)
class StartTransfer(Op):
    """Records the transfer and puts the target replica in ``Partial`` (created if absent).
    ``sync=False`` is a move: finishing it drops the source replica."""

    KIND: ClassVar[str] = "start_transfer"
    transfer: TransferRef
    method: str
    sync: bool
    started_at: float

    def payload(self) -> dict[str, Any]:
        return {
            **_transfer_out(self.transfer),
            "method": self.method,
            "sync": self.sync,
            "started_at": self.started_at,
        }


@dataclass(frozen=True, slots=True)
class FinishTransfer(Op):
    KIND: ClassVar[str] = "finish_transfer"
    transfer: TransferRef

    def payload(self) -> dict[str, Any]:
        return _transfer_out(self.transfer)


@dataclass(frozen=True, slots=True)
class AbortTransfer(Op):
    KIND: ClassVar[str] = "abort_transfer"
    transfer: TransferRef
    reason: str

    def payload(self) -> dict[str, Any]:
        return {**_transfer_out(self.transfer), "reason": self.reason}


@dataclass(frozen=True, slots=True)
class CreateShardKey(Op):
    KIND: ClassVar[str] = "create_shard_key"
    collection: str
    shard_key: ShardKey
    placement: Placement
    initial_state: ReplicaState = ReplicaState.ACTIVE

    def payload(self) -> dict[str, Any]:
        return {
            "collection": self.collection,
            "shard_key": self.shard_key,
            "placement": _placement_out(self.placement),
            "initial_state": self.initial_state.value,
        }


@dataclass(frozen=True, slots=True)
class DeleteShardKey(Op):
    KIND: ClassVar[str] = "delete_shard_key"
    collection: str
    shard_key: ShardKey

    def payload(self) -> dict[str, Any]:
        return {"collection": self.collection, "shard_key": self.shard_key}


@dataclass(frozen=True, slots=True)
class SetMetadata(Op):
    KIND: ClassVar[str] = "set_metadata"
    key: str
    value: Any = field(default=None)

    def payload(self) -> dict[str, Any]:
        return {"key": self.key, "value": self.value}


@dataclass(frozen=True, slots=True)
class DeleteMetadata(Op):
    KIND: ClassVar[str] = "delete_metadata"
    key: str

    def payload(self) -> dict[str, Any]:
        return {"key": self.key}


def _placement_out(placement: Placement) -> list[list[Any]]:
    return [[sid, list(peers)] for sid, peers in sorted(placement.items())]


def _transfer_out(t: TransferRef) -> dict[str, Any]:
    return {
        "collection": t.collection,
        "shard_id": t.shard_id,
        "from_peer": t.from_peer,
        "to_peer": t.to_peer,
    }


# ---------------------------------------------------------------------------------------------
# named constructors: they draw the request id and the timestamp, so apply() never has to


def new_request_id() -> str:
    return uuid.uuid4().hex


def add_peer(peer_id: int, uri: str) -> AddPeer:
    return AddPeer(new_request_id(), peer_id, uri)


def remove_peer(peer_id: int) -> RemovePeer:
    return RemovePeer(new_request_id(), peer_id)


def update_peer_uri(peer_id: int, uri: str) -> UpdatePeerUri:
    return UpdatePeerUri(new_request_id(), peer_id, uri)


def create_collection(
    name: str,
    config: Mapping[str, Any],
    placement: Placement,
    initial_state: ReplicaState = ReplicaState.INITIALIZING,
) -> CreateCollection:
    return CreateCollection(new_request_id(), name, dict(config), dict(placement), time.time(), initial_state)


def update_collection(name: str, config_diff: Mapping[str, Any]) -> UpdateCollection:
    return UpdateCollection(new_request_id(), name, dict(config_diff))


def delete_collection(name: str) -> DeleteCollection:
    return DeleteCollection(new_request_id(), name)


def change_aliases(*actions: AliasAction) -> ChangeAliases:
    return ChangeAliases(new_request_id(), tuple(actions))


def create_alias(alias: str, collection: str) -> ChangeAliases:
    return change_aliases(AliasAction(AliasActionKind.CREATE, alias, collection=collection))


def delete_alias(alias: str) -> ChangeAliases:
    return change_aliases(AliasAction(AliasActionKind.DELETE, alias))


def rename_alias(alias: str, new_alias: str) -> ChangeAliases:
    return change_aliases(AliasAction(AliasActionKind.RENAME, alias, new_alias=new_alias))


def set_replica_state(
    collection: str,
    shard_id: int,
    peer_id: int,
    state: ReplicaState,
    from_state: ReplicaState | None,
    holders: tuple[int, ...] = (),
    holders_since: tuple[int, ...] = (),
    view: tuple[int, ...] = (),
    view_since: tuple[int, ...] = (),
) -> SetReplicaState:
    return SetReplicaState(
        new_request_id(),
        collection,
        shard_id,
        peer_id,
        state,
        from_state,
        holders,
        holders_since,
        view,
        view_since,
    )


def remove_replica(
    collection: str, shard_id: int, peer_id: int, from_state: ReplicaState | None = None
) -> RemoveReplica:
    return RemoveReplica(new_request_id(), collection, shard_id, peer_id, from_state)


def start_transfer(
    transfer: TransferRef, method: str = "stream_records", sync: bool = False
) -> StartTransfer:
    return StartTransfer(new_request_id(), transfer, method, sync, time.time())


def finish_transfer(transfer: TransferRef) -> FinishTransfer:
    return FinishTransfer(new_request_id(), transfer)


def abort_transfer(transfer: TransferRef, reason: str) -> AbortTransfer:
    return AbortTransfer(new_request_id(), transfer, reason)


def create_shard_key(
    collection: str,
    shard_key: ShardKey,
    placement: Placement,
    initial_state: ReplicaState = ReplicaState.ACTIVE,
) -> CreateShardKey:
    return CreateShardKey(new_request_id(), collection, shard_key, dict(placement), initial_state)


def delete_shard_key(collection: str, shard_key: ShardKey) -> DeleteShardKey:
    return DeleteShardKey(new_request_id(), collection, shard_key)


def set_metadata(key: str, value: Any) -> SetMetadata:
    return SetMetadata(new_request_id(), key, value)


def delete_metadata(key: str) -> DeleteMetadata:
    return DeleteMetadata(new_request_id(), key)
