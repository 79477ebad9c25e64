"""The transfer driver's task bookkeeping (fakes for consensus; the transfer itself stubbed): a new
transfer of the same shard to the same peer, agreed while the previous one still waits for every
peer to confirm its finish, starts once that one ends (before, it stayed Partial for good)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from qcluster.consensus.operations import TransferRef
from qcluster.consensus.state_records import TransferInfo
from qcluster.transfer.driver import TransferDriver

REF = TransferRef("c", 0, 1, 2)


class Driver(TransferDriver):
    def __init__(self, consensus: Any) -> None:
        super().__init__(None, consensus, None, 1.0, Path("/nonexistent"))  # type: ignore[arg-type]
        self.runs = 0
        self.release = asyncio.Event()

    async def _run(self, ref: TransferRef, method: str, sync: bool) -> None:
        self.runs += 1
        if self.runs == 1:
            await self.release.wait()  # the first one: still confirming its finish


async def test_a_transfer_agreed_while_its_predecessor_finishes_starts_after_it() -> None:
    state = SimpleNamespace(transfers={REF: TransferInfo(REF, "wal_delta", True, 0.0, False)})
    consensus = SimpleNamespace(peer_id=1, state=state, is_caught_up=lambda: True)
    driver = Driver(consensus)
    driver.sync(state)  # type: ignore[arg-type]
    await asyncio.sleep(0)
    driver._finishing.add(REF)
    state.transfers = {REF: TransferInfo(REF, "wal_delta", True, 1.0, False)}  # a new incarnation
    driver.sync(state)  # type: ignore[arg-type]  # same ref: must wait for the first task
    assert driver.runs == 1
    driver.release.set()
    for _ in range(100):
        if driver.runs == 2:
            break
        await asyncio.sleep(0.01)
    assert driver.runs == 2
    await asyncio.sleep(0.05)
    assert driver.runs == 2  # the same incarnation is not started again once its task ended
    await driver.close()
