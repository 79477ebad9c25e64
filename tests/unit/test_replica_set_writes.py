"""ReplicaSet's write path against fake replicas and a fake consensus (pure logic: who is sent a
write, when it is acknowledged). The real thing runs in tests/e2e (data plane, transfers, chaos)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from qcluster.cluster.replica_audit import disagreements
from qcluster.errors import ReplicationError, TransientError
from qcluster.shards.base import UpdateResult
from qcluster.shards.clock import ClockMap, ClockSet, ClockTag
from qcluster.shards.operations import DeletePoints
from qcluster.shards.replica_env import FailedReplica
from qcluster.shards.replica_set import ReplicaSet
from qcluster.shards.unsettled import Settler
from qcluster.types import ReplicaState as RS

ME, OTHER, TARGET = 1, 2, 3


class Replica:
    def __init__(self) -> None:
        self.calls = 0
        self.down = False
        self.answer_lost = False  # applies the write, then its answer is lost
        self.clocks = ClockMap()

    async def update(self, op: Any, wait: bool = True, tag: Any = None, **_: Any) -> UpdateResult:
        self.calls += 1
        if self.down:
            raise TransientError("peer unreachable")
        if tag is not None:
            self.clocks.advance(tag)
        if self.answer_lost:
            raise TransientError("deadline exceeded")
        return UpdateResult(self.calls, "completed")

    async def clock_map(self) -> ClockMap:
        return self.clocks.copy()


class Env:
    """One peer's view: ``quorum`` says whether a deactivation can be agreed."""

    def __init__(self, agreed: dict[int, RS] | None = None) -> None:
        self.remote_replica = Replica()
        self.quorum = False
        self.deactivations: list[FailedReplica] = []
        self.rs: ReplicaSet | None = None
        self.agreed = agreed  # the cluster's state when this peer's view is behind it

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
        if self.agreed is not None:  # applied only from the state it names
            if self.agreed.get(failed.peer_id) is failed.from_state:
                self.agreed[failed.peer_id] = RS.DEAD
            return
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


@pytest.mark.parametrize("finished", [True, False])
def test_a_transfer_target_is_fenced_when_a_write_fails_and_its_transfer_may_have_finished(
    finished: bool,
) -> None:
    """This peer still sees TARGET as Partial (fed by the transfer's source, OTHER), but the
    agreed state may already have finished the transfer. The write fails on OTHER, so it never
    reaches TARGET: TARGET is marked Dead from Active, and left alone while still Partial (its
    transfer ends with its source)."""

    async def run() -> None:
        target_state = RS.ACTIVE if finished else RS.PARTIAL
        env = Env(agreed={ME: RS.ACTIVE, OTHER: RS.ACTIVE, TARGET: target_state})
        env.quorum = True
        rs = env.rs = ReplicaSet("c", 0, env, ClockSet(lambda: ME, 1), lambda: 1)
        rs.local = Replica()  # type: ignore[assignment]  # only .update is used
        rs.set_states({ME: RS.ACTIVE, OTHER: RS.ACTIVE, TARGET: RS.PARTIAL})
        env.remote_replica.down = True
        result = await rs.update(DeletePoints((7,)))
        assert result.status == "completed"
        assert env.remote_replica.calls == 1  # OTHER only: TARGET is never written directly
        fenced = {f.peer_id: f for f in env.deactivations}
        assert set(fenced) == {OTHER, TARGET}
        assert fenced[TARGET].from_state is RS.ACTIVE
        assert fenced[TARGET].holders == (ME,)
        assert env.agreed is not None
        assert env.agreed[TARGET] is (RS.DEAD if finished else RS.PARTIAL)
        assert env.agreed[OTHER] is RS.DEAD

    asyncio.run(run())


@pytest.mark.parametrize("applied_here", [True, False])
def test_a_write_that_failed_everywhere_is_settled_so_the_replicas_agree(applied_here: bool) -> None:
    """The write fails on both replicas, but this one applied it before its answer was lost (or
    did not). Not acknowledged, so either outcome is allowed, but both Active replicas must end
    with the same one: the replica without it is marked Dead (to be rebuilt from the one with
    it); when neither has it nothing is marked. The write's clock is not lent again."""

    async def run() -> None:
        env = Env()
        env.quorum = True
        rs = env.rs = ReplicaSet("c", 0, env, ClockSet(lambda: ME, 1), lambda: 1)
        rs.settler = Settler(rs, delay=0.0)
        local = Replica()
        rs.local = local  # type: ignore[assignment]  # only .update and .clock_map are used
        rs.set_states({ME: RS.ACTIVE, OTHER: RS.ACTIVE})
        local.answer_lost = applied_here
        local.down = not applied_here
        env.remote_replica.down = True
        with pytest.raises(ReplicationError):
            await rs.update(DeletePoints((7,)))
        assert env.deactivations == []  # nothing acknowledged it: nothing to mark at once
        env.remote_replica.down = local.down = local.answer_lost = False
        await rs.settler.wait()
        if applied_here:
            assert [(f.peer_id, f.from_state, f.holders) for f in env.deactivations] == [
                (OTHER, RS.ACTIVE, (ME,))
            ]
            assert rs.states[OTHER] is RS.DEAD
        else:
            assert env.deactivations == []
            assert rs.states == {ME: RS.ACTIVE, OTHER: RS.ACTIVE}
        assert rs.settler.pending == 0
        await rs.update(DeletePoints((8,)))
        assert len(local.clocks) == (2 if applied_here else 1)  # the failed write's clock was retired

    asyncio.run(run())


def test_disagreements_name_the_replicas_below_each_clocks_highest_tick() -> None:
    a, b, c = ClockMap(), ClockMap(), ClockMap()
    for m in (a, b, c):
        m.advance(ClockTag(9, 0, 5))  # every replica agrees on clock (9, 0)
    a.advance(ClockTag(9, 1, 3))
    b.advance(ClockTag(9, 1, 3))
    c.advance(ClockTag(9, 1, 2))  # c lacks the last write of clock (9, 1)
    b.advance(ClockTag(4, 0, 1))  # only b has a write of clock (4, 0)
    assert disagreements({1: a, 2: b, 3: c}) == {(9, 1): (3, (1, 2), (3,)), (4, 0): (1, (2,), (1, 3))}
    assert disagreements({1: a, 2: a.copy()}) == {}
