"""ReplicaSet's write path against fake replicas and a fake consensus (pure logic: who is sent a
write, when it is acknowledged). The real thing runs in tests/e2e (data plane, transfers, chaos)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from qcluster.errors import ReplicationError, TransientError
from qcluster.shards.base import UpdateResult
from qcluster.shards.clock import ClockSet
from qcluster.shards.operations import DeletePoints
from qcluster.shards.replica_env import FailedReplica
from qcluster.shards.replica_set import ReplicaSet
from qcluster.types import ReplicaState as RS

ME, OTHER = 1, 2


class Replica:
    def __init__(self) -> None:
        self.calls = 0
        self.down = False

    async def update(self, op: Any, wait: bool = True, tag: Any = None, **_: Any) -> UpdateResult:
        self.calls += 1
        if self.down:
            raise TransientError("peer unreachable")
        return UpdateResult(self.calls, "completed")


class Env:
    """One peer's view: ``quorum`` says whether a deactivation can be agreed."""

    def __init__(self) -> None:
        self.remote_replica = Replica()
        self.quorum = False
        self.deactivations: list[FailedReplica] = []
        self.rs: ReplicaSet | None = None

    @property
    def peer_id(self) -> int:
        return ME

    def remote(self, collection: str, shard_id: int, peer_id: int) -> Any:
        return self.remote_replica

    async def deactivate(self, failed: FailedReplica) -> None:
        self.deactivations.append(failed)
        if not self.quorum:
            raise TransientError("no quorum: the deactivation cannot be agreed")
        assert self.rs is not None
        self.rs.set_states({**self.rs.states, failed.peer_id: RS.DEAD})  # agreed and applied here

    async def forward(self, *args: Any) -> UpdateResult:
        raise AssertionError("weak ordering never forwards")

    def check_view(self) -> None:
        pass


def test_a_replica_that_failed_here_is_skipped_only_once_its_deactivation_is_agreed() -> None:
    async def run() -> None:
        env = Env()
        rs = env.rs = ReplicaSet("c", 0, env, ClockSet(lambda: ME, 1), lambda: 1)
        rs.local = Replica()  # type: ignore[assignment]  # only .update is used
        rs.set_states({ME: RS.ACTIVE, OTHER: RS.ACTIVE})
        env.remote_replica.down = True
        op = DeletePoints((7,))
        # cut off: the write reached this peer's replica only and the other cannot be marked Dead
        with pytest.raises(ReplicationError):
            await rs.update(op)
        sent = env.remote_replica.calls
        # the next write is not sent to the failed replica, and still not acknowledged: the
        # cluster may rebuild this replica from that one, which would lose it
        with pytest.raises(ReplicationError):
            await rs.update(op)
        assert env.remote_replica.calls == sent
        assert [f.peer_id for f in env.deactivations] == [OTHER, OTHER]
        # once the deactivation is agreed, writes are acknowledged by this replica alone
        env.quorum = True
        result = await rs.update(op)
        assert result.status == "completed"
        assert env.deactivations[-1].holders == (ME,)
        assert rs.states[OTHER] is RS.DEAD
        assert await rs.update(op) == UpdateResult(rs.local.calls, "completed")  # type: ignore[attr-defined]
        assert len(env.deactivations) == 3  # nothing left to agree

    asyncio.run(run())
