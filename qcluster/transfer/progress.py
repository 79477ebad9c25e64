"""Progress of the transfers this peer sends: what ``/collections/{c}/cluster`` shows as the
transfer's ``comment`` on every peer, what the logs and ``/metrics`` report."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from qcluster.consensus.operations import TransferRef


@dataclass
class TransferProgress:
    ref: TransferRef
    method: str
    stage: str = "starting"
    done: int = 0
    total: int = 0
    unit: str = "points"
    started_at: float = field(default_factory=time.time)
    stage_started: float = field(default_factory=time.monotonic)

    def begin(self, stage: str, total: int, unit: str) -> None:
        self.stage, self.total, self.unit, self.done = stage, total, unit, 0
        self.stage_started = time.monotonic()

    def advance(self, n: int) -> None:
        self.done += n
        self.total = max(self.total, self.done)

    @property
    def rate(self) -> float:
        elapsed = time.monotonic() - self.stage_started
        return self.done / elapsed if elapsed > 0 else 0.0

    def comment(self) -> str:
        """E.g. ``stream_records: copying points 4000/10000 (40%), 2100 points/s, ETA 3 s``."""
        text = f"{self.method}: {self.stage}"
        if self.total:
            pct = 100 * self.done / self.total
            text += f" {self.done}/{self.total} {self.unit} ({pct:.0f}%)"
            rate = self.rate
            if rate > 0:
                eta = (self.total - self.done) / rate
                text += f", {rate:.0f} {self.unit}/s, ETA {eta:.0f} s"
        return text


class ProgressRegistry:
    def __init__(self) -> None:
        self._items: dict[TransferRef, TransferProgress] = {}

    def start(self, ref: TransferRef, method: str) -> TransferProgress:
        item = self._items[ref] = TransferProgress(ref, method)
        return item

    def end(self, ref: TransferRef) -> None:
        self._items.pop(ref, None)

    def of_collection(self, collection: str) -> list[TransferProgress]:
        return [p for r, p in self._items.items() if r.collection == collection]

    def all(self) -> list[TransferProgress]:
        return list(self._items.values())
