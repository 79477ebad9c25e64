"""The offsets a parsed filter allows in one segment, remembered until the segment changes.

The same filter comes back query after query (a tenant, a category, a price band: parses are
cached by their JSON, so it is the same ``Filter`` object each time), and on a segment that does
not change its allowed offsets do not change either. Working them out from the payload indexes
(estimates to order the ``must`` parts, posting or sorted-value searches, per-offset lookups,
the live mask) costs more than scoring a few dozen vectors, so the planner keeps the answer per
segment, keyed by the filter object and what shaped the answer, and stamped with the segment's
``generation`` (bumped after every change to its points, payloads or payload indexes), ``epoch``
(deletions, vector removals) and size. A stamp that no longer matches is a miss.

Stamps only grow, so an answer stored under a newer stamp drops every older one (a segment that
keeps changing holds only the answers of its current state), and one computed under an older
stamp is not stored. Concurrency: the segment's one writer bumps ``generation`` after a change
is complete, and a reader takes the stamp before it computes, so an answer computed while a
change was under way carries the old stamp and is never served after it. The map is bounded in
entries and in offsets held (oldest dropped first); entries hold their filter, so an id is never
reused under a live key.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable
from typing import Any

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]
Stamp = tuple[int, int, int]
MAX_ENTRIES = 256
MAX_OFFSETS = 1 << 18  # offsets held per segment (2 MiB)


class SelectionCache:
    """Per segment: (filter, key) -> allowed offsets (or None: the plan needs a mask)."""

    def __init__(self) -> None:
        self._entries: dict[tuple[int, Hashable], tuple[Any, Stamp, I64 | None]] = {}
        self._held = 0
        self._stamp: Stamp = (-1, -1, -1)  # of the answers held
        self._lock = threading.Lock()

    def get(self, flt: Any, key: Hashable, stamp: Stamp) -> tuple[bool, I64 | None]:
        """(found, offsets): found is False when nothing valid is remembered."""
        hit = self._entries.get((id(flt), key))
        if hit is None or hit[0] is not flt or hit[1] != stamp:
            return False, None
        return True, hit[2]

    def put(self, flt: Any, key: Hashable, stamp: Stamp, offsets: I64 | None) -> None:
        size = 0 if offsets is None else len(offsets)
        if size > MAX_OFFSETS // 4:
            return
        if offsets is not None:  # a copy of its own (it may view an index's arrays), read-only
            offsets = np.array(offsets, dtype=np.int64)
            offsets.flags.writeable = False
        with self._lock:
            entries = self._entries
            if stamp != self._stamp:
                if stamp < self._stamp:
                    return  # computed before a change whose answers are already here
                entries.clear()  # every answer held is of an older state of the segment
                self._held = 0
                self._stamp = stamp
            old = entries.pop((id(flt), key), None)
            if old is not None:
                self._held -= 0 if old[2] is None else len(old[2])
            while entries and (len(entries) >= MAX_ENTRIES or self._held + size > MAX_OFFSETS):
                dropped = entries.pop(next(iter(entries)))
                self._held -= 0 if dropped[2] is None else len(dropped[2])
            entries[(id(flt), key)] = (flt, stamp, offsets)
            self._held += size

    def __len__(self) -> int:
        return len(self._entries)
