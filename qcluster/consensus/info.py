"""Plain values the consensus service hands out: Raft status snapshots, join answers, and the
``GET /cluster`` body built from them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol


class RaftRole(StrEnum):
    """Named as Qdrant's ``/cluster`` reports them."""

    FOLLOWER = "Follower"
    CANDIDATE = "Candidate"
    LEADER = "Leader"


@dataclass(frozen=True, slots=True)
class RaftStatus:
    """One consistent reading of the Raft node, taken on its own thread once per tick.

    ``connected`` are the members this peer currently has a working outbound stream to;
    ``has_quorum`` counts this peer plus the connected voters against all voters.
    """

    term: int = 0
    commit: int = 0
    last_applied: int = 0
    leader: int | None = None
    role: RaftRole = RaftRole.FOLLOWER
    members: tuple[int, ...] = ()  # every voter except this peer
    connected: tuple[int, ...] = ()
    has_quorum: bool = False
    leader_commit: int | None = None
    commit_term: int = 0  # term of the entry at the commit index (== term: the leader committed in its term)


@dataclass(frozen=True, slots=True)
class RaftInfo:
    """The ``raft_info`` block of Qdrant's ``GET /cluster``."""

    term: int
    commit: int
    pending_operations: int
    leader: int | None
    role: RaftRole | None
    is_voter: bool


@dataclass(frozen=True, slots=True)
class JoinAnswer:
    peer_id: int
    uri: str
    peers: dict[int, str] = field(default_factory=dict)
    leader: int | None = None


class SendFailureView(Protocol):
    count: int
    latest_error: str | None
    latest_error_at: float | None


def _iso(ts: float | None) -> str | None:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat() if ts else None


def cluster_body(
    peer_id: int,
    info: RaftInfo,
    peers: Mapping[int, str],
    failures: Mapping[int, SendFailureView],
    running: bool,
) -> dict[str, Any]:
    """Qdrant's ``GET /cluster`` result (``ClusterStatus``, enabled)."""
    return {
        "status": "enabled",
        "peer_id": peer_id,
        "peers": {str(pid): {"uri": uri} for pid, uri in sorted(peers.items())},
        "raft_info": {
            "term": info.term,
            "commit": info.commit,
            "pending_operations": info.pending_operations,
            "leader": info.leader,
            "role": info.role.value if info.role is not None else None,
            "is_voter": info.is_voter,
        },
        "consensus_thread_status": (
            {"consensus_thread_status": "working", "last_update": dt.datetime.now(dt.UTC).isoformat()}
            if running
            else {"consensus_thread_status": "stopped"}
        ),
        "message_send_failures": {
            peers[pid]: {
                "count": f.count,
                "latest_error": f.latest_error,
                "latest_error_timestamp": _iso(f.latest_error_at),
            }
            for pid, f in sorted(failures.items())
            if pid in peers
        },
    }
