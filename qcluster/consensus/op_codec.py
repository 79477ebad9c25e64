"""Operations <-> bytes: orjson out, and a checked parse back in.

:func:`decode_op` checks every field and raises :class:`~qcluster.errors.BadInputError` naming the
field; committed bytes that fail to decode are skipped identically on every peer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson

from qcluster.consensus.operations import (
    MAX_PEER_ID,
    AbortTransfer,
    AddPeer,
    AliasAction,
    AliasActionKind,
    ChangeAliases,
    CreateCollection,
    CreateShardKey,
    DeleteCollection,
    DeleteMetadata,
    DeleteShardKey,
    FinishTransfer,
    Op,
    RemovePeer,
    RemoveReplica,
    ReplicaState,
    SetMetadata,
    SetReplicaState,
    ShardKey,
    StartTransfer,
    TransferRef,
    UpdateCollection,
    UpdatePeerUri,
)
from qcluster.errors import BadInputError


def encode_op(op: Op) -> bytes:
    return orjson.dumps({"kind": op.KIND, "request_id": op.request_id, **op.payload()})


def decode_op(data: bytes) -> Op:
    """Parse and check an encoded operation; :class:`BadInputError` names the bad field."""
    try:
        raw = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise BadInputError(f"operation is not valid JSON: {exc}", "op") from exc
    if not isinstance(raw, dict):
        raise BadInputError("operation must be a JSON object", "op")
    kind = raw.get("kind")
    parser = _PARSERS.get(kind) if isinstance(kind, str) else None
    if parser is None:
        raise BadInputError(f"unknown operation kind {kind!r}", "kind")
    request_id = _str(raw, "request_id")
    if not request_id:
        raise BadInputError("request_id must not be empty", "request_id")
    return parser(request_id, raw)


def _str(raw: Mapping[str, Any], key: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str):
        raise BadInputError(f"{key} must be a string, got {value!r}", key)
    return value


def _int(raw: Mapping[str, Any], key: str, low: int = 0, high: int = 2**64 - 1) -> int:
    value = raw.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadInputError(f"{key} must be an integer in [{low}, {high}], got {value!r}", key)
    return value


def _peer(raw: Mapping[str, Any], key: str) -> int:
    return _int(raw, key, 1, MAX_PEER_ID)


MAX_LIST_PEERS = 1024  # peer ids in one list field: more than any cluster has replicas of a shard


def _peers(raw: Mapping[str, Any], key: str) -> tuple[int, ...]:
    """An optional list of peer ids (absent: empty)."""
    value = raw.get(key)
    if value is None:
        return ()
    if not isinstance(value, list | tuple) or len(value) > MAX_LIST_PEERS:
        raise BadInputError(f"{key} must be a list of at most {MAX_LIST_PEERS} peer ids", key)
    return tuple(_peer({key: v}, key) for v in value)


def _versions(raw: Mapping[str, Any], key: str, count: int) -> tuple[int, ...]:
    """An optional list of state versions, one per entry of a list of ``count`` (absent: empty)."""
    value = raw.get(key)
    if value is None:
        return ()
    if not isinstance(value, list | tuple) or len(value) != count:
        raise BadInputError(f"{key} must be a list of {count} state versions", key)
    return tuple(_int({key: v}, key) for v in value)


def _float(raw: Mapping[str, Any], key: str) -> float:
    value = raw.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadInputError(f"{key} must be a number, got {value!r}", key)
    return float(value)


def _bool(raw: Mapping[str, Any], key: str) -> bool:
    value = raw.get(key)
    if not isinstance(value, bool):
        raise BadInputError(f"{key} must be a boolean, got {value!r}", key)
    return value


def _obj(raw: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = raw.get(key)
    if not isinstance(value, dict):
        raise BadInputError(f"{key} must be a JSON object", key)
    return value


def _state(raw: Mapping[str, Any], key: str, optional: bool = False) -> ReplicaState | None:
    value = raw.get(key)
    if value is None and optional:
        return None
    try:
        return ReplicaState(str(value))
    except ValueError:
        raise BadInputError(f"{key}: unknown replica state {value!r}", key) from None


def _req_state(raw: Mapping[str, Any], key: str) -> ReplicaState:
    state = _state(raw, key)
    assert state is not None
    return state


def _shard_key(raw: Mapping[str, Any], key: str) -> ShardKey:
    value = raw.get(key)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise BadInputError(f"{key} must be a string or an integer, got {value!r}", key)
    return value


def _placement(raw: Mapping[str, Any], key: str) -> dict[int, tuple[int, ...]]:
    value = raw.get(key)
    if not isinstance(value, list):
        raise BadInputError(f"{key} must be a list of [shard_id, [peer ids]]", key)
    out: dict[int, tuple[int, ...]] = {}
    for item in value:
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[1], list)):
            raise BadInputError(f"{key} must be a list of [shard_id, [peer ids]]", key)
        sid = _int({"shard_id": item[0]}, "shard_id", 0, 2**32 - 1)
        peers = tuple(_peer({"peer_id": p}, "peer_id") for p in item[1])
        if sid in out or len(set(peers)) != len(peers):
            raise BadInputError(f"{key}: shard {sid} is listed twice or names a peer twice", key)
        out[sid] = peers
    return out


def _transfer(raw: Mapping[str, Any]) -> TransferRef:
    return TransferRef(
        _str(raw, "collection"), _int(raw, "shard_id"), _peer(raw, "from_peer"), _peer(raw, "to_peer")
    )


def _alias_actions(raw: Mapping[str, Any]) -> tuple[AliasAction, ...]:
    value = raw.get("actions")
    if not isinstance(value, list):
        raise BadInputError("actions must be a list", "actions")
    out = []
    for item in value:
        if not isinstance(item, dict):
            raise BadInputError("actions: each action must be an object", "actions")
        try:
            kind = AliasActionKind(str(item.get("kind")))
        except ValueError:
            raise BadInputError(f"actions: unknown alias action {item.get('kind')!r}", "actions") from None
        out.append(AliasAction(kind, _str(item, "alias"), _str(item, "collection"), _str(item, "new_alias")))
    return tuple(out)


_PARSERS: dict[str, Callable[[str, dict[str, Any]], Op]] = {
    AddPeer.KIND: lambda rid, r: AddPeer(rid, _peer(r, "peer_id"), _str(r, "uri")),
    RemovePeer.KIND: lambda rid, r: RemovePeer(rid, _peer(r, "peer_id")),
    UpdatePeerUri.KIND: lambda rid, r: UpdatePeerUri(rid, _peer(r, "peer_id"), _str(r, "uri")),
    CreateCollection.KIND: lambda rid, r: CreateCollection(
        rid,
        _str(r, "name"),
        _obj(r, "config"),
        _placement(r, "placement"),
        _float(r, "created_at"),
        _req_state(r, "initial_state"),
    ),
    UpdateCollection.KIND: lambda rid, r: UpdateCollection(rid, _str(r, "name"), _obj(r, "config_diff")),
    DeleteCollection.KIND: lambda rid, r: DeleteCollection(rid, _str(r, "name")),
    ChangeAliases.KIND: lambda rid, r: ChangeAliases(rid, _alias_actions(r)),
    SetReplicaState.KIND: lambda rid, r: SetReplicaState(
        rid,
        _str(r, "collection"),
        _int(r, "shard_id"),
        _peer(r, "peer_id"),
        _req_state(r, "state"),
        _state(r, "from_state", optional=True),
        _peers(r, "holders"),
        _versions(r, "holders_since", len(_peers(r, "holders"))),
        _peers(r, "view"),
        _versions(r, "view_since", len(_peers(r, "view"))),
    ),
    RemoveReplica.KIND: lambda rid, r: RemoveReplica(
        rid,
        _str(r, "collection"),
        _int(r, "shard_id"),
        _peer(r, "peer_id"),
        _state(r, "from_state", optional=True),
    ),
    StartTransfer.KIND: lambda rid, r: StartTransfer(
        rid, _transfer(r), _str(r, "method"), _bool(r, "sync"), _float(r, "started_at")
    ),
    FinishTransfer.KIND: lambda rid, r: FinishTransfer(rid, _transfer(r)),
    AbortTransfer.KIND: lambda rid, r: AbortTransfer(rid, _transfer(r), _str(r, "reason")),
    CreateShardKey.KIND: lambda rid, r: CreateShardKey(
        rid,
        _str(r, "collection"),
        _shard_key(r, "shard_key"),
        _placement(r, "placement"),
        _req_state(r, "initial_state"),
    ),
    DeleteShardKey.KIND: lambda rid, r: DeleteShardKey(
        rid, _str(r, "collection"), _shard_key(r, "shard_key")
    ),
    SetMetadata.KIND: lambda rid, r: SetMetadata(rid, _str(r, "key"), r.get("value")),
    DeleteMetadata.KIND: lambda rid, r: DeleteMetadata(rid, _str(r, "key")),
}
