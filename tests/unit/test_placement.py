from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qcluster.consensus.placement import default_shard_number, plan_placement
from qcluster.errors import BadInputError

peer_sets = st.sets(st.integers(min_value=1, max_value=2**53), min_size=1, max_size=12)


@settings(max_examples=300, deadline=None)
@given(peers=peer_sets, shard_number=st.integers(1, 40), rf=st.integers(1, 6))
def test_placement_properties(peers: set[int], shard_number: int, rf: int) -> None:
    placement = plan_placement(peers, shard_number, rf)
    assert sorted(placement) == list(range(shard_number))
    expected_replicas = min(rf, len(peers))
    counts: Counter[int] = Counter()
    for replicas in placement.values():
        assert len(replicas) == expected_replicas
        assert len(set(replicas)) == len(replicas), "a peer holds two replicas of one shard"
        assert set(replicas) <= peers
        counts.update(replicas)
    per_peer = [counts.get(p, 0) for p in peers]
    assert max(per_peer) - min(per_peer) <= 1, f"unbalanced: {per_peer}"
    assert sum(per_peer) == shard_number * expected_replicas


@settings(max_examples=100, deadline=None)
@given(
    peers=peer_sets,
    shard_number=st.integers(1, 20),
    rf=st.integers(1, 4),
    load=st.lists(st.integers(0, 50), min_size=12, max_size=12),
)
def test_existing_load_never_breaks_balance_or_distinctness(
    peers: set[int], shard_number: int, rf: int, load: list[int]
) -> None:
    existing = dict(zip(sorted(peers), load, strict=False))
    placement = plan_placement(peers, shard_number, rf, existing)
    counts: Counter[int] = Counter(p for replicas in placement.values() for p in replicas)
    per_peer = [counts.get(p, 0) for p in peers]
    assert max(per_peer) - min(per_peer) <= 1
    assert all(len(set(r)) == len(r) for r in placement.values())


def test_least_loaded_peers_are_filled_first() -> None:
    placement = plan_placement([1, 2, 3], 1, 1, {1: 5, 2: 0, 3: 7})
    assert placement == {0: (2,)}


def test_shard_number_defaults_to_peer_count_and_ids_can_start_later() -> None:
    assert default_shard_number([5, 6, 7]) == 3
    placement = plan_placement([5, 6, 7], None, 2, first_shard_id=10)
    assert sorted(placement) == [10, 11, 12]


def test_deterministic() -> None:
    assert plan_placement([3, 1, 2], 7, 2) == plan_placement([1, 2, 3], 7, 2)


@pytest.mark.parametrize(
    ("peers", "shards", "rf", "field"),
    [([], 1, 1, "peers"), ([1], 0, 1, "shard_number"), ([1], 1, 0, "replication_factor")],
)
def test_bad_input_names_the_field(peers: list[int], shards: int, rf: int, field: str) -> None:
    with pytest.raises(BadInputError) as info:
        plan_placement(peers, shards, rf)
    assert info.value.field == field
