"""Per endpoint and status: how many requests were answered and how long they took, in the shape of
Qdrant's ``OperationDurationStatistics`` (``GET /telemetry``: ``requests.rest.responses`` and
``requests.grpc.responses``). The Prometheus series of the same requests are in ``metrics.py``;
these are the figures telemetry reports, kept since the peer started.

Recorded on the event loop (one call per answered request), read when telemetry is asked for.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import Any

MAX_ROWS = 4096  # (endpoint, status, collection) rows kept with a collection label


@dataclass(slots=True)
class _Figures:
    count: int = 0
    failed: int = 0
    total: float = 0.0  # seconds
    low: float = float("inf")
    high: float = 0.0
    last: float = 0.0  # unix time of the last answer

    def json(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "fail_count": self.failed,
            "avg_duration_micros": self.total / self.count * 1e6,
            "min_duration_micros": self.low * 1e6,
            "max_duration_micros": self.high * 1e6,
            "total_duration_micros": round(self.total * 1e6),
            "last_responded": dt.datetime.fromtimestamp(self.last, dt.UTC).isoformat().replace("+00:00", "Z"),
        }


class RequestStats:
    """``endpoint`` (``"PUT /collections/{collection_name}/points"``) -> status -> figures (and,
    when ``observe`` is given one, per collection)."""

    def __init__(self) -> None:
        self._figures: dict[tuple[str, str, str], _Figures] = {}

    def observe(self, endpoint: str, status: str, seconds: float, failed: bool, collection: str = "") -> None:
        key = (endpoint, status, collection)
        f = self._figures.get(key)
        if f is None:
            if collection and len(self._figures) >= MAX_ROWS:  # bounded: the rest go unlabelled
                self.observe(endpoint, status, seconds, failed)
                return
            f = self._figures[key] = _Figures()
        f.count += 1
        f.failed += failed
        f.total += seconds
        f.low = min(f.low, seconds)
        f.high = max(f.high, seconds)
        f.last = time.time()

    def responses(self) -> dict[str, dict[str, dict[str, Any]]]:
        out: dict[str, dict[str, dict[str, Any]]] = {}
        for (endpoint, status, _), f in sorted(self._figures.items()):
            out.setdefault(endpoint, {})[status] = f.json()
        return out

    def rows(self) -> list[tuple[str, str, str, _Figures]]:
        """(endpoint, status, collection, figures), sorted."""
        return [(e, s, c, f) for (e, s, c), f in sorted(self._figures.items())]
