"""Strict mode's read / write rate limits: a token bucket per collection and kind, ``per_minute``
tokens a minute, holding one minute's worth and refilled continuously. A request costing more
than the bucket holds is refused outright; one costing more than is left is refused with the
seconds until it would fit (``Retry-After``)."""

from __future__ import annotations

import math
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Any

from qcluster.collection.collection import Collection
from qcluster.errors import RateLimitedError


class TokenBucket:
    """``per_minute`` tokens a minute, holding at most one minute's worth."""

    def __init__(self, per_minute: int, clock: Any = time.monotonic) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self.tokens = float(per_minute)
        self.at = clock()
        self.lock = threading.Lock()

    def take(self, cost: int, kind: str) -> None:
        with self.lock:
            now = self.clock()
            rate = self.per_minute / 60.0
            self.tokens = min(float(self.per_minute), self.tokens + (now - self.at) * rate)
            self.at = now
            if cost > self.per_minute:
                raise RateLimitedError(
                    f"{kind} rate limit exceeded, request larger than rate limiter capacity, please try to "
                    "split your request"
                )
            if cost > self.tokens:
                wait = math.ceil((cost - self.tokens) / rate)
                raise RateLimitedError(
                    f"{kind} rate limit exceeded: Operation requires {cost} tokens but only "
                    f"{math.floor(self.tokens * 10) / 10:.1f} were available. Retry after {wait}s",
                    wait,
                )
            self.tokens -= cost


@dataclass(slots=True)
class _Buckets:
    read: TokenBucket | None = None
    write: TokenBucket | None = None


_buckets: weakref.WeakKeyDictionary[Collection, _Buckets] = weakref.WeakKeyDictionary()
_buckets_lock = threading.Lock()


def bucket(col: Collection, kind: str, per_minute: int) -> TokenBucket:
    """The collection's bucket of ``kind``; a new, full one when the limit changed."""
    with _buckets_lock:
        held = _buckets.setdefault(col, _Buckets())
        current = held.read if kind == "Read" else held.write
        if current is None or current.per_minute != per_minute:
            current = TokenBucket(per_minute)
            if kind == "Read":
                held.read = current
            else:
                held.write = current
        return current
