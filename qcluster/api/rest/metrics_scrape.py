"""What ``GET /metrics`` reports, gathered from the table of contents and the agreed cluster state
into the plain values :class:`qcluster.metrics.Metrics` takes."""

from __future__ import annotations

from collections import Counter
from typing import Any

from qcluster.metrics import CollectionStats, Metrics, ReplicaStats, TransferFigures
from qcluster.toc import TableOfContents

ACTIVE = "Active"


async def collection_stats(toc: TableOfContents) -> list[CollectionStats]:
    stats = []
    for name, col in list(toc.collections.items()):
        info = await col.info()
        stats.append(
            CollectionStats(
                name=name,
                points=info.points_count,
                # every point holds each configured vector (Qdrant counts per vector; close enough)
                vectors={vector: info.points_count for vector in col.config.params.vectors},
                indexed_vectors=info.indexed_vectors_count,
                segments=info.segments_count,
            )
        )
    return stats


def replica_stats(toc: TableOfContents, consensus: Any) -> list[ReplicaStats]:
    """Per collection: Active replicas per shard, replicas per state and the transfers into and out
    of this peer, from the agreed state; a collection only this peer knows (single-peer mode) has
    one Active local replica per shard."""
    state = consensus.state if consensus is not None else None
    me = consensus.peer_id if consensus is not None else None
    out = []
    for name, col in list(toc.collections.items()):
        agreed = state.collections.get(name) if state is not None else None
        if state is None or agreed is None:
            shards = len(col.local_shards())
            out.append(ReplicaStats(name, (1,) * shards, {ACTIVE: shards}))
            continue
        states: Counter[str] = Counter()
        active = []
        for shard in agreed.shards.values():
            values = [str(s) for s in shard.replicas.values()]
            states.update(values)
            active.append(values.count(ACTIVE))
        refs = [ref for ref in state.transfers if ref.collection == name]
        out.append(
            ReplicaStats(
                name,
                tuple(active),
                dict(states),
                transfers_in=sum(ref.to_peer == me for ref in refs),
                transfers_out=sum(ref.from_peer == me for ref in refs),
            )
        )
    return out


def transfer_figures(transfers: Any) -> list[TransferFigures]:
    """The outgoing transfers' progress (``transfers``: the peer's transfer driver, or None)."""
    if transfers is None:
        return []
    return [
        TransferFigures(
            p.ref.collection, p.ref.shard_id, p.ref.to_peer, p.method, p.stage, p.unit, p.done, p.total
        )
        for p in transfers.registry.all()
    ]


async def scrape(
    metrics: Metrics,
    toc: TableOfContents,
    consensus: Any,
    transfers: Any = None,
    per_collection: bool = False,
) -> bytes:
    metrics.set_collections(await collection_stats(toc))
    metrics.set_replicas(replica_stats(toc, consensus))
    metrics.set_transfer_progress(transfer_figures(transfers))
    metrics.set_cluster(
        consensus.health() if consensus is not None else None,
        len(consensus.state.peers) if consensus is not None else 0,
    )
    return metrics.exposition(per_collection)
