"""What keeps a cluster peer from serving its share: ``/readyz`` is 200 only when this returns
nothing (the peer has caught up with the leader, holds an open local shard for every replica the
agreed placement gives it, and each of those replicas is Active or a Listener, i.e. not still being
created or recovered)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from qcluster.types import ReplicaState

if TYPE_CHECKING:
    from qcluster.consensus.state import ClusterState
    from qcluster.toc import TableOfContents

SERVING = frozenset({ReplicaState.ACTIVE, ReplicaState.LISTENER})


def unready_replicas(state: ClusterState, peer_id: int, toc: TableOfContents, limit: int = 10) -> list[str]:
    out: list[str] = []
    for name, sid, replica_state in state.replicas_on_peer(peer_id):
        col = toc.collections.get(name)
        rs = None if col is None else col.holder.sets.get(sid)
        if rs is None or rs.local is None:
            out.append(f"{name}/{sid}: not open here yet")
        elif replica_state not in SERVING:
            out.append(f"{name}/{sid}: {replica_state.value}")
        if len(out) >= limit:
            break
    return out
