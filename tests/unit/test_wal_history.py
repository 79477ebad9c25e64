"""WAL pins and the wal_delta coverage test (pure)."""

from __future__ import annotations

from qcluster.shards.clock import ClockMap
from qcluster.shards.wal_history import WalHistory


def m(*ticks: tuple[int, int, int]) -> ClockMap:
    return ClockMap.from_json([list(t) for t in ticks])


def test_pins_bound_truncation() -> None:
    h = WalHistory()
    assert h.truncate_bound(100) == 100
    a = h.pin(40)
    b = h.pin(70)
    assert h.truncate_bound(100) == 39
    h.unpin(a)
    assert h.truncate_bound(100) == 69
    h.unpin(b)
    assert h.truncate_bound(100) == 100


def test_a_never_cut_wal_serves_anyone() -> None:
    assert WalHistory().replay_start(ClockMap(), wal_first_version=1) == 1


def test_replay_needs_everything_the_wal_dropped() -> None:
    h = WalHistory()
    h.checkpoint(10, m((1, 0, 10)))
    h.checkpoint(50, m((1, 0, 50), (2, 0, 5)))
    h.checkpoint(90, m((1, 0, 90), (2, 0, 9)))
    # the WAL now starts at 51: the map as of 50 left it
    h.prune(51)
    assert h.replay_start(m((1, 0, 50), (2, 0, 5)), 51) == 51
    assert h.replay_start(m((1, 0, 60), (2, 0, 7)), 51) == 51
    assert h.replay_start(m((1, 0, 49), (2, 0, 5)), 51) is None  # lacks a dropped write
    assert h.replay_start(m((1, 0, 50)), 51) is None  # never saw clock (2, 0)
    # no checkpoint at or after the start: refuse rather than guess
    assert WalHistory().replay_start(m((1, 0, 99)), 51) is None


def test_checkpoints_keep_ascending_versions() -> None:
    h = WalHistory()
    h.checkpoint(10, m((1, 0, 10)))
    h.checkpoint(8, m((1, 0, 8)))  # older than what is known: ignored
    h.checkpoint(10, m((1, 0, 11)))  # the same version: the newer map
    assert h.replay_start(m((1, 0, 11)), 11) == 11
    assert h.replay_start(m((1, 0, 10)), 11) is None


def test_copies_serve_no_replay_until_merged_then_only_after_the_merge() -> None:
    """A replica filled by stream_records holds copies of points in its WAL (never cut), not the
    writes: replaying them to a replica that missed a delete would bring the point back."""
    h = WalHistory()
    for version in range(1, 51):
        h.copied(version)
    h.checkpoint(60, m((1, 0, 3)))  # a flush mid-transfer: the map undercounts the copies
    assert h.replay_start(ClockMap(), wal_first_version=1) is None
    assert h.replay_start(m((1, 0, 3)), wal_first_version=1) is None
    h.merged(70, m((1, 0, 90), (2, 0, 9)))
    assert h.replay_start(m((1, 0, 89), (2, 0, 9)), wal_first_version=1) is None  # lacks a copied write
    assert h.replay_start(m((1, 0, 90), (2, 0, 9)), wal_first_version=1) == 71
    # the manifest keeps it: a restart does not turn the copies back into history
    again = WalHistory()
    again.checkpoint(75, m((1, 0, 95), (2, 0, 9)))
    again.restore(h.state())
    assert again.replay_start(m((1, 0, 90), (2, 0, 9)), wal_first_version=1) is None
    assert again.replay_start(m((1, 0, 95), (2, 0, 9)), wal_first_version=1) == 71


def test_a_merge_without_copies_moves_no_floor() -> None:
    h = WalHistory()
    h.merged(40, m((1, 0, 40)))
    assert h.replay_start(ClockMap(), wal_first_version=1) == 1
