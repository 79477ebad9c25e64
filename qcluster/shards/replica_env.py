"""What a replica set shares with the peer it runs on: the write options callers pass, the
environment it needs from the peer (:class:`ReplicaEnv`: remote replicas, deactivating a failed
replica through consensus, forwarding ordered writes), what takes writes for the local replica
(:class:`ShardWriter`), and the environment of a peer outside any cluster (:class:`SinglePeer`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal, Protocol

from qcluster.errors import TransientError
from qcluster.shards.base import ShardOperation, UpdateResult
from qcluster.shards.clock import ClockTag
from qcluster.shards.operations import UpdateOperation
from qcluster.types import ReplicaState, ShardKey

Ordering = Literal["weak", "medium", "strong"]
Consistency = int | Literal["majority", "quorum", "all"]
# A shard's replica states and each replica's ``since`` (the state version it last changed at).
ShardView = tuple[Mapping[int, ReplicaState], Mapping[int, int]]


@dataclass(frozen=True, slots=True)
class WriteOptions:
    ordering: Ordering = "weak"
    shard_keys: tuple[ShardKey, ...] | None = None


DEFAULT_WRITE = WriteOptions()


class ShardWriter(Protocol):
    """What takes writes for this peer's replica (the replica, or a transfer's proxy of it)."""

    async def update(
        self, op: UpdateOperation, wait: bool = True, tag: ClockTag | None = None
    ) -> UpdateResult: ...


@dataclass(frozen=True, slots=True)
class FailedReplica:
    """A replica that failed a write, to be marked Dead: it was ``from_state``; ``holders`` are
    the replicas that took the write (empty for a deactivation on no write's behalf)."""

    collection: str
    shard_id: int
    peer_id: int
    from_state: ReplicaState
    reason: str
    holders: tuple[int, ...] = ()
    holders_since: tuple[int, ...] = ()  # each holder's ``since`` in the view the write used
    view: tuple[int, ...] = ()  # the other replicas in that view, and their ``since``
    view_since: tuple[int, ...] = ()


def attested(
    replica: FailedReplica, holders: Sequence[int], view: Mapping[int, ReplicaState], since: Mapping[int, int]
) -> FailedReplica:
    """``replica`` with the replicas that hold the write and the view it was sent in (each
    replica's ``since``), so consensus can refuse the change once that view no longer holds."""
    others = tuple(p for p in sorted(view) if p not in holders)
    return replace(
        replica,
        holders=tuple(holders),
        holders_since=tuple(since.get(h, 0) for h in holders),
        view=others,
        view_since=tuple(since.get(p, 0) for p in others),
    )


class ReplicaEnv(Protocol):
    """What a replica set needs from the peer it runs on (the consumer's interface)."""

    @property
    def peer_id(self) -> int: ...

    def remote(self, collection: str, shard_id: int, peer_id: int) -> ShardOperation:
        """The replica of ``shard_id`` on ``peer_id`` (another peer), reached over the p2p port."""
        ...

    async def deactivate(self, failed: FailedReplica) -> None:
        """Mark the replica Dead through consensus (only if it is still ``failed.from_state``,
        and while one of ``failed.holders``, the replicas that took the write, still takes
        writes); return once committed, raise when it cannot be (HoldersGoneError: final; else
        keep trying in the background)."""
        ...

    async def forward(
        self,
        collection: str,
        shard_id: int,
        peer_id: int,
        op: UpdateOperation,
        wait: bool,
        ordering: Ordering,
    ) -> UpdateResult:
        """Have ``peer_id`` coordinate the write (it leads the shard for this ordering)."""
        ...

    @property
    def persist_for(self) -> float:
        """Seconds a persisting write (each shard's part of a write spanning shards) keeps
        re-sending while its outcome is unknown."""
        ...

    def agreed_view(self, collection: str, shard_id: int) -> ShardView | None:
        """The shard's replica states and their ``since`` as consensus has them now (None: no
        such view, outside a cluster)."""
        ...

    def check_view(self) -> None:
        """Raise TransientError while this peer's view of the replica states may be older than
        the cluster's (after a start, until it caught up with the leader once): coordinating a
        write then could apply it to a local replica the cluster already marked Dead, ahead of
        the older writes its recovery replays later."""
        ...


class SinglePeer:
    """The environment of a peer outside any cluster: every replica is local and Active."""

    @property
    def peer_id(self) -> int:
        return 0

    @property
    def persist_for(self) -> float:
        return 0.0  # one local replica: nothing to wait out

    def remote(self, collection: str, shard_id: int, peer_id: int) -> ShardOperation:
        raise TransientError(f"cluster mode is disabled: there is no peer {peer_id} to reach")

    async def deactivate(self, failed: FailedReplica) -> None:
        return None

    def agreed_view(self, collection: str, shard_id: int) -> ShardView | None:
        return None

    def check_view(self) -> None:
        return None

    async def forward(
        self,
        collection: str,
        shard_id: int,
        peer_id: int,
        op: UpdateOperation,
        wait: bool,
        ordering: Ordering,
    ) -> UpdateResult:
        raise TransientError(f"cluster mode is disabled: there is no peer {peer_id} to reach")
