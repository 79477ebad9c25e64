"""``sparse.topk.top_k`` against a brute-force dot product over every row: the same offsets in the
same order (best score, then lower offset) and the same scores, with allowed masks, thresholds,
ties, negative values, terms the index lacks, floors read from lists on either side of the length
cap and lookups reused across queries; IDF weights alike on their short and long paths."""

from __future__ import annotations

import numpy as np
import pytest

from qcluster.shards.sparse.inverted import InvertedIndex
from qcluster.shards.sparse.search import SHORT_QUERY, idf_weighted
from qcluster.shards.sparse.topk import FLOOR_LIST, LARGE, top_k
from qcluster.shards.sparse.vector import SparseVector, sorted_unique

VOCAB = 400


def corpus(rng: np.random.Generator, n: int, integer: bool, signed: bool) -> list[SparseVector]:
    """Rows of 1..30 terms drawn with a skew (some terms in most rows); integer values make ties."""
    p = 1.0 / np.arange(1, VOCAB + 1)
    p /= p.sum()
    rows = []
    for _ in range(n):
        nnz = int(rng.integers(1, 31))
        idx = rng.choice(VOCAB, size=nnz, replace=False, p=p).astype(np.uint32)
        vals = rng.integers(1, 4, nnz).astype(np.float32) if integer else rng.random(nnz).astype(np.float32)
        if signed:
            vals *= np.where(rng.random(nnz) < 0.3, -1, 1).astype(np.float32)
        rows.append(sorted_unique(idx, vals, "v"))
    return rows


def index_of(rows: list[SparseVector]) -> InvertedIndex:
    indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum([len(r) for r in rows], out=indptr[1:])
    return InvertedIndex.build(
        indptr, np.concatenate([r.indices for r in rows]), np.concatenate([r.values for r in rows])
    )


def brute(
    rows: list[SparseVector], q: SparseVector, k: int, allowed: np.ndarray | None, threshold: float | None
) -> list[tuple[int, float]]:
    """Every row sharing a dimension with ``q``: its dot product (float64, in query-term order)."""
    weights = dict(zip(q.indices.tolist(), q.values.astype(np.float64).tolist(), strict=True))
    found = []
    for off, row in enumerate(rows):
        shared = [
            (i, float(v))
            for i, v in zip(row.indices.tolist(), row.values.tolist(), strict=True)
            if i in weights
        ]
        if not shared or (allowed is not None and not allowed[off]):
            continue
        order = {t: n for n, t in enumerate(q.indices.tolist())}
        score = 0.0
        for i, v in sorted(shared, key=lambda iv: order[iv[0]]):
            score += np.float64(v) * weights[i]
        if threshold is not None and score < threshold:
            continue
        found.append((off, score))
    found.sort(key=lambda h: (-h[1], h[0]))
    return found[:k]


def query(rng: np.random.Generator, terms: int, signed: bool, missing: bool) -> SparseVector:
    idx = rng.choice(VOCAB, size=terms, replace=False).astype(np.uint32)
    if missing:
        idx[0] = VOCAB + 7  # in no row
    vals = (rng.random(terms) + 0.5).astype(np.float32)
    if signed:
        vals[0] = -vals[0]
    return sorted_unique(idx, vals, "q")


def spread(v: SparseVector) -> SparseVector:
    """The same vector over indices far apart (hashed tokens): no lookup table, binary search."""
    return SparseVector(v.indices * np.uint32(70_001), v.values)


@pytest.mark.parametrize(
    ("integer", "signed", "spread_out"),
    [(False, False, False), (True, False, False), (False, True, False), (False, False, True)],
    ids=["real", "ties", "signed", "spread"],
)
def test_top_k_matches_brute_force(integer: bool, signed: bool, spread_out: bool) -> None:
    rng = np.random.default_rng(7 + integer + 2 * signed)
    rows = corpus(rng, 1500, integer, signed)
    if spread_out:
        rows = [spread(r) for r in rows]
    index = index_of(rows)
    assert (index._spans is None) == spread_out
    masks = [None, rng.random(len(rows)) < 0.3, rng.random(len(rows)) < 0.01]
    for case in range(60):
        q = query(rng, int(rng.integers(1, 13)), signed and case % 2 == 0, case % 5 == 0)
        if spread_out:
            q = spread(q)
        k = [1, 10, 100, 3000][case % 4]
        allowed = masks[case % 3]
        threshold = [None, 1.0, -0.5][case % 3] if case % 2 else None
        want = brute(rows, q, k, allowed, threshold)
        scores, offs = top_k(index, q, k, allowed, threshold)
        assert offs.tolist() == [o for o, _ in want], (case, k, threshold)
        assert scores.tolist() == pytest.approx([s for _, s in want], rel=1e-12, abs=1e-12)


