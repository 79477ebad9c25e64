"""A shared / exclusive gate for the operations of one collection.

Ordinary operations pass ``enter()`` / ``leave()`` (a counter; nothing awaits while the gate is
open, so the hot path costs a few attribute updates). ``exclusive()`` closes the gate to new
entries, waits until the ones inside have left, and holds it until its block ends: a collection
rebuild uses it to swap its shards while nothing is running on them.

Cancellation: a task cancelled while waiting in ``enter()`` never entered, so it must not call
``leave()``; a task cancelled inside ``exclusive()`` reopens the gate on the way out.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class Gate:
    def __init__(self) -> None:
        self._inside = 0
        self._closed = False
        self._opened = asyncio.Event()
        self._opened.set()
        self._drained: asyncio.Event | None = None
        self._lock = asyncio.Lock()

    @property
    def inside(self) -> int:
        return self._inside

    async def enter(self) -> None:
        while self._closed:
            await self._opened.wait()
        self._inside += 1

    def leave(self) -> None:
        self._inside -= 1
        if self._inside == 0 and self._drained is not None:
            self._drained.set()

    @asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        async with self._lock:
            self._closed = True
            self._opened.clear()
            try:
                while self._inside:
                    self._drained = asyncio.Event()
                    await self._drained.wait()
                self._drained = None
                yield
            finally:
                self._drained = None
                self._closed = False
                self._opened.set()
