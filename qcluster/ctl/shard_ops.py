"""Shard operations through Qdrant's ``POST /collections/{name}/cluster`` (``move_shard``,
``replicate_shard``, ``drop_replica``, ``abort_transfer``), and ``drain``: move every replica off
a peer, then remove the peer.

Drain, step by step::

    plan   = for each replica on PEER: a target peer without a replica of that shard, the one
             holding the fewest replicas (planned moves included)      (refused if none is left)
    for each move:  POST move_shard  -> the server refuses? stop: PEER keeps its replicas, exit 1
                    poll /collections/{c}/cluster until PEER no longer holds the shard and the
                    target's replica is Active (progress from the transfer's comment)
    DELETE /cluster/peer/PEER        -> refused (it still holds replicas)? say so, exit 1

Whether the server can move shards at all is learnt from its answer to the first move, never
assumed: the server's own error is what the user sees.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from qcluster.ctl.client import CtlError, RestClient
from qcluster.ctl.views import (
    ClusterView,
    CollectionCluster,
    ShardTransfer,
    collection_cluster,
    collection_path,
    replicas,
)

OPERATIONS = ("move_shard", "replicate_shard", "drop_replica", "abort_transfer")


def shard_request(
    operation: str,
    shard_id: int,
    *,
    from_peer: int | None = None,
    to_peer: int | None = None,
    peer: int | None = None,
    method: str | None = None,
) -> dict[str, Any]:
    """The body of ``POST /collections/{name}/cluster`` in Qdrant's shape."""
    if operation == "drop_replica":
        return {"drop_replica": {"shard_id": shard_id, "peer_id": peer}}
    body: dict[str, Any] = {"shard_id": shard_id, "from_peer_id": from_peer, "to_peer_id": to_peer}
    if method is not None and operation != "abort_transfer":
        body["method"] = method
    return {operation: body}


def send(client: RestClient, collection: str, request: dict[str, Any], timeout: float | None = None) -> Any:
    return client.post(collection_path(collection) + "/cluster", request, timeout=timeout)


@dataclass(frozen=True)
class Move:
    collection: str
    shard_id: int
    from_peer: int
    to_peer: int


class DrainRefused(Exception):
    """Drain cannot go on; the message says why (and, for a server refusal, in its words)."""


def plan_drain(view: ClusterView, peer: int) -> list[Move]:
    """The moves that empty ``peer``, keeping every shard's replica count (pure)."""
    peers = set(view.cluster.peers) if view.cluster.enabled else set()
    if peer not in peers:
        raise DrainRefused(f"peer {peer} is not a member of the cluster (members: {sorted(peers)})")
    load: Counter[int] = Counter({p: 0 for p in peers if p != peer})
    holders: dict[tuple[str, int], set[int]] = {}
    for r in view.replicas():
        holders.setdefault((r.collection, r.shard_id), set()).add(r.peer_id)
        if r.peer_id in load:
            load[r.peer_id] += 1
    moves = []
    for (collection, shard), held in sorted(holders.items()):
        if peer not in held:
            continue
        free = [p for p in load if p not in held]
        if not free:
            raise DrainRefused(
                f"collection {collection!r} shard {shard} already has a replica on every other peer: "
                f"removing peer {peer} would lower its replication factor"
            )
        target = min(free, key=lambda p: (load[p], p))
        load[target] += 1
        moves.append(Move(collection, shard, peer, target))
    return moves


def moved(info: CollectionCluster, name: str, move: Move) -> bool:
    """The move is over: ``from_peer`` holds no replica of the shard, the target an Active one."""
    states = {r.peer_id: r.state for r in replicas(name, info) if r.shard_id == move.shard_id}
    return move.from_peer not in states and states.get(move.to_peer) == "Active"


def transfer_of(info: CollectionCluster, move: Move) -> ShardTransfer | None:
    for t in info.shard_transfers:
        if (t.shard_id, t.from_peer, t.to_peer) == (move.shard_id, move.from_peer, move.to_peer):
            return t
    return None


def start_move(client: RestClient, move: Move) -> None:
    """Ask for the move; DrainRefused with the server's own error when it refuses."""
    request = shard_request("move_shard", move.shard_id, from_peer=move.from_peer, to_peer=move.to_peer)
    try:
        send(client, move.collection, request)
    except CtlError as exc:
        raise DrainRefused(
            f"the server refused to move collection {move.collection!r} shard {move.shard_id} "
            f"from peer {move.from_peer} to peer {move.to_peer}: {exc}"
        ) from None


def wait_move(
    client: RestClient,
    move: Move,
    timeout: float,
    interval: float,
    on_progress: Callable[[ShardTransfer | None], None] | None = None,
) -> None:
    """Poll until the move is over; DrainRefused when the replica is still on the peer at the
    deadline."""
    deadline = time.monotonic() + timeout
    while True:
        info = collection_cluster(client, move.collection)
        if moved(info, move.collection, move):
            return
        if on_progress is not None:
            on_progress(transfer_of(info, move))
        if time.monotonic() >= deadline:
            raise DrainRefused(
                f"collection {move.collection!r} shard {move.shard_id} is still on peer {move.from_peer} "
                f"after {timeout:g}s"
            )
        time.sleep(interval)


def remove_peer(client: RestClient, peer: int, timeout: float) -> None:
    try:
        client.delete(f"/cluster/peer/{peer}", timeout=max(1, int(timeout)))
    except CtlError as exc:
        raise DrainRefused(f"the server refused to remove peer {peer}: {exc}") from None
