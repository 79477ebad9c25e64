"""One FAISS batch per segment for batch endpoints.

``/points/search/batch`` and ``/points/query/batch`` run each search of the batch through the
general query path, concurrently. Inside ``batch_scope()`` (entered by those endpoints; a context
variable, so it follows the tasks ``asyncio.gather`` creates) a local shard does not answer each
search on arrival: it collects the searches that reach it in the same event-loop turn and
answers them with one ``shard_search.search`` call, where requests sharing vector name, filter and
parameters are one planner decision and one FAISS call per segment.

::

    gather(run_query(s) for s in batch)     shard.search([r1])  shard.search([r2]) ...
        └─ within batch_scope()                   └── pending ──┘  (same loop turn)
                                                  one search([r1, r2, ...]) ─► split back

When the combined call fails (a bad vector in one request), each search of the turn is answered
on its own, so the error reaches only the request that caused it. Searches of independent concurrent
clients are not joined: one call runs on one search thread, and separate calls let both search
threads (and cores) work at once. Outside a scope nothing changes: no extra loop turn.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar

from qcluster.shards.base import ScoredPoint, SearchRequest

_scope: ContextVar[bool] = ContextVar("qcluster_search_batch", default=False)
Results = list[list[ScoredPoint]]


@contextmanager
def batch_scope() -> Iterator[None]:
    token = _scope.set(True)
    try:
        yield
    finally:
        _scope.reset(token)


def active() -> bool:
    return _scope.get()


class Coalescer:
    """Joins the searches arriving in one loop turn into one call of ``run``."""

    def __init__(self, run: Callable[[Sequence[SearchRequest]], Awaitable[Results]]) -> None:
        self._run = run
        self._pending: list[tuple[Sequence[SearchRequest], asyncio.Future[Results]]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def search(self, requests: Sequence[SearchRequest]) -> Results:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Results] = loop.create_future()
        self._pending.append((requests, future))
        if len(self._pending) == 1:
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        task = asyncio.ensure_future(self._answer(pending))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, pending: list[tuple[Sequence[SearchRequest], asyncio.Future[Results]]]) -> None:
        flat = [r for requests, _ in pending for r in requests]
        try:
            results = await self._run(flat) if len(pending) > 1 else await self._run(pending[0][0])
        except Exception as exc:
            if len(pending) == 1:
                if not pending[0][1].done():
                    pending[0][1].set_exception(exc)
                return
            # one bad request must not fail the others: answer each on its own
            for requests, future in pending:
                try:
                    alone = await self._run(requests)
                except Exception as own:
                    if not future.done():
                        future.set_exception(own)
                else:
                    if not future.done():
                        future.set_result(alone)
            return
        except BaseException as exc:  # cancelled (shard closing): every waiter sees it
            for _, future in pending:
                if not future.done():
                    future.set_exception(exc)
            raise
        start = 0
        for requests, future in pending:
            if not future.done():
                future.set_result(results[start : start + len(requests)])
            start += len(requests)
