"""Plain values the consensus service hands out: Raft status snapshots and join answers."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


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
