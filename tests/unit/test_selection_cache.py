"""The per-segment memory of filter selections (``selection_cache.py``) and the segment stamp it
relies on: a stamp that moved is a miss, entries are told apart by filter identity, the memory
stays bounded, and every kind of segment change moves the stamp."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from qcluster.shards import selection_cache
from qcluster.shards.filters import parse_filter
from qcluster.shards.payload_index import build_index, parse_field_schema
from qcluster.shards.segment import Segment
from qcluster.shards.selection_cache import SelectionCache


def _flt(value: int) -> object:
    return parse_filter({"must": [{"key": "n", "match": {"value": value}}]})


def test_hit_only_for_the_same_filter_key_and_stamp() -> None:
    cache = SelectionCache()
    flt, other = _flt(1), _flt(2)
    offs = np.array([3, 5, 8], dtype=np.int64)
    cache.put(flt, ("", 10), (1, 0, 100), offs)
    cache.put(other, ("", 10), (1, 0, 100), offs[:1])
    found, got = cache.get(flt, ("", 10), (1, 0, 100))
    assert found and got is not None and got.tolist() == [3, 5, 8]
    assert not got.flags.writeable  # shared by later queries: nobody may write into it
    offs[0] = 99  # the caller's array is not the one kept
    assert cache.get(flt, ("", 10), (1, 0, 100))[1].tolist() == [3, 5, 8]  # type: ignore[union-attr]
    assert cache.get(flt, ("", 10), (2, 0, 100)) == (False, None)  # generation moved
    assert cache.get(flt, ("", 10), (1, 1, 100)) == (False, None)  # epoch moved
    assert cache.get(flt, ("", 10), (1, 0, 101)) == (False, None)  # size moved
    assert cache.get(flt, ("", 20), (1, 0, 100)) == (False, None)  # another budget key
    assert cache.get(other, ("", 10), (1, 0, 100))[1].tolist() == [3]  # type: ignore[union-attr]


def test_a_newer_stamp_drops_older_answers_and_an_older_one_is_not_kept() -> None:
    cache = SelectionCache()
    a, b = _flt(1), _flt(2)
    one = np.array([1], dtype=np.int64)
    cache.put(a, "k", (3, 0, 10), one)
    cache.put(b, "k", (4, 0, 10), one)  # the segment changed: a's answer is gone
    assert len(cache) == 1 and cache.get(b, "k", (4, 0, 10))[0]
    cache.put(a, "k", (3, 0, 10), one)  # computed before the change: not stored
    assert len(cache) == 1 and not cache.get(a, "k", (3, 0, 10))[0]


def test_none_is_remembered_as_an_answer() -> None:
    cache = SelectionCache()
    flt = _flt(1)
    cache.put(flt, "k", (0, 0, 5), None)
    assert cache.get(flt, "k", (0, 0, 5)) == (True, None)


def test_a_reused_id_is_not_a_hit() -> None:
    """Entries keep their filter: a different object that happens to get the same id misses."""
    cache = SelectionCache()
    flt = _flt(1)
    cache.put(flt, "k", (0, 0, 5), np.array([1], dtype=np.int64))
    impostor = _flt(7)
    entries = cache._entries  # the test reaches in to forge an id collision
    entries[(id(impostor), "k")] = entries.pop((id(flt), "k"))
    assert cache.get(impostor, "k", (0, 0, 5)) == (False, None)


def test_bounded_in_entries_and_offsets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(selection_cache, "MAX_ENTRIES", 4)
    monkeypatch.setattr(selection_cache, "MAX_OFFSETS", 100)
    cache = SelectionCache()
    filters = [_flt(i) for i in range(10)]
    for f in filters:
        cache.put(f, "k", (0, 0, 1), np.arange(10, dtype=np.int64))
    assert len(cache) == 4
    assert cache.get(filters[-1], "k", (0, 0, 1))[0]  # the newest stay
    assert not cache.get(filters[0], "k", (0, 0, 1))[0]
    for f in filters[:3]:
        cache.put(f, "big", (0, 0, 1), np.arange(24, dtype=np.int64))  # 72 offsets of 100
    assert cache._held <= 100
    cache.put(filters[4], "huge", (0, 0, 1), np.arange(30, dtype=np.int64))  # > a quarter: not kept
    assert not cache.get(filters[4], "huge", (0, 0, 1))[0]


def _segment(tmp_path: Path) -> Segment:
    seg = Segment(tmp_path / "seg", "s", {"": 2}, appendable=True)
    seg.set_field_index("n", build_index("n", parse_field_schema("integer")))
    return seg


def test_every_change_moves_the_generation(tmp_path: Path) -> None:
    seg = _segment(tmp_path)
    seen = [seg.generation]

    def moved() -> None:
        assert seg.generation > seen[-1]
        seen.append(seg.generation)

    seg.put_point(1, {"": np.ones(2, dtype=np.float32)}, {"n": 1}, 1)
    moved()
    seg.put_many([2, 3], {"": (np.ones((2, 2), dtype=np.float32), None)}, [{"n": 2}, {"n": 3}], 2)
    moved()
    seg.set_payload_at(0, {"n": 5}, 3)
    moved()
    seg.delete_vectors_at(1, ("",), 4)
    moved()
    seg.delete(3, 5)
    moved()
    seg.drop_field_index("n")
    moved()
    seg.set_field_index("n", build_index("n", parse_field_schema("integer"), enumerate(seg.payloads)))
    moved()
