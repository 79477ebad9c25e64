"""Merging replica answers under read consistency (pure)."""

from __future__ import annotations

from qcluster.shards.base import Record, ScoredPoint, ScrollResult
from qcluster.shards.resolve import Condition, resolve_count, resolve_records, resolve_scroll, resolve_search


def rec(pid: int, payload: dict[str, int] | None = None) -> Record:
    return Record(pid, payload)


def test_all_keeps_only_points_every_replica_holds() -> None:
    a = [rec(1, {"v": 1}), rec(2, {"v": 1})]
    b = [rec(1, {"v": 1})]
    assert [r.id for r in resolve_records([a, b], Condition.ALL)] == [1]
    assert [r.id for r in resolve_records([a, b, a], Condition.MAJORITY)] == [1, 2]


def test_the_most_common_variant_wins_ties_go_to_the_first_answer() -> None:
    stale, fresh = rec(1, {"v": 1}), rec(1, {"v": 2})
    assert resolve_records([[stale], [fresh], [fresh]], Condition.ALL)[0].payload == {"v": 2}
    assert resolve_records([[stale], [fresh]], Condition.ALL)[0].payload == {"v": 1}


def test_search_resolves_per_query() -> None:
    a = [[ScoredPoint(1, 0, 0.9), ScoredPoint(2, 0, 0.8)], [ScoredPoint(3, 0, 0.5)]]
    b = [[ScoredPoint(2, 0, 0.8), ScoredPoint(1, 0, 0.9)], []]
    out = resolve_search([a, b], Condition.ALL)
    assert [[p.id for p in q] for q in out] == [[1, 2], []]


def test_scroll_takes_the_earliest_next_offset_and_cuts_there() -> None:
    a = ScrollResult([rec(1), rec(2), rec(3)], 4)
    b = ScrollResult([rec(1), rec(2)], 3)
    out = resolve_scroll([a, b], Condition.MAJORITY)
    assert out.next_page_offset == 3
    assert [r.id for r in out.points] == [1, 2]


def test_count_prefers_the_majority_else_the_largest() -> None:
    assert resolve_count([5, 5, 4], Condition.ALL) == 5
    assert resolve_count([4, 5], Condition.ALL) == 5


def test_points_with_sparse_and_multi_vectors_are_compared_by_content() -> None:
    """(A sparse vector reached the JSON encoder as a dataclass of numpy arrays: a majority
    scroll with vectors of a collection with a sparse vector answered 500.)"""
    import numpy as np

    from qcluster.shards.sparse.vector import SparseVector

    def point(values: list[float], multi: float) -> Record:
        sparse = SparseVector(np.array([1, 5], dtype=np.uint32), np.array(values, dtype=np.float32))
        vectors = {
            "": np.array([0.5, 0.25], dtype=np.float32),
            "s": sparse,
            "m": np.array([[multi, 0.0], [0.0, 1.0]], dtype=np.float32),
        }
        return Record(1, {"k": 1}, vectors)  # type: ignore[arg-type]

    same, other_sparse, other_multi = point([0.1, 0.2], 1.0), point([0.1, 0.3], 1.0), point([0.1, 0.2], 2.0)
    assert resolve_records([[same], [point([0.1, 0.2], 1.0)]], Condition.ALL)[0] is same
    assert resolve_records([[same], [other_sparse], [other_sparse]], Condition.MAJORITY)[0] is other_sparse
    assert resolve_records([[same], [other_multi], [other_multi]], Condition.MAJORITY)[0] is other_multi
