"""Cluster endpoints: ``/cluster`` (``{"status": "disabled"}`` on a single peer), peer removal,
``/cluster/recover``, ``/cluster/telemetry`` and the cluster metadata keys.

Metadata keys (``/cluster/metadata/keys[/{key}]``) are a small JSON key-value store agreed through
Raft: ``PUT`` stores the request body (any JSON value) under the key, ``DELETE`` removes it, and both
return once this peer has applied the change; reads answer from this peer's state.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import orjson
from aiohttp import web

from qcluster.api.actions import cluster as cluster_actions
from qcluster.api.rest.app import CONSENSUS_KEY, TOC_KEY, ok
from qcluster.api.rest.cluster_ops import transfer_comments
from qcluster.api.rest.parse import limits, query_bool, query_int, read_body
from qcluster.consensus import operations as ops
from qcluster.consensus.peer_calls import peer_health
from qcluster.errors import BadInputError, MethodNotAllowedError, NotFoundError
from qcluster.models.bounds import json_depth
from qcluster.types import parse_decimal

DEFAULT_TIMEOUT = 10.0
HEALTH_TIMEOUT = 2.0
MAX_KEY_LENGTH = 255


def _service(request: web.Request) -> Any:
    consensus = request.app[CONSENSUS_KEY].get("service")
    if consensus is None:
        raise MethodNotAllowedError(
            "Distributed mode disabled: this operation is not available in standalone mode"
        )
    return consensus


def _timeout(request: web.Request, default: float = DEFAULT_TIMEOUT) -> float:
    value = query_int(request, "timeout", minimum=1)
    return float(value) if value is not None else default


async def cluster(request: web.Request) -> web.Response:
    consensus = request.app[CONSENSUS_KEY].get("service")
    if consensus is None:
        return ok(request, {"status": "disabled"})
    return ok(request, consensus.cluster_info())


async def remove_peer(request: web.Request) -> web.Response:
    """``DELETE /cluster/peer/{peer_id}?force=&timeout=``: 400 while the peer holds replicas, unless
    ``force``; 400 in single-peer mode."""
    consensus = _service(request)
    peer_id = parse_decimal(request.match_info["peer_id"], "peer_id", "a peer id")
    await consensus.remove_peer(peer_id, force=query_bool(request, "force"), timeout=_timeout(request))
    return ok(request, True)


async def recover(request: web.Request) -> web.Response:
    """Catch up with the leader, then make the local collections and aliases match the agreed
    state again (recreating any this peer lacks)."""
    consensus = _service(request)
    await consensus.wait_caught_up(_timeout(request, 30.0))
    sync = request.app[CONSENSUS_KEY].get("sync")
    if sync is not None:
        await sync.reconcile()
    return ok(request, True)


async def telemetry(request: web.Request) -> web.Response:
    """``DistributedTelemetryData``: the agreed topology and every peer's Raft figures (each peer
    asked in parallel; one that does not answer within 2 s is reported ``responsive: false``)."""
    consensus = request.app[CONSENSUS_KEY].get("service")
    if consensus is None:
        return ok(request, {"collections": {}, "cluster": {"enabled": False, "peers": {}}})
    state = consensus.state
    limit = min(HEALTH_TIMEOUT, _timeout(request, 60.0))
    peers = sorted(state.peers.items())
    answers = await asyncio.gather(
        *(
            _own_health(consensus) if pid == consensus.peer_id else peer_health(consensus.pool, uri, limit)
            for pid, uri in peers
        )
    )
    peer_out = {}
    for (pid, uri), health in zip(peers, answers, strict=True):
        entry: dict[str, Any] = {"uri": uri, "responsive": health is not None}
        if health is not None:
            entry["details"] = {
                "version": health["version"],
                "role": health["role"] or None,
                "is_voter": health["is_voter"],
                "term": health["term"],
                "commit": health["commit"],
                "num_pending_operations": health["pending_operations"],
                "consensus_thread_status": _thread_status(health["consensus_thread_status"]),
            }
        peer_out[str(pid)] = entry
    collections = {}
    for name, info in sorted(state.collections.items()):
        collections[name] = {
            "id": name,
            "shards": [
                {
                    "id": sid,
                    "key": shard.shard_key,
                    "replicas": [
                        {"peer_id": p, "state": st.value} for p, st in sorted(shard.replicas.items())
                    ],
                }
                for sid, shard in sorted(info.shards.items())
            ],
            "shard_transfers": cluster_actions.transfers(state, name, {}),
        }
    return ok(
        request,
        {
            "collections": collections,
            "cluster": {"enabled": True, "number_of_peers": len(peers), "peers": peer_out},
        },
    )


def _thread_status(status: str) -> dict[str, Any]:
    if status == "working":
        return {"consensus_thread_status": status, "last_update": dt.datetime.now(dt.UTC).isoformat()}
    return {"consensus_thread_status": "stopped"}


async def _own_health(consensus: Any) -> dict[str, Any]:
    return consensus.health()  # type: ignore[no-any-return]


async def collection_cluster(request: web.Request) -> web.Response:
    consensus = request.app[CONSENSUS_KEY].get("service")
    toc = request.app[TOC_KEY]
    name = toc.get(request.match_info["collection_name"]).name
    comments = await transfer_comments(request, name)
    return ok(request, await cluster_actions.collection_cluster_info(toc, consensus, name, comments))


def _key(request: web.Request) -> str:
    key = request.match_info["key"]
    if not key or len(key) > MAX_KEY_LENGTH:
        raise BadInputError(f"key: must be 1 to {MAX_KEY_LENGTH} characters", "key")
    return key


async def metadata_keys(request: web.Request) -> web.Response:
    return ok(request, sorted(_service(request).state.metadata))


async def metadata_get(request: web.Request) -> web.Response:
    key = _key(request)
    values = _service(request).state.metadata
    if key not in values:
        raise NotFoundError(f"cluster metadata key `{key}` doesn't exist")
    return ok(request, values[key])


async def metadata_put(request: web.Request) -> web.Response:
    consensus = _service(request)
    key = _key(request)
    raw = await read_body(request)
    if not raw.strip():
        raise BadInputError("request body: expected a JSON value to store", "body")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadInputError(f"request body: invalid JSON ({exc})", "body") from None
    bound = limits(request).max_json_depth
    depth = json_depth(value, bound)
    if depth > bound:  # stored in the agreed state, which must always serialise
        raise BadInputError(
            f"body: nesting depth is at least {depth}, above the bound of {bound} "
            "(service.limits.max_json_depth)",
            "body",
        )
    timeout = _timeout(request)
    result = await consensus.propose(ops.set_metadata(key, value), timeout)
    await consensus.wait_synced(result.index, timeout)
    return ok(request, True)


async def metadata_delete(request: web.Request) -> web.Response:
    consensus = _service(request)
    key = _key(request)
    if key not in consensus.state.metadata:
        raise NotFoundError(f"cluster metadata key `{key}` doesn't exist")
    timeout = _timeout(request)
    result = await consensus.propose(ops.delete_metadata(key), timeout)
    await consensus.wait_synced(result.index, timeout)
    return ok(request, True)


def register(app: web.Application) -> None:
    r = app.router
    r.add_get("/cluster", cluster)
    r.add_post("/cluster/recover", recover)
    r.add_get("/cluster/telemetry", telemetry)
    r.add_delete("/cluster/peer/{peer_id}", remove_peer)
    r.add_get("/collections/{collection_name}/cluster", collection_cluster)
    r.add_get("/cluster/metadata/keys", metadata_keys)
    r.add_get("/cluster/metadata/keys/{key}", metadata_get)
    r.add_put("/cluster/metadata/keys/{key}", metadata_put)
    r.add_delete("/cluster/metadata/keys/{key}", metadata_delete)