def test_ties_at_the_cut_go_to_the_lower_offsets() -> None:
    # 600 rows with the same single term and value: every score ties, however many are asked
    n = 600
    rows = [SparseVector(np.array([5], np.uint32), np.array([2.0], np.float32)) for _ in range(n)]
    index = index_of(rows)
    q = SparseVector(np.array([5, 9], np.uint32), np.array([1.5, 1.0], np.float32))
    for k in (1, 10, LARGE + 5):
        scores, offs = top_k(index, q, k, None, None)
        assert offs.tolist() == list(range(k))
        assert set(scores.tolist()) == {3.0}
    allowed = np.zeros(n, dtype=np.bool_)
    allowed[[599, 3, 200]] = True
    _, offs = top_k(index, q, 2, allowed, None)
    assert offs.tolist() == [3, 200]


def test_no_match_and_empty_query() -> None:
    rows = [SparseVector(np.array([1, 2], np.uint32), np.array([1.0, 1.0], np.float32))] * 20
    index = index_of(rows)
    for q in (SparseVector.empty(), SparseVector(np.array([3], np.uint32), np.array([1.0], np.float32))):
        scores, offs = top_k(index, q, 10, None, None)
        assert len(scores) == 0 and len(offs) == 0
    # a shared dimension with a zero product is still a match (score 0), as in Qdrant
    zero = SparseVector(np.array([1], np.uint32), np.array([0.0], np.float32))
    scores, offs = top_k(index, zero, 3, None, None)
    assert offs.tolist() == [0, 1, 2] and scores.tolist() == [0.0, 0.0, 0.0]


def test_floor_list_on_either_side_of_its_length_cap() -> None:
    # term 1 in every row, term 2 in FLOOR_LIST + 40 rows, term 3 in FLOOR_LIST - 40, term 4 in 30:
    # the floor comes from the list of term 3 (the longest within the cap), or from the shortest
    # beyond it when the query has no list within the cap; the answer is the brute force's
    rng = np.random.default_rng(3)
    n = 3 * FLOOR_LIST
    member = {
        2: set(rng.choice(n, FLOOR_LIST + 40, replace=False).tolist()),
        3: set(rng.choice(n, FLOOR_LIST - 40, replace=False).tolist()),
        4: set(rng.choice(n, 30, replace=False).tolist()),
    }
    rows = []
    for r in range(n):
        idx = [1] + [t for t in (2, 3, 4) if r in member[t]]
        vals = rng.integers(1, 5, len(idx)).astype(np.float32)  # integer values: ties at the cut
        rows.append(SparseVector(np.array(idx, np.uint32), vals))
    index = index_of(rows)
    for terms in ([1, 2, 3, 4], [1, 2], [2, 3], [4], [1]):
        q = SparseVector(np.array(terms, np.uint32), (rng.random(len(terms)) + 0.5).astype(np.float32))
        for k in (1, 10, 50):
            scores, offs = top_k(index, q, k, None, None)
            want = brute(rows, q, k, None, None)
            assert offs.tolist() == [o for o, _ in want], (terms, k)
            assert scores.tolist() == pytest.approx([s for _, s in want], rel=1e-12)


def test_a_lookup_is_reused_only_for_the_same_indices() -> None:
    rng = np.random.default_rng(4)
    rows = corpus(rng, 300, integer=False, signed=False)
    index = index_of(rows)
    q = query(rng, 6, signed=False, missing=True)
    same_indices = SparseVector(q.indices, (q.values * 3).astype(np.float32))  # as IDF weighs a query
    equal_copy = SparseVector(q.indices.copy(), q.values[::-1].copy())
    other = query(rng, 4, signed=False, missing=False)
    for v in (q, same_indices, equal_copy, other, q):
        scores, offs = top_k(index, v, 10, None, None)
        want = brute(rows, v, 10, None, None)
        assert offs.tolist() == [o for o, _ in want]
        assert scores.tolist() == pytest.approx([s for _, s in want], rel=1e-12)
        assert index.postings_read(v) == sum(
            int(np.count_nonzero(np.isin(r.indices, v.indices))) for r in rows
        )


@pytest.mark.parametrize("terms", [1, SHORT_QUERY, SHORT_QUERY + 1])
def test_idf_weights_are_the_same_on_both_paths(terms: int) -> None:
    # a short query is weighed on Python floats, a long one with numpy: the same float64 formula
    rng = np.random.default_rng(terms)
    q = SparseVector(np.arange(terms, dtype=np.uint32), (rng.random(terms) + 0.1).astype(np.float32))
    points = 5000
    df = rng.integers(0, points + 1, terms).astype(np.int64)
    got = idf_weighted(q, points, df)
    dfs = df.astype(np.float64)
    want = (q.values.astype(np.float64) * np.log((points - dfs + 0.5) / (dfs + 0.5) + 1.0)).astype(np.float32)
    assert got.values.dtype == np.float32 and got.indices is q.indices
    assert got.values.tobytes() == want.tobytes()
