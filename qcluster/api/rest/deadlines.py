"""Every request has a deadline: the ``timeout`` query parameter (seconds, as Qdrant takes it),
else ``service.limits.read_timeout_sec`` / ``write_timeout_sec``, never more than
``max_timeout_sec``.

::

    read  (GET, and the POSTs that only read)
        deadline scope (qcluster.deadline) + asyncio timeout around the handler
        -> past the deadline: the handler is cancelled (shard reads still queued never start,
           running ones stop at their next deadline check) -> 408
    write (everything else)
        the handler runs as its own task under the same deadline scope, shielded
        -> past the deadline (+ a grace second, so a handler's own timeout answers first): 408
           "goes on in the background"; the task is never cancelled half-way (a write is applied
           whole or not at all) and is awaited before the peer shuts its shards

Cancellation: when this middleware is itself cancelled (shutdown), a read's handler is
cancelled with it; a write's task goes on and is drained by :func:`drain_writes`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from qcluster import deadline
from qcluster.api.rest.app import is_read
from qcluster.errors import TimeoutError_, UnprocessableInputError
from qcluster.logging import get_logger
from qcluster.settings import LimitsSettings

log = get_logger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
WRITE_GRACE = 1.0
DRAIN_TIMEOUT = 60.0
BACKGROUND_KEY: web.AppKey[set[asyncio.Task[Any]]] = web.AppKey("background_writes")


def request_timeout(request: web.Request, limits: LimitsSettings, read: bool) -> float:
    raw = request.query.get("timeout")
    if raw is None:
        return limits.read_timeout_sec if read else limits.write_timeout_sec
    try:
        value = float(int(raw))
    except ValueError:
        raise UnprocessableInputError(
            f"[timeout: expected a whole number of seconds, got {raw!r}]", "timeout"
        ) from None
    if value < 1:
        raise UnprocessableInputError(f"[timeout: value {raw} invalid, must be 1 or larger]", "timeout")
    return min(value, limits.max_timeout_sec)


def _expired(seconds: float, background: bool) -> TimeoutError_:
    tail = "; the operation goes on in the background" if background else ""
    return TimeoutError_(
        f"the request did not finish within its deadline of {seconds:g} s (the `timeout` parameter, "
        f"or service.limits.read_timeout_sec / write_timeout_sec){tail}"
    )


async def _scoped(handler: Handler, request: web.Request, seconds: float) -> web.StreamResponse:
    with deadline.scope(seconds):
        return await handler(request)


def deadline_middleware(limits: LimitsSettings, background: set[asyncio.Task[Any]]) -> Any:
    @web.middleware
    async def with_deadline(request: web.Request, handler: Handler) -> web.StreamResponse:
        read = is_read(request)
        seconds = request_timeout(request, limits, read)
        if read:
            timer = asyncio.timeout(seconds)
            try:
                async with timer:
                    return await _scoped(handler, request, seconds)
            except TimeoutError:
                if timer.expired():
                    raise _expired(seconds, background=False) from None
                raise
        task = asyncio.ensure_future(_scoped(handler, request, seconds))
        try:
            done, _ = await asyncio.wait({task}, timeout=seconds + WRITE_GRACE)
        finally:
            if not task.done():  # past the deadline, or this middleware cancelled: never the write
                background.add(task)
                task.add_done_callback(_finished(background, request.path))
        if not done:
            raise _expired(seconds, background=True)
        return task.result()

    return with_deadline


def _finished(
    background: set[asyncio.Task[Any]], path: str, what: str = "write past its deadline"
) -> Callable[[asyncio.Task[Any]], None]:
    def done(task: asyncio.Task[Any]) -> None:
        background.discard(task)
        if task.cancelled():
            log.warning(f"{what} was cancelled", path=path)
            return
        exc = task.exception()
        if exc is not None:
            log.warning(f"{what} failed", path=path, error=str(exc))
        else:
            log.info(f"{what} finished", path=path)

    return done


def in_background(request: web.Request, work: Awaitable[Any], what: str) -> None:
    """Run ``work`` past its request (``?wait=false``), held and drained like the writes that
    outlive their deadline (``drain_writes``), its end logged."""
    background = request.app[BACKGROUND_KEY]
    task = asyncio.ensure_future(work)
    background.add(task)
    task.add_done_callback(_finished(background, request.path, what))


async def drain_writes(app: web.Application) -> None:
    """On shutdown: let writes that outlived their deadline finish (bounded), then cancel."""
    background = app[BACKGROUND_KEY]
    tasks = set(background)
    if not tasks:
        return
    log.info("waiting for writes past their deadline", count=len(tasks))
    _, pending = await asyncio.wait(tasks, timeout=DRAIN_TIMEOUT)
    for task in pending:
        task.cancel()
    with contextlib.suppress(Exception):
        await asyncio.gather(*pending, return_exceptions=True)
