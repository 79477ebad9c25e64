"""ClusterState: peers, collections, shard placement, replica states, transfers, aliases, metadata.

``apply(op) -> list[Event]`` is pure: no I/O, no clock, no randomness, no exceptions for bad
operations (an operation that does not fit the state it meets yields :class:`OpRejected` and
changes nothing). Every peer applies the same operations in the same order, so every peer holds the
same state. Repeated request ids are ignored through a bounded, deterministic dedup table.

Each handler validates first and mutates last, so an operation applies entirely or not at all.
The state serialises to orjson (``to_bytes`` / ``from_bytes``) for Raft snapshots.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from qcluster.consensus import events as ev
from qcluster.consensus import operations as ops
from qcluster.consensus.operations import ReplicaState, TransferRef
from qcluster.consensus.state_records import (
    CollectionInfo,
    Reject,
    ShardInfo,
    TransferInfo,
    transfer_sort_key,
)
from qcluster.consensus.state_replicas import (
    abort_transfer,
    finish_transfer,
    remove_replica,
    set_replica_state,
    start_transfer,
)
from qcluster.json_diff import deep_merge

DEFAULT_DEDUP_CAPACITY = 10_000
FORMAT_VERSION = 1


@dataclass
class ClusterState:
    peers: dict[int, str] = field(default_factory=dict)  # peer id -> p2p uri
    collections: dict[str, CollectionInfo] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)  # alias -> collection
    transfers: dict[TransferRef, TransferInfo] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    applied_requests: OrderedDict[str, None] = field(default_factory=OrderedDict)
    dedup_capacity: int = DEFAULT_DEDUP_CAPACITY
    version: int = 0  # operations applied (not counting duplicates): the replicas' ``since``

    # ------------------------------------------------------------------------------- apply

    def apply(self, op: ops.Op) -> list[ev.Event]:
        if op.request_id in self.applied_requests:
            return [ev.DuplicateOp(op.request_id)]
        handler = _HANDLERS[type(op)]
        try:
            events = handler(self, op)
        except Reject as rej:
            events = [ev.OpRejected(rej.code, rej.message)]
        self.applied_requests[op.request_id] = None
        while len(self.applied_requests) > self.dedup_capacity:
            self.applied_requests.popitem(last=False)
        self.version += 1
        self._note_replica_changes(events)
        return events

    def _note_replica_changes(self, events: list[ev.Event]) -> None:
        """Stamp every replica whose state ``events`` changed with the current version."""
        for e in events:
            if not isinstance(e, ev.ReplicaStateChanged | ev.ReplicaRemoved):
                continue
            c = self.collections.get(e.collection)
            shard = c.shards.get(e.shard_id) if c else None
            if shard is None:
                continue
            if isinstance(e, ev.ReplicaRemoved):
                shard.since.pop(e.peer_id, None)
            else:
                shard.since[e.peer_id] = self.version

    # ------------------------------------------------------------------------------- queries

    def resolve_collection(self, name: str) -> str | None:
        """The collection a name or alias refers to, None when neither exists."""
        if name in self.collections:
            return name
        return self.aliases.get(name)

    def replicas_on_peer(self, peer_id: int) -> list[tuple[str, int, ReplicaState]]:
        return [
            (name, sid, shard.replicas[peer_id])
            for name, c in sorted(self.collections.items())
            for sid, shard in sorted(c.shards.items())
            if peer_id in shard.replicas
        ]

    def peer_load(self) -> dict[int, int]:
        """Replica count per peer (every known peer listed, zero included)."""
        load = dict.fromkeys(self.peers, 0)
        for c in self.collections.values():
            for shard in c.shards.values():
                for peer in shard.replicas:
                    load[peer] = load.get(peer, 0) + 1
        return load

    def replica_state(self, collection: str, shard_id: int, peer_id: int) -> ReplicaState | None:
        c = self.collections.get(collection)
        shard = c.shards.get(shard_id) if c else None
        return shard.replicas.get(peer_id) if shard else None

    # ------------------------------------------------------------------------------- serialisation

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "peers": [[pid, uri] for pid, uri in sorted(self.peers.items())],
            "collections": [
                {
                    "name": c.name,
                    "config": c.config,
                    "created_at": c.created_at,
                    "shards": [
                        {
                            "shard_id": sid,
                            "shard_key": s.shard_key,
                            "replicas": [[p, st.value] for p, st in sorted(s.replicas.items())],
                            "since": [[p, v] for p, v in sorted(s.since.items())],
                        }
                        for sid, s in sorted(c.shards.items())
                    ],
                }
                for c in sorted(self.collections.values(), key=lambda c: c.name)
            ],
            "aliases": dict(sorted(self.aliases.items())),
            "transfers": [
                {
                    "collection": t.transfer.collection,
                    "shard_id": t.transfer.shard_id,
                    "from_peer": t.transfer.from_peer,
                    "to_peer": t.transfer.to_peer,
                    "method": t.method,
                    "sync": t.sync,
                    "started_at": t.started_at,
                    "target_was_new": t.target_was_new,
                }
                for t in sorted(self.transfers.values(), key=lambda t: transfer_sort_key(t.transfer))
            ],
            "metadata": self.metadata,
            "applied_requests": list(self.applied_requests),
            "dedup_capacity": self.dedup_capacity,
            "version": self.version,
        }

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> ClusterState:
        if raw.get("format") != FORMAT_VERSION:
            raise ValueError(f"unsupported cluster state format {raw.get('format')!r}")
        state = cls(dedup_capacity=int(raw["dedup_capacity"]))
        state.peers = {int(pid): str(uri) for pid, uri in raw["peers"]}
        for c in raw["collections"]:
            shards = {
                int(s["shard_id"]): ShardInfo(
                    {int(p): ReplicaState(st) for p, st in s["replicas"]},
                    s.get("shard_key"),
                    {int(p): int(v) for p, v in s.get("since", ())},
                )
                for s in c["shards"]
            }
            state.collections[c["name"]] = CollectionInfo(
                c["name"], dict(c["config"]), shards, float(c["created_at"])
            )
        state.aliases = {str(a): str(c) for a, c in raw["aliases"].items()}
        for t in raw["transfers"]:
            ref = TransferRef(t["collection"], int(t["shard_id"]), int(t["from_peer"]), int(t["to_peer"]))
            state.transfers[ref] = TransferInfo(
                ref, t["method"], bool(t["sync"]), float(t["started_at"]), bool(t["target_was_new"])
            )
        state.metadata = dict(raw["metadata"])
        state.applied_requests = OrderedDict.fromkeys(str(r) for r in raw["applied_requests"])
        state.version = int(raw.get("version", 0))
        return state

    @classmethod
    def from_bytes(cls, data: bytes) -> ClusterState:
        return cls.from_dict(orjson.loads(data))

    # ------------------------------------------------------------------------------- helpers

    def _collection(self, name: str) -> CollectionInfo:
        c = self.collections.get(name)
        if c is None:
            raise Reject("not_found", f"Collection `{name}` doesn't exist!")
        return c

    def _shard(self, collection: str, shard_id: int) -> ShardInfo:
        shard = self._collection(collection).shards.get(shard_id)
        if shard is None:
            raise Reject("not_found", f"shard {shard_id} of collection `{collection}` doesn't exist")
        return shard

    def _check_peers(self, placement: ops.Placement, what: str) -> None:
        for sid, peers in placement.items():
            if not peers:
                raise Reject("bad_input", f"{what}: shard {sid} has no replica")
            unknown = [p for p in peers if p not in self.peers]
            if unknown:
                raise Reject("bad_input", f"{what}: shard {sid} is placed on unknown peer(s) {unknown}")

    def _drop_transfers(self, match: Callable[[TransferRef], bool], reason: str) -> list[ev.Event]:
        out: list[ev.Event] = []
        for ref in sorted((r for r in self.transfers if match(r)), key=transfer_sort_key):
            del self.transfers[ref]
            out.append(ev.TransferAborted(ref, reason))
        return out


# ----------------------------------------------------------------------------------- handlers


def _add_peer(s: ClusterState, op: ops.AddPeer) -> list[ev.Event]:
    if op.peer_id in s.peers:
        if s.peers[op.peer_id] == op.uri:
            return []
        raise Reject("already_exists", f"peer {op.peer_id} already exists with uri {s.peers[op.peer_id]}")
    if not op.uri:
        raise Reject("bad_input", "peer uri must not be empty")
    s.peers[op.peer_id] = op.uri
    return [ev.PeerAdded(op.peer_id, op.uri)]


def _remove_peer(s: ClusterState, op: ops.RemovePeer) -> list[ev.Event]:
    if op.peer_id not in s.peers:
        raise Reject("not_found", f"peer {op.peer_id} doesn't exist")
    out = s._drop_transfers(lambda t: op.peer_id in (t.from_peer, t.to_peer), f"peer {op.peer_id} removed")
    for name, sid, state in s.replicas_on_peer(op.peer_id):
        del s.collections[name].shards[sid].replicas[op.peer_id]
        out.append(ev.ReplicaRemoved(name, sid, op.peer_id, state))
    del s.peers[op.peer_id]
    out.append(ev.PeerRemoved(op.peer_id))
    return out


def _update_peer_uri(s: ClusterState, op: ops.UpdatePeerUri) -> list[ev.Event]:
    old = s.peers.get(op.peer_id)
    if old is None:
        raise Reject("not_found", f"peer {op.peer_id} doesn't exist")
    if not op.uri:
        raise Reject("bad_input", "peer uri must not be empty")
    if old == op.uri:
        return []
    s.peers[op.peer_id] = op.uri
    return [ev.PeerUriChanged(op.peer_id, old, op.uri)]


def _create_collection(s: ClusterState, op: ops.CreateCollection) -> list[ev.Event]:
    if not op.name:
        raise Reject("bad_input", "collection name must not be empty")
    if op.name in s.collections:
        raise Reject("already_exists", f"Collection `{op.name}` already exists!")
    if op.name in s.aliases:
        raise Reject("already_exists", f"Alias `{op.name}` already exists!")
    s._check_peers(op.placement, "placement")
    shards = {
        sid: ShardInfo(dict.fromkeys(peers, op.initial_state)) for sid, peers in sorted(op.placement.items())
    }
    s.collections[op.name] = CollectionInfo(op.name, dict(op.config), shards, op.created_at)
    out: list[ev.Event] = [ev.CollectionCreated(op.name)]
    for sid, shard in shards.items():
        out.extend(
            ev.ReplicaStateChanged(op.name, sid, p, None, st) for p, st in sorted(shard.replicas.items())
        )
    return out


def _update_collection(s: ClusterState, op: ops.UpdateCollection) -> list[ev.Event]:
    c = s._collection(op.name)
    c.config = deep_merge(c.config, op.config_diff, drop_none=True)
    return [ev.CollectionUpdated(op.name, dict(op.config_diff))]


def _delete_collection(s: ClusterState, op: ops.DeleteCollection) -> list[ev.Event]:
    s._collection(op.name)
    out = s._drop_transfers(lambda t: t.collection == op.name, f"collection {op.name} deleted")
    for alias in sorted(a for a, c in s.aliases.items() if c == op.name):
        del s.aliases[alias]
        out.append(ev.AliasDeleted(alias, op.name))
    del s.collections[op.name]
    out.append(ev.CollectionDeleted(op.name))
    return out


def _change_aliases(s: ClusterState, op: ops.ChangeAliases) -> list[ev.Event]:
    aliases = dict(s.aliases)  # work on a copy: all actions or none
    out: list[ev.Event] = []
    for a in op.actions:
        if a.kind is ops.AliasActionKind.CREATE:
            if a.collection not in s.collections:
                raise Reject("not_found", f"Collection `{a.collection}` doesn't exist!")
            if not a.alias or a.alias in s.collections:
                raise Reject("bad_input", f"alias name `{a.alias}` is empty or names a collection")
            if a.alias in aliases:  # Qdrant re-points an existing alias
                out.append(ev.AliasDeleted(a.alias, aliases[a.alias]))
            aliases[a.alias] = a.collection
            out.append(ev.AliasCreated(a.alias, a.collection))
        elif a.kind is ops.AliasActionKind.DELETE:
            if a.alias not in aliases:
                raise Reject("not_found", f"Alias `{a.alias}` doesn't exist!")
            out.append(ev.AliasDeleted(a.alias, aliases.pop(a.alias)))
        else:
            if a.alias not in aliases:
                raise Reject("not_found", f"Alias `{a.alias}` doesn't exist!")
            if not a.new_alias or a.new_alias in aliases or a.new_alias in s.collections:
                raise Reject("already_exists", f"Alias `{a.new_alias}` already exists!")
            target = aliases.pop(a.alias)
            aliases[a.new_alias] = target
            out += [ev.AliasDeleted(a.alias, target), ev.AliasCreated(a.new_alias, target)]
    s.aliases = aliases
    return out


def _create_shard_key(s: ClusterState, op: ops.CreateShardKey) -> list[ev.Event]:
    c = s._collection(op.collection)
    if any(sh.shard_key == op.shard_key for sh in c.shards.values()):
        raise Reject("already_exists", f"Shard key {op.shard_key} already exists")
    clash = sorted(set(op.placement) & set(c.shards))
    if clash or not op.placement:
        raise Reject("bad_input", f"shard key placement is empty or reuses shard ids {clash}")
    s._check_peers(op.placement, "placement")
    out: list[ev.Event] = [ev.ShardKeyCreated(op.collection, op.shard_key, tuple(sorted(op.placement)))]
    for sid, peers in sorted(op.placement.items()):
        c.shards[sid] = ShardInfo(dict.fromkeys(peers, op.initial_state), op.shard_key)
        out.extend(
            ev.ReplicaStateChanged(op.collection, sid, p, None, op.initial_state) for p in sorted(peers)
        )
    return out


def _delete_shard_key(s: ClusterState, op: ops.DeleteShardKey) -> list[ev.Event]:
    c = s._collection(op.collection)
    sids = tuple(sorted(sid for sid, sh in c.shards.items() if sh.shard_key == op.shard_key))
    if not sids:
        raise Reject("not_found", f"Shard key {op.shard_key} doesn't exist")
    out = s._drop_transfers(
        lambda t: t.collection == op.collection and t.shard_id in sids, f"shard key {op.shard_key} deleted"
    )
    for sid in sids:
        for peer, state in sorted(c.shards.pop(sid).replicas.items()):
            out.append(ev.ReplicaRemoved(op.collection, sid, peer, state))
    out.append(ev.ShardKeyDeleted(op.collection, op.shard_key, sids))
    return out


def _set_metadata(s: ClusterState, op: ops.SetMetadata) -> list[ev.Event]:
    if not op.key:
        raise Reject("bad_input", "metadata key must not be empty")
    s.metadata[op.key] = op.value
    return [ev.MetadataChanged(op.key, op.value)]


def _delete_metadata(s: ClusterState, op: ops.DeleteMetadata) -> list[ev.Event]:
    if op.key not in s.metadata:
        return []
    del s.metadata[op.key]
    return [ev.MetadataChanged(op.key, None)]


_HANDLERS: dict[type[ops.Op], Callable[[ClusterState, Any], list[ev.Event]]] = {
    ops.AddPeer: _add_peer,
    ops.RemovePeer: _remove_peer,
    ops.UpdatePeerUri: _update_peer_uri,
    ops.CreateCollection: _create_collection,
    ops.UpdateCollection: _update_collection,
    ops.DeleteCollection: _delete_collection,
    ops.ChangeAliases: _change_aliases,
    ops.SetReplicaState: set_replica_state,
    ops.RemoveReplica: remove_replica,
    ops.StartTransfer: start_transfer,
    ops.FinishTransfer: finish_transfer,
    ops.AbortTransfer: abort_transfer,
    ops.CreateShardKey: _create_shard_key,
    ops.DeleteShardKey: _delete_shard_key,
    ops.SetMetadata: _set_metadata,
    ops.DeleteMetadata: _delete_metadata,
}


def iter_replicas(state: ClusterState) -> Iterator[tuple[str, int, int, ReplicaState]]:
    """(collection, shard id, peer id, state) for every replica, in a stable order."""
    for name in sorted(state.collections):
        for sid, shard in sorted(state.collections[name].shards.items()):
            for peer, st in sorted(shard.replicas.items()):
                yield name, sid, peer, st
