"""The deadline of the request being served, visible to every layer without being passed down.

The REST edge sets it for each request (the ``timeout`` parameter, else a configured default);
asyncio tasks inherit it (they copy the context), and so do the shard threads, which run their
work inside the caller's context. Long loops call :func:`check` between steps (per segment, per
query of a batch, every few thousand points of a payload scan): a request past its deadline
stops there with :class:`~qcluster.errors.TimeoutError_` instead of holding a thread for the
rest of its work. Outside a request (startup, the optimizer) there is no deadline and
:func:`check` costs one context-variable read.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Iterator
from contextlib import contextmanager

from qcluster.errors import TimeoutError_

_deadline: contextvars.ContextVar[tuple[float, float] | None] = contextvars.ContextVar(
    "qcluster_deadline", default=None
)


@contextmanager
def scope(seconds: float) -> Iterator[None]:
    """Run the body with a deadline ``seconds`` from now (a shorter outer deadline stays)."""
    now = time.monotonic()
    outer = _deadline.get()
    at = now + seconds
    if outer is not None and outer[0] <= at:
        yield
        return
    token = _deadline.set((at, seconds))
    try:
        yield
    finally:
        _deadline.reset(token)


def remaining() -> float | None:
    """Seconds left before the current deadline (None: no deadline; may be negative)."""
    current = _deadline.get()
    return None if current is None else current[0] - time.monotonic()


def check() -> None:
    """Raise :class:`TimeoutError_` when the current deadline has passed."""
    current = _deadline.get()
    if current is not None and time.monotonic() > current[0]:
        raise TimeoutError_(
            f"the request did not finish within its deadline of {current[1]:g} s "
            "(the `timeout` parameter, or service.limits.read_timeout_sec / write_timeout_sec)"
        )


def context() -> contextvars.Context:
    """The current context, for running work on another thread under the same deadline."""
    return contextvars.copy_context()
