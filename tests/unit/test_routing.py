"""Point id -> shard routing: stable across processes and releases, spread evenly, order-keeping."""

from __future__ import annotations

import uuid
from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from qcluster.shards.routing import point_hash, shard_of, split_ids
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
