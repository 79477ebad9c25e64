"""A LocalShard's WAL and clock map as shard transfers use them.

On a transfer's source: pin the WAL so checkpoints keep the records a replay needs
(``pin_wal`` / ``unpin_wal``), find where a replica with a given clock map must start replaying
(``pin_for_replay``: ``wal_delta``), and read records in batches (``read_wal``). On its target:
the clock map (``clock_map``) and raising it to the source's once the transfer is done
(``merge_clocks``). The bookkeeping (pins, clock checkpoints) is ``wal_history.py``; the clock
maps are ``clock.py``.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import TYPE_CHECKING

from qcluster.shards.clock import ClockMap
from qcluster.shards.operations import record_tag

if TYPE_CHECKING:
    from qcluster.shards.local_shard import LocalShard


class WalReplay:
    def __init__(self, shard: LocalShard):
        self.shard = shard

    async def pin_wal(self) -> tuple[int, int]:
        """Keep every WAL record after the current version until ``unpin_wal``; returns
        (pin id, first version kept)."""
        shard = self.shard
        shard.check_open()

        def pin() -> tuple[int, int]:
            start = shard.applied_version + 1
            return shard.history.pin(start), start

        pinned: tuple[int, int] = await shard.in_update(pin)
        return pinned

    def unpin_wal(self, pin_id: int) -> None:
        self.shard.history.unpin(pin_id)

    async def pin_for_replay(self, target: ClockMap) -> tuple[int, int] | None:
        """Pin the WAL from where a replica at ``target`` must replay it to catch up: (pin id,
        first version). None when the WAL no longer holds everything ``target`` lacks,
        ``target`` holds writes this replica lacks (a replay cannot remove them), or it holds
        writes this replica applied after ones it lacks (a replay would reorder them)."""
        shard = self.shard
        shard.check_open()
        history = shard.history

        def decide() -> tuple[int, int] | None:
            assert shard.wal is not None
            if shard.clocks.behind(target):
                return None
            start = history.replay_start(target, shard.wal.first_version)
            return None if start is None else (history.pin(start), start)

        pinned: tuple[int, int] | None = await shard.in_update(decide)
        if pinned is None:
            return None
        pin_id, start = pinned
        first = await self._first_unseen(start, target)
        if first is None:
            history.unpin(pin_id)
            return None
        if first == start:
            return pinned
        moved = history.pin(first)  # keep less: the replay starts at the first write it lacks
        history.unpin(pin_id)
        return moved, first

    async def _first_unseen(self, start: int, target: ClockMap) -> int | None:
        """The first WAL version from ``start`` whose write ``target`` lacks (or untagged); None
        when ``target`` holds a later write already: it applied that one out of this replica's
        order (directly, while behind), and replaying the older writes over it could leave an
        older value of a point, so the target needs a full copy instead."""
        wal = self.shard.wal
        assert wal is not None

        def scan() -> int | None:
            first: int | None = None
            for version, data in wal.read_from(start):
                tag = record_tag(data)
                lacks = tag is None or not target.seen(tag)
                if first is None:
                    if lacks:
                        first = version
                elif not lacks:
                    return None
            return wal.last_version + 1 if first is None else first

        loop = asyncio.get_running_loop()
        first: int | None = await loop.run_in_executor(self.shard.io_pool, scan)
        return first

    async def read_wal(self, start: int, max_records: int) -> list[tuple[int, bytes]]:
        """Up to ``max_records`` WAL records from version ``start`` (an empty list at the end)."""
        self.shard.check_open()
        wal = self.shard.wal
        assert wal is not None

        def read() -> list[tuple[int, bytes]]:
            if start > wal.last_version:
                return []
            return list(itertools.islice(wal.read_from(start), max_records))

        loop = asyncio.get_running_loop()
        result: list[tuple[int, bytes]] = await loop.run_in_executor(self.shard.io_pool, read)
        return result

    async def clock_map(self) -> ClockMap:
        """A copy of the clock map as of now (taken on the update thread)."""
        shard = self.shard
        shard.check_open()
        result: ClockMap = await shard.in_update(lambda: shard.clocks.copy())
        return result

    async def merge_clocks(self, clocks: ClockMap) -> ClockMap:
        """Raise this replica's clock map to at least ``clocks``; returns the result."""
        shard = self.shard
        shard.check_open()

        def merge() -> ClockMap:
            for tag in clocks:
                shard.clocks.advance(tag)
            shard.history.merged(shard.applied_version, shard.clocks.copy())
            return shard.clocks.copy()

        result: ClockMap = await shard.in_update(merge)
        return result
