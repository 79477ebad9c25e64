"""The cluster layout of one collection (Qdrant's ``CollectionClusterInfo``), shared by
``GET /collections/{c}/cluster`` and the gRPC ``Collections/CollectionClusterInfo``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from qcluster.toc import TableOfContents


async def collection_cluster_info(
    toc: TableOfContents, consensus: Any, name: str, comments: Mapping[Any, str] | None = None
) -> dict[str, Any]:
    """On a single peer every shard is local and Active; in cluster mode (``consensus`` not None)
    the agreed placement (replicas on this peer are local, with their point counts), the replica
    states and the transfers that touch the collection, with their progress ``comments`` (by
    transfer) when the caller has them. In REST's JSON shape."""
    col = toc.get(name)
    counts = {sid: (await shard.info()).points_count for sid, shard in col.local_shards().items()}
    if consensus is None or col.name not in consensus.state.collections:
        local = [
            {
                "shard_id": sid,
                "shard_key": col.holder.sets[sid].shard_key,
                "points_count": n,
                "state": "Active",
            }
            for sid, n in counts.items()
        ]
        return {
            "peer_id": 0,
            "shard_count": len(col.holder.sets),
            "local_shards": local,
            "remote_shards": [],
            "shard_transfers": [],
        }
    state = consensus.state
    info = state.collections[col.name]
    me = consensus.peer_id
    local, remote = [], []
    for sid, shard in sorted(info.shards.items()):
        for peer, st in sorted(shard.replicas.items()):
            entry: dict[str, Any] = {"shard_id": sid, "shard_key": shard.shard_key, "state": st.value}
            if peer == me:
                local.append({**entry, "points_count": counts.get(sid, 0)})
            else:
                remote.append({**entry, "peer_id": peer})
    return {
        "peer_id": me,
        "shard_count": len(info.shards),
        "local_shards": local,
        "remote_shards": remote,
        "shard_transfers": transfers(state, col.name, comments or {}),
    }


def transfers(state: Any, name: str, comments: Mapping[Any, str]) -> list[dict[str, Any]]:
    """The shard transfers of collection ``name`` in the agreed state."""
    return [
        {
            "shard_id": ref.shard_id,
            "from": ref.from_peer,
            "to": ref.to_peer,
            "sync": t.sync,
            "method": t.method,
            "comment": comments.get(ref),
        }
        for ref, t in sorted(state.transfers.items(), key=lambda kv: (kv[0].shard_id, kv[0].to_peer))
        if ref.collection == name
    ]
