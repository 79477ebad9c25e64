"""Qdrant's cluster operations on one collection (move_shard, replicate_shard, abort_transfer,
drop_replica, restart_transfer, create/drop_sharding_key), shared by REST
``POST /collections/{c}/cluster`` and gRPC ``Collections/UpdateCollectionClusterSetup``.

Requests are checked against the agreed state before anything is proposed, so a transfer to the
same peer, an unknown peer or shard, a source without an Active replica, or dropping the last
Active replica is a 400 naming the reason. :func:`apply` returns once the operation is committed
and applied here (the transfer itself then runs on its source peer; its progress shows on every
peer).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from qcluster.api.actions.bounds import check_new_shard_key
from qcluster.api.actions.collections import one_shard_key
from qcluster.consensus import operations as ops
from qcluster.consensus.operations import TransferRef
from qcluster.errors import BadInputError, NotFoundError, UnprocessableInputError
from qcluster.models.common import Req
from qcluster.settings import LimitsSettings
from qcluster.toc import TableOfContents
from qcluster.types import ReplicaState

METHODS = ("stream_records", "snapshot", "wal_delta")
OPERATIONS = (
    "move_shard",
    "replicate_shard",
    "abort_transfer",
    "drop_replica",
    "restart_transfer",
    "create_sharding_key",
    "drop_sharding_key",
)


class TransferIn(Req):
    shard_id: int = Field(..., ge=0)
    # Qdrant's resharding target; qcluster does not reshard, so it is refused rather than ignored
    to_shard_id: int | None = Field(None, ge=0)
    from_peer_id: int = Field(..., ge=0)
    to_peer_id: int = Field(..., ge=0)
    method: str | None = None


class ReplicaIn(Req):
    shard_id: int = Field(..., ge=0)
    peer_id: int = Field(..., ge=0)


class ShardKeyIn(Req):
    shard_key: Any
    shards_number: int | None = Field(None, ge=1)
    replication_factor: int | None = Field(None, ge=1)


class ClusterOperationIn(Req):
    move_shard: TransferIn | None = None
    replicate_shard: TransferIn | None = None
    abort_transfer: TransferIn | None = None
    drop_replica: ReplicaIn | None = None
    restart_transfer: TransferIn | None = None
    create_sharding_key: ShardKeyIn | None = None
    drop_sharding_key: ShardKeyIn | None = None


async def apply(
    toc: TableOfContents,
    consensus: Any,
    collection: str,
    req: ClusterOperationIn,
    timeout: float,
    bounds: LimitsSettings,
) -> None:
    """Run one cluster operation on ``collection``; ``consensus`` is the consensus service in
    cluster mode, else None (then only the shard-key operations are possible). A new shard key
    counts toward ``bounds`` (``max_shard_number``, ``max_replication_factor``)."""
    col = toc.get(collection)
    given = [k for k in OPERATIONS if getattr(req, k) is not None]
    if len(given) != 1:
        raise BadInputError(f"expected exactly one of {', '.join(OPERATIONS)}", "operation")
    if req.create_sharding_key is not None:
        sk = req.create_sharding_key
        key = one_shard_key(sk.shard_key)
        check_new_shard_key(
            col, bounds, sk.shards_number, sk.replication_factor, None, "create_sharding_key."
        )
        await toc.create_shard_key(col.name, key, sk.shards_number, sk.replication_factor, timeout)
        return
    if req.drop_sharding_key is not None:
        await toc.delete_shard_key(col.name, one_shard_key(req.drop_sharding_key.shard_key), timeout)
        return
    if consensus is None:
        raise BadInputError("cluster mode is disabled: shard transfers need a cluster", "cluster")
    state = consensus.state
    info = state.collections.get(col.name)
    if info is None:
        raise NotFoundError(f"Collection `{col.name}` is not known to the cluster yet")
    for op in _operations(req, state, col.name, info, toc.storage.shard_transfer_method):
        result = await consensus.propose(op, timeout)
        await consensus.wait_synced(result.index, timeout)


def _operations(
    req: ClusterOperationIn, state: Any, name: str, info: Any, default_method: str
) -> list[ops.Op]:
    if req.move_shard is not None or req.replicate_shard is not None:
        spec = req.move_shard or req.replicate_shard
        assert spec is not None
        field = "move_shard" if req.move_shard is not None else "replicate_shard"
        method = _method(spec.method, default_method, field)
        ref = _check_transfer(spec, state, name, info, field)
        target_state = info.shards[spec.shard_id].replicas.get(spec.to_peer_id)
        if target_state is not None and target_state is not ReplicaState.DEAD:  # a Dead one is refilled
            raise BadInputError(
                f"{field}: peer {spec.to_peer_id} already holds a replica of shard {spec.shard_id} "
                f"({target_state.value})",
                f"{field}.to_peer_id",
            )
        return [ops.start_transfer(ref, method, sync=req.replicate_shard is not None)]
    if req.abort_transfer is not None:
        ref = _running(req.abort_transfer, state, name, "abort_transfer")
        return [ops.abort_transfer(ref, "aborted by the operator")]
    if req.restart_transfer is not None:
        spec = req.restart_transfer
        ref = _running(spec, state, name, "restart_transfer")
        method = _method(spec.method, default_method, "restart_transfer")
        sync = state.transfers[ref].sync
        return [
            ops.abort_transfer(ref, f"restarted with method {method}"),
            ops.start_transfer(ref, method, sync),
        ]
    drop = req.drop_replica
    assert drop is not None
    shard = info.shards.get(drop.shard_id)
    if shard is None:
        raise BadInputError(
            f"drop_replica: collection `{name}` has no shard {drop.shard_id}", "drop_replica.shard_id"
        )
    current = shard.replicas.get(drop.peer_id)
    if current is None:
        raise BadInputError(
            f"drop_replica: peer {drop.peer_id} holds no replica of shard {drop.shard_id}",
            "drop_replica.peer_id",
        )
    active = [p for p, st in shard.replicas.items() if st is ReplicaState.ACTIVE]
    if current is ReplicaState.ACTIVE and active == [drop.peer_id]:
        raise BadInputError(
            f"drop_replica: the replica on peer {drop.peer_id} is the last Active replica of shard "
            f"{drop.shard_id}; replicate the shard first",
            "drop_replica",
        )
    return [ops.remove_replica(name, drop.shard_id, drop.peer_id, current)]


def _method(raw: str | None, default: str, field: str) -> str:
    method = raw or default
    if method not in METHODS:
        raise BadInputError(
            f"{field}.method: expected one of {', '.join(METHODS)}, got {raw!r}", f"{field}.method"
        )
    return method


def _no_resharding(spec: TransferIn, field: str) -> None:
    if spec.to_shard_id is not None and spec.to_shard_id != spec.shard_id:
        raise BadInputError(
            f"{field}.to_shard_id: transfers between different shards (resharding) are not supported",
            f"{field}.to_shard_id",
        )


def _check_transfer(spec: TransferIn, state: Any, name: str, info: Any, field: str) -> TransferRef:
    _no_resharding(spec, field)
    if spec.from_peer_id == spec.to_peer_id:  # (422 in Qdrant's words)
        raise UnprocessableInputError(
            f"[{field}.to_peer_id: cannot transfer shard to itself (source and target are peer "
            f"{spec.to_peer_id})]",
            f"{field}.to_peer_id",
        )
    for role, peer in (("from_peer_id", spec.from_peer_id), ("to_peer_id", spec.to_peer_id)):
        if peer not in state.peers:
            raise BadInputError(
                f"{field}.{role}: peer {peer} is not a member of the cluster", f"{field}.{role}"
            )
    shard = info.shards.get(spec.shard_id)
    if shard is None:
        raise BadInputError(
            f"{field}.shard_id: collection `{name}` has no shard {spec.shard_id}", f"{field}.shard_id"
        )
    source = shard.replicas.get(spec.from_peer_id)
    if source is not ReplicaState.ACTIVE:
        raise BadInputError(
            f"{field}.from_peer_id: peer {spec.from_peer_id} holds no Active replica of shard {spec.shard_id} "
            f"({source.value if source else 'none'})",
            f"{field}.from_peer_id",
        )
    return TransferRef(name, spec.shard_id, spec.from_peer_id, spec.to_peer_id)


def _running(spec: TransferIn, state: Any, name: str, field: str) -> TransferRef:
    _no_resharding(spec, field)
    ref = TransferRef(name, spec.shard_id, spec.from_peer_id, spec.to_peer_id)
    if ref not in state.transfers:
        raise NotFoundError(
            f"{field}: no transfer of shard {spec.shard_id} from peer {spec.from_peer_id} to peer {spec.to_peer_id}"
        )
    return ref
