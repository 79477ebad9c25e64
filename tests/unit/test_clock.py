"""Operation clocks: tags, the replica's clock map, the coordinator's clock set, the epoch file."""

from __future__ import annotations

from pathlib import Path

import pytest

from qcluster.errors import CorruptedStorageError
from qcluster.shards.clock import EPOCH_SHIFT, ClockMap, ClockSet, ClockTag, next_epoch


def test_clock_map_skips_what_it_has_applied() -> None:
    m = ClockMap()
    tag = ClockTag(7, 0, 5)
    assert not m.seen(tag)
    m.advance(tag)
    assert m.seen(tag)
    assert m.seen(ClockTag(7, 0, 4))  # an older write of the same clock
    assert not m.seen(ClockTag(7, 0, 6))
    assert not m.seen(ClockTag(7, 1, 1))  # another clock of the same peer
    assert not m.seen(ClockTag(8, 0, 1))
    m.advance(ClockTag(7, 0, 3))  # advancing never goes back
    assert m.seen(ClockTag(7, 0, 5))


def test_clock_maps_compare_and_round_trip() -> None:
    a = ClockMap.from_json([[1, 0, 10], [2, 0, 4]])
    b = ClockMap.from_json([[1, 0, 12], [2, 0, 4], [3, 1, 1]])
    assert a.behind(b) == {(1, 0): (10, 12), (3, 1): (-1, 1)}
    assert b.behind(a) == {}
    assert ClockMap.from_json(b.to_json()) == b
    assert next(iter(b)) == ClockTag(1, 0, 12)


def test_clock_set_lends_distinct_clocks_to_concurrent_writes() -> None:
    clocks = ClockSet(lambda: 9, epoch=3)
    c1, t1 = clocks.take()
    _c2, t2 = clocks.take()
    assert t1.clock_id != t2.clock_id
    assert t1.peer_id == t2.peer_id == 9
    clocks.give_back(c1)
    _c3, t3 = clocks.take()
    assert t3.clock_id == t1.clock_id and t3.tick > t1.tick
    assert clocks.size == 2
    assert t1.tick >> EPOCH_SHIFT == 3


def test_a_restarted_peer_ticks_above_its_old_ticks(tmp_path: Path) -> None:
    first = next_epoch(tmp_path)
    before = ClockSet(lambda: 1, first)
    for _ in range(1000):
        clock, last = before.take()
        before.give_back(clock)
    after = ClockSet(lambda: 1, next_epoch(tmp_path))
    _, tag = after.take()
    assert tag.clock_id == last.clock_id and tag.tick > last.tick
    m = ClockMap()
    m.advance(last)
    assert not m.seen(tag)  # the restarted coordinator's first write is not taken for a re-send


def test_a_damaged_epoch_file_stops_the_peer(tmp_path: Path) -> None:
    (tmp_path / "clock_epoch").write_text("garbage")
    with pytest.raises(CorruptedStorageError, match="clock epoch"):
        next_epoch(tmp_path)
