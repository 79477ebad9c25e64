"""``POST /collections/{c}/cluster``: Qdrant's cluster operations on one collection (move_shard,
replicate_shard, abort_transfer, drop_replica, restart_transfer, create/drop_sharding_key), and the
progress ``comment`` of the transfers ``GET /collections/{c}/cluster`` lists.

Requests are checked against the agreed state before anything is proposed, so a transfer to the
same peer, an unknown peer or shard, a source without an Active replica, or dropping the last
Active replica is a 400 naming the reason. The answer comes once the operation is committed (the
transfer itself then runs on its source peer; its progress shows on every peer).
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from pydantic import Field

from qcluster.api.rest.app import CONSENSUS_KEY, TOC_KEY, ok
from qcluster.api.rest.parse import body, query_int
from qcluster.api.rest.shard_keys import refuse_new_key_above_bounds
from qcluster.collection.read_scope import parse_shard_keys
from qcluster.consensus import operations as ops
from qcluster.consensus.operations import TransferRef
from qcluster.errors import BadInputError, NotFoundError, QClusterError
from qcluster.models.common import Req
from qcluster.types import ReplicaState

METHODS = ("stream_records", "snapshot", "wal_delta")
PROGRESS_TIMEOUT = 1.0


class _Transfer(Req):
    shard_id: int = Field(..., ge=0)
    from_peer_id: int = Field(..., ge=0)
    to_peer_id: int = Field(..., ge=0)
    method: str | None = None


class _Replica(Req):
    shard_id: int = Field(..., ge=0)
    peer_id: int = Field(..., ge=0)


class _ShardKey(Req):
    shard_key: Any
    shards_number: int | None = Field(None, ge=1)
    replication_factor: int | None = Field(None, ge=1)


class ClusterOperationIn(Req):
    move_shard: _Transfer | None = None
    replicate_shard: _Transfer | None = None
    abort_transfer: _Transfer | None = None
    drop_replica: _Replica | None = None
    restart_transfer: _Transfer | None = None
    create_sharding_key: _ShardKey | None = None
    drop_sharding_key: _ShardKey | None = None


def _service(request: web.Request) -> Any:
    service = request.app[CONSENSUS_KEY].get("service")
    if service is None:
        raise BadInputError("cluster mode is disabled: shard transfers need a cluster", "cluster")
    return service


def _timeout(request: web.Request) -> float:
    value = query_int(request, "timeout", minimum=1)
    return float(value) if value is not None else 30.0


async def cluster_operation(request: web.Request) -> web.Response:
    toc = request.app[TOC_KEY]
    col = toc.get(request.match_info["collection_name"])
    req = await body(request, ClusterOperationIn)
    given = [k for k, v in req.model_dump(exclude_none=True).items() if v is not None]
    if len(given) != 1:
        raise BadInputError(
            "expected exactly one of move_shard, replicate_shard, abort_transfer, drop_replica, "
            "restart_transfer, create_sharding_key, drop_sharding_key",
            "operation",
        )
    timeout = _timeout(request)
    if req.create_sharding_key is not None:
        key = _one_key(req.create_sharding_key.shard_key)
        sk = req.create_sharding_key
        refuse_new_key_above_bounds(
            request, sk.shards_number, sk.replication_factor, None, "create_sharding_key."
        )
        await toc.create_shard_key(col.name, key, sk.shards_number, sk.replication_factor, timeout)
        return ok(request, True)
    if req.drop_sharding_key is not None:
        await toc.delete_shard_key(col.name, _one_key(req.drop_sharding_key.shard_key), timeout)
        return ok(request, True)
    service = _service(request)
    state = service.state
    info = state.collections.get(col.name)
    if info is None:
        raise NotFoundError(f"Collection `{col.name}` is not known to the cluster yet")
    default_method = request.app[TOC_KEY].storage.shard_transfer_method
    for op in _operations(req, state, col.name, info, default_method):
        result = await service.propose(op, timeout)
        await service.wait_synced(result.index, timeout)
    return ok(request, True)


def _one_key(raw: object) -> Any:
    keys = parse_shard_keys(raw)
    if keys is None or len(keys) != 1:
        raise BadInputError("shard_key: expected one shard key", "shard_key")
    return keys[0]


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


def _check_transfer(spec: _Transfer, state: Any, name: str, info: Any, field: str) -> TransferRef:
    if spec.from_peer_id == spec.to_peer_id:
        raise BadInputError(f"{field}: source and target are the same peer ({spec.to_peer_id})", field)
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


def _running(spec: _Transfer, state: Any, name: str, field: str) -> TransferRef:
    ref = TransferRef(name, spec.shard_id, spec.from_peer_id, spec.to_peer_id)
    if ref not in state.transfers:
        raise NotFoundError(
            f"{field}: no transfer of shard {spec.shard_id} from peer {spec.from_peer_id} to peer {spec.to_peer_id}"
        )
    return ref


# ------------------------------------------------------------------ progress on every peer
async def transfer_comments(request: web.Request, collection: str) -> dict[TransferRef, str]:
    """The progress comment of each transfer of ``collection``: from this peer's own driver for
    the ones it sends, asked of the source peer (1 s at most) for the others."""
    service = request.app[CONSENSUS_KEY].get("service")
    driver = request.app[CONSENSUS_KEY].get("transfers")
    if service is None or driver is None:
        return {}
    refs = [r for r in service.state.transfers if r.collection == collection]
    if not refs:
        return {}
    out = {p.ref: p.comment() for p in driver.progress_of(collection)}
    sources = {r.from_peer for r in refs if r not in out and r.from_peer != service.peer_id}
    if sources:
        from qcluster.transfer.progress_client import fetch_progress

        answers = await asyncio.gather(
            *(
                fetch_progress(service.pool, service.state.peers.get(p, ""), collection, PROGRESS_TIMEOUT)
                for p in sources
            ),
            return_exceptions=True,
        )
        for answer in answers:
            if isinstance(answer, dict):
                out.update(answer)
            elif not isinstance(answer, QClusterError | Exception):
                raise answer
    return out


def register(app: web.Application) -> None:
    app.router.add_post("/collections/{collection_name}/cluster", cluster_operation)
