"""How late the event loop runs: a task asks to wake every ``interval`` seconds and records by how
much it woke late (``event_loop_lag_seconds`` in ``/metrics``). Work that holds the loop (CPU on
the loop thread, a C call that keeps the GIL) shows up here as lag for every client of the peer.

Started and stopped with the REST application (``on_startup`` / ``on_cleanup``); cancellation
stops it at its next sleep.
"""

from __future__ import annotations

import asyncio

from qcluster.metrics import Metrics
from qcluster.tasks import cancel_and_wait

INTERVAL = 0.1


class LoopLagMonitor:
    def __init__(self, metrics: Metrics, interval: float = INTERVAL):
        self.metrics = metrics
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await asyncio.sleep(self.interval)
            self.metrics.observe_loop_lag(max(0.0, loop.time() - started - self.interval))

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="loop-lag")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
