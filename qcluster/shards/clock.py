"""Operation clocks: who coordinated a write, and which writes a replica has applied (pure).

Every write to a shard carries a :class:`ClockTag` ``(peer_id, clock_id, tick)`` assigned by the
peer that coordinates it. The tag travels with the operation to every replica and into its WAL
record.

Coordinator side (:class:`ClockSet`): a small pool of clocks per replica set. A clock is held by
one write at a time (so concurrent writes take different clocks) and its tick only grows: each
write takes the next tick. Ticks survive restarts without a write per tick: a tick is
``epoch << EPOCH_SHIFT | counter`` where ``epoch`` is a per-peer number persisted and raised once
at every start (:func:`next_epoch`), so a restarted peer's ticks are above every tick it used
before.

Replica side (:class:`ClockMap`): for every ``(peer_id, clock_id)`` the highest tick applied. A
tagged operation whose tick is not above the map's is a re-send (a retry, a forward proxy, a
replay) and is skipped, so applying is idempotent across replicas, not only within one WAL. Two
replicas compare their maps to tell whether one misses writes, and from which coordinators
(:meth:`ClockMap.behind`). The map is persisted with the shard's checkpoints and rebuilt from the
WAL records' tags on replay.

Order caveat: writes of one clock reach a replica in tick order as long as the replica answers
each write before the clock's next one is sent; a replica that times out is marked Dead by the
coordinator, and a Dead replica is rebuilt by a transfer, not by its clock map.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from qcluster.errors import CorruptedStorageError
from qcluster.shards.segment_files import fsync_dir, write_bytes_atomic

EPOCH_SHIFT = 40  # 2^40 ticks per clock per run; 2^24 restarts
MAX_COUNTER = (1 << EPOCH_SHIFT) - 1
EPOCH_FILE = "clock_epoch"


@dataclass(frozen=True, slots=True)
class ClockTag:
    peer_id: int
    clock_id: int
    tick: int

    def as_list(self) -> list[int]:
        return [self.peer_id, self.clock_id, self.tick]

    @classmethod
    def from_list(cls, raw: Iterable[int]) -> ClockTag:
        peer, clock, tick = (int(x) for x in raw)
        return cls(peer, clock, tick)


class ClockMap:
    """Highest applied tick per ``(peer_id, clock_id)``. Not thread-safe: the shard's update
    thread owns it."""

    def __init__(self, ticks: dict[tuple[int, int], int] | None = None):
        self._ticks: dict[tuple[int, int], int] = dict(ticks or {})

    def seen(self, tag: ClockTag) -> bool:
        """True when ``tag`` (or a later write of its clock) was already applied."""
        return self._ticks.get((tag.peer_id, tag.clock_id), -1) >= tag.tick

    def tick_of(self, peer_id: int, clock_id: int) -> int:
        """The highest tick applied from that clock (-1: none)."""
        return self._ticks.get((peer_id, clock_id), -1)

    def advance(self, tag: ClockTag) -> None:
        key = (tag.peer_id, tag.clock_id)
        if self._ticks.get(key, -1) < tag.tick:
            self._ticks[key] = tag.tick

    def behind(self, other: ClockMap) -> dict[tuple[int, int], tuple[int, int]]:
        """Clocks where ``self`` lacks writes ``other`` has: key -> (self's tick, other's tick);
        a clock ``self`` has never seen shows tick -1."""
        return {
            key: (self._ticks.get(key, -1), tick)
            for key, tick in other._ticks.items()
            if self._ticks.get(key, -1) < tick
        }

    def copy(self) -> ClockMap:
        return ClockMap(self._ticks)

    def __iter__(self) -> Iterator[ClockTag]:
        for (peer, clock), tick in sorted(self._ticks.items()):
            yield ClockTag(peer, clock, tick)

    def __len__(self) -> int:
        return len(self._ticks)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ClockMap) and self._ticks == other._ticks

    def to_json(self) -> list[list[int]]:
        return [t.as_list() for t in self]

    @classmethod
    def from_json(cls, raw: Iterable[Iterable[int]] | None) -> ClockMap:
        out = cls()
        for item in raw or ():
            out.advance(ClockTag.from_list(item))
        return out


class Clock:
    __slots__ = ("clock_id", "counter")

    def __init__(self, clock_id: int):
        self.clock_id = clock_id
        self.counter = 0


class ClockSet:
    """The coordinator's clocks for one replica set. ``take()`` lends a free clock and its next
    tick; ``give_back(clock)`` returns it once the write is done on every replica. Runs on the
    event loop only (no locking needed)."""

    def __init__(self, peer_id: Callable[[], int], epoch: int):
        self._peer_id = peer_id  # read per write: a cluster peer learns its id after storage loads
        self.epoch = epoch
        self._free: list[Clock] = []
        self._count = 0

    def take(self) -> tuple[Clock, ClockTag]:
        clock = self._free.pop() if self._free else self._new()
        if clock.counter >= MAX_COUNTER:  # 2^40 writes on one clock in one run: use a fresh clock
            clock = self._new()
        clock.counter += 1
        return clock, ClockTag(self._peer_id(), clock.clock_id, (self.epoch << EPOCH_SHIFT) | clock.counter)

    def give_back(self, clock: Clock) -> None:
        self._free.append(clock)

    def _new(self) -> Clock:
        clock = Clock(self._count)
        self._count += 1
        return clock

    @property
    def size(self) -> int:
        return self._count


def next_epoch(storage_path: Path) -> int:
    """Read, raise and durably store this peer's clock epoch (once per start). A damaged file
    stops the peer: guessing an epoch could reuse ticks, and replicas would skip those writes."""
    path = Path(storage_path) / EPOCH_FILE
    current = 0
    if path.exists():
        text = path.read_text().strip()
        if not text.isdigit():
            raise CorruptedStorageError(f"{path}: expected the clock epoch number, found {text[:40]!r}")
        current = int(text)
    epoch = current + 1
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, str(epoch).encode())
    fsync_dir(path.parent)
    return epoch
