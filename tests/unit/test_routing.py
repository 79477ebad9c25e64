"""Point id -> shard routing: stable across processes and releases, spread evenly, order-keeping."""

from __future__ import annotations

import uuid
from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from qcluster.shards.routing import Router, point_hash, ring_table, shard_of, split_ids
from qcluster.types import MAX_U64, parse_point_id


def test_hash_values_are_pinned() -> None:
    # Stored data is routed by these values: changing them strands points on the wrong shard.
    assert point_hash(0) == 1786884285633530058
    assert point_hash(1) == 18232024504446223411
    assert point_hash(MAX_U64) == 3246705950370657501
    assert point_hash("550e8400-e29b-41d4-a716-446655440000") == 3399880749381955294


def test_uuid_spellings_route_alike() -> None:
    u = uuid.UUID("550e8400-e29b-41d4-a716-446655440000")
    spellings = [str(u), u.hex, "{" + str(u).upper() + "}", "urn:uuid:" + str(u)]
    assert {shard_of(parse_point_id(s), 5) for s in spellings} == {shard_of(str(u), 5)}


def test_one_shard_takes_everything() -> None:
    assert {shard_of(i, 1) for i in range(100)} == {0}
    assert {shard_of(i, 0) for i in range(10)} == {0}


def test_spread_is_even() -> None:
    counts = Counter(shard_of(i, 4) for i in range(40_000))
    assert set(counts) == {0, 1, 2, 3}
    assert all(9_400 < c < 10_600 for c in counts.values()), counts
    sequential_uuids = [str(uuid.UUID(int=i)) for i in range(8_000)]
    counts = Counter(shard_of(u, 4) for u in sequential_uuids)
    assert all(1_800 < c < 2_200 for c in counts.values()), counts


@given(st.lists(st.integers(0, MAX_U64) | st.uuids().map(str), max_size=60), st.integers(1, 9))
def test_split_ids_partitions_positions_in_order(ids: list[int | str], shards: int) -> None:
    parts = split_ids(ids, shards)
    positions = sorted(p for rows in parts.values() for p in rows)
    assert positions == list(range(len(ids)))
    for sid, rows in parts.items():
        assert rows == sorted(rows)
        assert all(shard_of(ids[p], shards) == sid for p in rows)
        assert 0 <= sid < shards


# ------------------------------------------------------------------ the consistent-hash ring

RING6_DIGEST = "b1ce17f9db908cb4"
RING6_FIRST_IDS = [0, 4, 3, 3, 0, 1, 5, 5]


def test_ring_tables_are_pinned() -> None:
    # Stored data is routed by these tables: changing the construction strands points.
    import hashlib

    digest = hashlib.sha256(ring_table(6).tobytes()).hexdigest()[:16]
    assert digest == RING6_DIGEST
    assert [Router("ring", range(6)).shard_of(i) for i in range(8)] == RING6_FIRST_IDS


def test_ring_balance_is_within_two_percent() -> None:
    ids = list(range(120_000))
    for n in (2, 3, 6, 12):
        parts = Router("ring", range(n)).split(ids)
        assert sorted(parts) == list(range(n))
        expected = len(ids) / n
        assert all(abs(len(rows) / expected - 1) < 0.02 for rows in parts.values()), n
        counts = Counter(ring_table(n).tolist())
        assert max(counts.values()) - min(counts.values()) <= 1


def test_growing_the_ring_moves_about_one_nth_onto_the_new_shard() -> None:
    ids = list(range(60_000))
    for n in (1, 2, 5, 9):
        before = _owner(Router("ring", range(n)).split(ids), len(ids))
        after = _owner(Router("ring", range(n + 1)).split(ids), len(ids))
        moved = [i for i in ids if before[i] != after[i]]
        assert abs(len(moved) / len(ids) - 1 / (n + 1)) < 0.01, n
        assert {after[i] for i in moved} == {n}


def _owner(parts: dict[int, list[int]], n: int) -> list[int]:
    out = [-1] * n
    for sid, rows in parts.items():
        for r in rows:
            out[r] = sid
    return out


def test_ring_routes_over_arbitrary_shard_ids() -> None:
    # Custom sharding: the shards of one shard key, in ascending order.
    keyed = Router("ring", [7, 3, 11])
    plain = Router("ring", range(3))
    assert [keyed.shard_of(i) for i in range(50)] == [[3, 7, 11][plain.shard_of(i)] for i in range(50)]


def test_legacy_scheme_is_unchanged() -> None:
    assert [Router("hash_mod", range(5)).shard_of(i) for i in range(40)] == [
        point_hash(i) % 5 for i in range(40)
    ]
