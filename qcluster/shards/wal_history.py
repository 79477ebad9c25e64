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

Copies: a replica filled by a transfer (``stream_records`` point batches, untagged) holds in its
WAL copies of the source's points, not the writes that made them: no deletes, no order. Until the
transfer raises its clock map (``merged``) its WAL serves no replay at all; after, a replay starts
only after the last copy (the *floor*), from the merged map. Both are kept in the manifest
(``state`` / ``restore``), so a restart never turns copies back into history.
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
        self._floor = 0  # WAL versions up to here may be copies: no replay starts at or before
        self._copying = False  # copies arrived and the clock map was not raised yet

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

    # ------------------------------------------------------------------ copies
    def copied(self, version: int) -> None:
        """WAL version ``version`` holds a copy of a point (a transfer's fill), not a write."""
        self._copying = True
        self._floor = max(self._floor, version)

    def merged(self, version: int, clocks: ClockMap) -> None:
        """The clock map was raised to the transfer source's at ``version``: it now stands for
        the copies, and a replay may start after them."""
        if self._copying:
            self._copying = False
            self._floor = max(self._floor, version)
        self.checkpoint(version, clocks)

    def state(self) -> dict[str, object]:
        """The copy bookkeeping for the manifest."""
        return {"replay_floor": self._floor, "copying": self._copying}

    def restore(self, state: dict[str, object]) -> None:
        floor = state.get("replay_floor", 0)
        self._floor = int(floor) if isinstance(floor, int) else 0
        self._copying = bool(state.get("copying", False))

    # ------------------------------------------------------------------ replays
    def replay_start(self, target: ClockMap, wal_first_version: int) -> int | None:
        """The version to replay from for a replica at ``target``, or None when the WAL no longer
        holds everything it lacks (or holds copies where it lacks writes)."""
        if self._copying:
            return None
        first = max(wal_first_version, self._floor + 1)
        if first == 1:  # the WAL was never cut and holds no copies: it holds every write
            return 1
        base = next((m for v, m in self._checkpoints if v >= first - 1), None)
        if base is None:
            return None
        if target.behind(base):  # ``target`` lacks writes that left the WAL (or were copied)
            return None
        return first
