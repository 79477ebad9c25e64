"""What a shard's WAL still holds for transfers: pins and clock checkpoints (pure bookkeeping,
owned by the shard's update thread).

Pins: a transfer that will replay the source's WAL from version ``v`` pins ``v``; checkpoints never
truncate records at or after the oldest pin, so the replay finds every record it needs.

Clock checkpoints answer "can a replica whose clock map is ``M`` be brought up to date from this
WAL alone?" (``wal_delta``). Each checkpoint flush records ``(version, clock map at version)``. For
a WAL whose oldest record is ``F``, take the first checkpoint at or after ``F - 1``: its map is at
least the map of everything the WAL no longer holds. If ``M`` has every tick of that map, the
records ``M`` lacks are all in the WAL (a conservative test: it may refuse a replica that could
have been served, never accept one that cannot). After a restart only the manifest's checkpoint
is known, which keeps the test safe.
"""

from __future__ import annotations

import itertools
import threading

from qcluster.shards.clock import ClockMap


class WalHistory:
    """Pins come and go from any thread (a transfer on the loop, checkpoints on the update
    thread): one lock guards them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pins: dict[int, int] = {}  # pin id -> first version to keep
        self._ids = itertools.count(1)
        self._checkpoints: list[tuple[int, ClockMap]] = []  # ascending versions

    # ------------------------------------------------------------------ pins
    def pin(self, version: int) -> int:
        with self._lock:
            pin_id = next(self._ids)
            self._pins[pin_id] = version
            return pin_id

    def unpin(self, pin_id: int) -> None:
        with self._lock:
            self._pins.pop(pin_id, None)

    def truncate_bound(self, upto_version: int) -> int:
        """The version up to which the WAL may drop records, given ``upto_version`` is durable
        elsewhere and the pins."""
        with self._lock:
            if not self._pins:
                return upto_version
            return min(upto_version, min(self._pins.values()) - 1)

    # ------------------------------------------------------------------ checkpoints
    def checkpoint(self, version: int, clocks: ClockMap) -> None:
        """The clock map as of ``version`` (at a flush, and where a new WAL file starts)."""
        if self._checkpoints and self._checkpoints[-1][0] >= version:
            if self._checkpoints[-1][0] == version:
                self._checkpoints[-1] = (version, clocks)
            return
        self._checkpoints.append((version, clocks))

    def prune(self, wal_first_version: int) -> None:
        """Forget checkpoints no longer needed for a WAL starting at ``wal_first_version``."""
        keep_from = 0
        for i, (version, _) in enumerate(self._checkpoints):
            if version >= wal_first_version - 1:
                keep_from = i
                break
        else:
            keep_from = max(0, len(self._checkpoints) - 1)
        del self._checkpoints[:keep_from]

    def replay_start(self, target: ClockMap, wal_first_version: int) -> int | None:
        """The version to replay from for a replica at ``target``, or None when the WAL no longer
        holds everything it lacks."""
        if wal_first_version == 1:  # the WAL was never cut: it holds every write
            return 1
        base = next((m for v, m in self._checkpoints if v >= wal_first_version - 1), None)
        if base is None:
            return None
        if target.behind(base):  # ``target`` lacks writes that left the WAL
            return None
        return wal_first_version
