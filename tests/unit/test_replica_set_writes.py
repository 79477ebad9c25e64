"""ReplicaSet's write path against fake replicas and a fake consensus (pure logic: who is sent a
write, when it is acknowledged). The real thing runs in tests/e2e (data plane, transfers, chaos)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from qcluster.cluster.replica_audit import disagreements
from qcluster.errors import BadInputError, ReplicationError, TransientError
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

    def agreed_view(self, collection: str, shard_id: int) -> Any:
        return self.agreed_now

    agreed_now: Any = None  # (states, since) consensus has, when the test sets it
    persist_for = 30.0


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


def test_a_write_goes_by_the_agreed_states_even_before_the_replica_set_took_them() -> None:
    """Chaos quick seed 2003: just after a restart, consensus here had made OTHER Active again
    but the replica set still saw it Dead, and a write sent to this replica alone was
    acknowledged. A write takes the agreed states first."""

    async def run() -> None:
        env = Env()
        rs = env.rs = ReplicaSet("c", 0, env, ClockSet(lambda: ME, 1), lambda: 1)
        local = Replica()
        rs.local = local  # type: ignore[assignment]  # only .update is used
        rs.set_states({ME: RS.ACTIVE, OTHER: RS.DEAD}, {ME: 1, OTHER: 2})
        env.agreed_now = ({ME: RS.ACTIVE, OTHER: RS.ACTIVE}, {ME: 1, OTHER: 5})
        assert (await rs.update(DeletePoints((7,)))).status == "completed"
        assert local.calls == 1 and env.remote_replica.calls == 1  # OTHER got it too
        assert rs.states == {ME: RS.ACTIVE, OTHER: RS.ACTIVE} and rs.since == {ME: 1, OTHER: 5}

    asyncio.run(run())


class Flaky(Replica):
    """Unreachable for its first ``failures`` writes, or the first one applied with its answer
    lost (``lost_first``); records every tag it was sent."""

    def __init__(self, failures: int = 0, lost_first: bool = False) -> None:
        super().__init__()
        self.failures = failures
        self.lost_first = lost_first
        self.tags: list[ClockTag] = []

    async def update(self, op: Any, wait: bool = True, tag: Any = None, **_: Any) -> UpdateResult:
        self.tags.append(tag)
        self.down = self.calls < self.failures
        self.answer_lost = self.lost_first and self.calls == 0
        return await super().update(op, wait, tag)


def test_a_persisting_write_is_sent_again_with_its_tag_until_a_replica_takes_it() -> None:
    """Chaos quick seed 1902: a batch spanning two shards was applied on one and failed on the
    other, whose only Active replica was restarting. Each part of such a write persists: a write
    whose outcome is unknown is re-sent with the same clock tag (replicas that applied it skip
    it), and acknowledged once the replicas take it. Without ``persist`` it fails at once and is
    left to the settler."""

    async def run(persist: bool) -> tuple[ReplicaSet, Flaky, Flaky]:
        env = Env()
        env.quorum = True
        rs = env.rs = ReplicaSet("c", 0, env, ClockSet(lambda: ME, 1), lambda: 1)
        local, remote = Flaky(lost_first=True), Flaky(failures=1)
        rs.local, env.remote_replica = local, remote  # type: ignore[assignment]
        rs.set_states({ME: RS.ACTIVE, OTHER: RS.ACTIVE})
        if persist:
            assert (await rs.update(DeletePoints((7,)), persist=True)).status == "completed"
        else:
            with pytest.raises(ReplicationError):
                await rs.update(DeletePoints((7,)))
        return rs, local, remote

    rs, local, remote = asyncio.run(run(persist=True))
    assert len(remote.tags) == 2 and len(set(remote.tags)) == 1  # the same write, re-sent
    assert set(local.tags) == set(remote.tags)
    assert rs.states == {ME: RS.ACTIVE, OTHER: RS.ACTIVE}  # both took it: nothing marked Dead
    rs, local, remote = asyncio.run(run(persist=False))
    assert len(remote.tags) == 1 and rs.settler.pending == 1


def test_a_persisting_write_refused_as_wrong_is_not_sent_again() -> None:
    async def run() -> Flaky:
        env = Env()
        rs = env.rs = ReplicaSet("c", 0, env, ClockSet(lambda: ME, 1), lambda: 1)
        local = Flaky()

        async def refuse(op: Any, wait: bool = True, tag: Any = None, **_: Any) -> UpdateResult:
            local.calls += 1
            raise BadInputError("wrong")

        local.update = refuse  # type: ignore[method-assign]
        rs.local = local  # type: ignore[assignment]
        rs.set_states({ME: RS.ACTIVE})
        with pytest.raises(BadInputError):
            await rs.update(DeletePoints((7,)), persist=True)
        return local

    assert asyncio.run(run()).calls == 1
