"""Retry policies, named in one place (tenacity). Only transient failures are retried."""

from __future__ import annotations

from collections.abc import Callable

from tenacity import AsyncRetrying, retry_if_exception, stop_after_delay, wait_exponential

from qcluster.errors import QClusterError, is_transient


def until_done(max_seconds: float, max_wait: float = 5.0) -> AsyncRetrying:
    """Keep retrying transient failures with exponential back-off (0.1 s doubling up to
    ``max_wait``) for up to ``max_seconds``; a non-transient failure ends it at once."""
    return AsyncRetrying(
        retry=retry_if_exception(is_transient),
        wait=wait_exponential(multiplier=0.1, max=max_wait),
        stop=stop_after_delay(max_seconds),
        reraise=True,
    )


def while_unknown(max_seconds: float, unknown: Callable[[], bool], max_wait: float = 2.0) -> AsyncRetrying:
    """Keep retrying a write for up to ``max_seconds`` (back-off 0.1 s doubling up to ``max_wait``)
    while its failures leave its outcome unknown (``unknown()``); a refusal ends it at once."""
    return AsyncRetrying(
        retry=retry_if_exception(lambda exc: isinstance(exc, QClusterError) and unknown()),
        wait=wait_exponential(multiplier=0.1, max=max_wait),
        stop=stop_after_delay(max_seconds),
        reraise=True,
    )
