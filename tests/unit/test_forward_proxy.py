"""The transfer's forward proxy (pure logic with fakes): a write the target missed is acknowledged
only once the target is fenced off (marked Dead); when that cannot be agreed, the write fails."""

from __future__ import annotations

from typing import Any

import pytest

from qcluster.errors import QClusterError, ReplicationError, TransientError
from qcluster.shards.base import UpdateResult
from qcluster.transfer.proxy import ForwardProxy


class Local:
    def __init__(self) -> None:
        self.applied: list[Any] = []

    async def update(self, op: Any, wait: bool = True, tag: Any = None) -> UpdateResult:
        self.applied.append(op)
        return UpdateResult(len(self.applied), "completed")


class Target:
    def __init__(self, fail: bool) -> None:
        self.fail = fail
        self.got: list[Any] = []

    async def update(self, op: Any, wait: bool, tag: Any, forwarded: bool = False) -> UpdateResult:
        if self.fail:
            raise TransientError("target unreachable")
        self.got.append(op)
        return UpdateResult(1, "completed")


async def test_forwarded_in_order_while_on() -> None:
    local, target = Local(), Target(fail=False)
    fenced: list[QClusterError] = []

    async def fence(exc: QClusterError) -> None:
        fenced.append(exc)

    proxy = ForwardProxy(local, target, fence)  # type: ignore[arg-type]
    await proxy.update("a")
    proxy.forwarding = True
    await proxy.update("b")
    await proxy.update("c")
    assert local.applied == ["a", "b", "c"] and target.got == ["b", "c"] and not fenced


async def test_a_missed_forward_fences_the_target_before_the_ack() -> None:
    local, target = Local(), Target(fail=True)
    fenced: list[QClusterError] = []

    async def fence(exc: QClusterError) -> None:
        fenced.append(exc)

    proxy = ForwardProxy(local, target, fence)  # type: ignore[arg-type]
    proxy.forwarding = True
    result = await proxy.update("a")
    assert result.status == "completed" and len(fenced) == 1 and proxy.failure is not None
    await proxy.update("b")  # the target is out: no second fence, no forward
    assert len(fenced) == 1 and local.applied == ["a", "b"]


async def test_a_write_fails_when_the_target_cannot_be_fenced() -> None:
    async def fence(exc: QClusterError) -> None:
        raise ReplicationError("no quorum to mark the target Dead")

    proxy = ForwardProxy(Local(), Target(fail=True), fence)  # type: ignore[arg-type]
    proxy.forwarding = True
    with pytest.raises(ReplicationError):
        await proxy.update("a")
