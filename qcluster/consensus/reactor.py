"""Events -> the table of contents, in log order, on the loop, without ever blocking apply.

The apply path calls :meth:`Reactor.submit` and returns; a single task hands each event, in the
order the log produced them, to the :class:`ConsensusListener` (the TOC implements it). A failing
listener call is logged and the next event goes on: the state change is already committed, and
the TOC reconciles (for instance from the ``StateReset`` it gets after a snapshot).

Implementing a listener: subclass :class:`EventHandlers` and override the ``on_<event>`` methods
you need (names are the event class names in snake case: ``on_collection_created``,
``on_replica_state_changed``, ``on_transfer_started``, ``on_state_reset`` ...). ``state`` is the
live state, which may already be ahead of the event being handled.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from qcluster.consensus import events as ev
from qcluster.consensus.state import ClusterState
from qcluster.logging import get_logger
from qcluster.tasks import cancel_and_wait

log = get_logger(__name__)


class ConsensusListener(Protocol):
    async def on_event(self, event: ev.Event, state: ClusterState, index: int) -> None: ...


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class EventHandlers:
    """A listener that dispatches each event to ``on_<snake_case_event_name>(event, state, index)``;
    events without a method are ignored."""

    async def on_event(self, event: ev.Event, state: ClusterState, index: int) -> None:
        handler: Callable[[ev.Event, ClusterState, int], Awaitable[None]] | None = getattr(
            self, "on_" + _snake(type(event).__name__), None
        )
        if handler is not None:
            await handler(event, state, index)


class Reactor:
    def __init__(self, listener: ConsensusListener, state: Callable[[], ClusterState]) -> None:
        self._listener = listener
        self._state = state
        self._queue: asyncio.Queue[tuple[Sequence[ev.Event], int]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._outstanding = 0  # batches submitted and not yet handled
        self.handled_index = 0  # log index of the last batch handled

    def handled_through(self, index: int) -> bool:
        """Every event of log entries up to ``index`` that was submitted has been handled."""
        return self._outstanding == 0 or self.handled_index >= index

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="consensus-reactor")

    def submit(self, events: Sequence[ev.Event], index: int) -> None:
        if events:
            self._outstanding += 1
            self._queue.put_nowait((events, index))

    async def drain(self) -> None:
        """Wait until every submitted event has been handled."""
        await self._queue.join()

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    async def _run(self) -> None:
        while True:
            events, index = await self._queue.get()
            try:
                for event in events:
                    try:
                        await self._listener.on_event(event, self._state(), index)
                    except asyncio.CancelledError:
                        raise
                    except Exception:
                        log.exception(
                            "consensus listener failed", event_type=type(event).__name__, index=index
                        )
            finally:
                self._outstanding -= 1
                self.handled_index = max(self.handled_index, index)
                self._queue.task_done()
