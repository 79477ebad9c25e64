"""Qdrant score semantics of the numpy vector math, checked against a naive float64 brute force."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from qcluster.errors import BadInputError
from qcluster.models.config import Distance
from qcluster.shards import distance as dist_mod
from qcluster.shards.distance import (
    exact_top_k,
    higher_is_better,
    passes_threshold,
    preprocess,
    rescore,
    score_matrix,
)

DISTANCES: list[Distance] = ["Cosine", "Euclid", "Dot", "Manhattan"]
F32 = npt.NDArray[np.float32]


def naive_scores(q: F32, v: F32, distance: Distance) -> npt.NDArray[np.float64]:
    """One pair at a time, float64: the reference the fast paths must agree with."""
    out = np.empty((len(q), len(v)))
    for i, a in enumerate(q.astype(np.float64)):
        for j, b in enumerate(v.astype(np.float64)):
            if distance in ("Cosine", "Dot"):
                out[i, j] = float(np.dot(a, b))
            elif distance == "Euclid":
                out[i, j] = float(np.sqrt(np.sum((a - b) ** 2)))
            else:
                out[i, j] = float(np.sum(np.abs(a - b)))
    return out


def naive_top_k(
    q: F32,
    v: F32,
    k: int,
    distance: Distance,
    allowed: npt.NDArray[np.bool_] | None = None,
    threshold: float | None = None,
) -> list[list[tuple[int, float]]]:
    scores = naive_scores(q, v, distance)
    high = higher_is_better(distance)
    out = []
    for row in scores:
        cands = [
            (j, s)
            for j, s in enumerate(row)
            if (allowed is None or allowed[j])
            and (threshold is None or (s >= threshold if high else s <= threshold))
        ]
        cands.sort(key=lambda js: -js[1] if high else js[1])
        out.append(cands[:k])
    return out


def assert_matches_naive(
    got: tuple[F32, npt.NDArray[np.int64]], want: list[list[tuple[int, float]]], k: int
) -> None:
    scores, offs = got
    assert scores.shape == offs.shape == (len(want), k)
    assert offs.dtype == np.int64 and scores.dtype == np.float32
    for i, row in enumerate(want):
        assert offs[i, : len(row)].tolist() == [j for j, _ in row]
        np.testing.assert_allclose(scores[i, : len(row)], [s for _, s in row], rtol=2e-5, atol=2e-4)
        assert (offs[i, len(row) :] == -1).all()
        assert np.isnan(scores[i, len(row) :]).all()


def data(n: int, d: int, distance: Distance, seed: int = 0) -> F32:
    return preprocess(np.random.default_rng(seed).standard_normal((n, d)), distance)


# ---------------------------------------------------------------- preprocess & semantics


def test_preprocess_normalises_cosine_only() -> None:
    raw = np.array([[3.0, 4.0], [0.0, 0.0], [1e-3, 0.0]], dtype=np.float64)
    cos = preprocess(raw, "Cosine")
    assert cos.dtype == np.float32 and cos.flags.c_contiguous
    np.testing.assert_allclose(cos, [[0.6, 0.8], [0.0, 0.0], [1.0, 0.0]], rtol=1e-6)
    assert not np.isnan(cos).any()
    one = preprocess(np.array([[0.0, 2.0]]), "Cosine")
    np.testing.assert_allclose(one, [[0.0, 1.0]])
    np.testing.assert_allclose(preprocess(np.array([0.0, -5.0]), "Cosine"), [0.0, -1.0])
    assert not preprocess(np.zeros((1, 3)), "Cosine").any()
    for d in ("Dot", "Euclid", "Manhattan"):
        out = preprocess(raw[:, ::-1], d)  # a non-contiguous view
        assert out.flags.c_contiguous and out.dtype == np.float32
        np.testing.assert_array_equal(out, raw[:, ::-1].astype(np.float32))


def test_higher_is_better_and_thresholds() -> None:
    assert higher_is_better("Cosine") and higher_is_better("Dot")
    assert not higher_is_better("Euclid") and not higher_is_better("Manhattan")
    s = np.array([0.1, 0.5, 0.9, np.nan], dtype=np.float32)
    assert passes_threshold(s, 0.5, "Cosine").tolist() == [False, True, True, False]
    assert passes_threshold(s, 0.5, "Dot").tolist() == [False, True, True, False]
    assert passes_threshold(s, 0.5, "Euclid").tolist() == [True, True, False, False]
    assert passes_threshold(s, 0.5, "Manhattan").tolist() == [True, True, False, False]
    assert passes_threshold(s, None, "Euclid").tolist() == [True, True, True, False]


def test_unknown_distance_and_bad_shapes_are_bad_input() -> None:
    v = data(4, 3, "Dot")
    with pytest.raises(BadInputError) as err:
        score_matrix(v, v, "Hamming")  # type: ignore[arg-type]
    assert err.value.field == "distance"
    with pytest.raises(BadInputError) as err:
        score_matrix(v[:, :2], v, "Dot")
    assert err.value.field == "vector" and "expected dim: 3, got 2" in err.value.message
    with pytest.raises(BadInputError) as err:
        exact_top_k(v, v, -1, "Dot")
    assert err.value.field == "limit"


@pytest.mark.parametrize("distance", DISTANCES)
def test_score_matrix_matches_naive(distance: Distance) -> None:
    q, v = data(5, 16, distance, seed=1), data(40, 16, distance, seed=2)
    got = score_matrix(q, v, distance)
    assert got.shape == (5, 40) and got.dtype == np.float32
    np.testing.assert_allclose(got, naive_scores(q, v, distance), rtol=1e-5, atol=1e-4)


def test_euclid_of_identical_vectors_is_exactly_zero() -> None:
    v = (np.random.default_rng(3).standard_normal((50, 64)) * 100).astype(np.float32)
    s = score_matrix(v[:5], v, "Euclid")
    assert (np.diag(s[:, :5]) == 0.0).all()  # the matmul expansion alone leaves ~1e-2 here
    near = v[:1] + np.float32(1e-3)
    np.testing.assert_allclose(score_matrix(near, v[:1], "Euclid")[0, 0], 1e-3 * 8, rtol=1e-2)


def test_manhattan_and_blocks_bounded_by_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """Small temporaries force many query/vector blocks; the answer must not change."""
    q, v = data(7, 5, "Manhattan", seed=4), data(33, 5, "Manhattan", seed=5)
    want = score_matrix(q, v, "Manhattan")
    top_want = exact_top_k(q, v, 6, "Manhattan")
    monkeypatch.setattr(dist_mod, "_BUDGET", 12)
    np.testing.assert_array_equal(score_matrix(q, v, "Manhattan"), want)
    got = exact_top_k(q, v, 6, "Manhattan")
    np.testing.assert_array_equal(got[1], top_want[1])
    np.testing.assert_allclose(naive_scores(q, v, "Manhattan"), want, rtol=1e-5, atol=1e-4)


# ---------------------------------------------------------------- exact top-k


@pytest.mark.parametrize("distance", DISTANCES)
def test_exact_top_k_matches_naive(distance: Distance) -> None:
    q, v = data(6, 12, distance, seed=6), data(300, 12, distance, seed=7)
    for k in (1, 10, 300, 350):
        assert_matches_naive(exact_top_k(q, v, k, distance), naive_top_k(q, v, k, distance), k)


@pytest.mark.parametrize("distance", DISTANCES)
@pytest.mark.parametrize("share", [0.0, 0.05, 0.5, 1.0])
def test_exact_top_k_allowed_mask(distance: Distance, share: float) -> None:
    """Dense masks, sparse masks (the row-gathering path), empty and full masks."""
    q, v = data(4, 8, distance, seed=8), data(400, 8, distance, seed=9)
    allowed = np.random.default_rng(10).random(400) < share
    got = exact_top_k(q, v, 10, distance, allowed)
    assert_matches_naive(got, naive_top_k(q, v, 10, distance, allowed), 10)
    assert allowed[got[1][got[1] >= 0]].all()


def test_exact_top_k_short_mask_means_rows_beyond_are_not_allowed() -> None:
    q, v = data(2, 8, "Dot", seed=11), data(50, 8, "Dot", seed=12)
    short = np.ones(20, dtype=np.bool_)
    got = exact_top_k(q, v, 30, "Dot", short)
    assert_matches_naive(got, naive_top_k(q, v, 30, "Dot", np.arange(50) < 20), 30)


@pytest.mark.parametrize("distance", DISTANCES)
def test_exact_top_k_threshold(distance: Distance) -> None:
    q, v = data(3, 8, distance, seed=13), data(200, 8, distance, seed=14)
    threshold = float(np.median(naive_scores(q, v, distance)))
    allowed = np.arange(200) % 3 != 0
    for k in (5, 200):
        got = exact_top_k(q, v, k, distance, allowed, threshold)
        want = naive_top_k(q, v, k, distance, allowed, threshold)
        assert_matches_naive(got, want, k)
        valid = got[1] >= 0
        assert passes_threshold(got[0][valid], threshold, distance).all()


def test_exact_top_k_empty_inputs() -> None:
    v = data(10, 4, "Dot")
    s, o = exact_top_k(v[:0], v, 3, "Dot")
    assert s.shape == o.shape == (0, 3)
    s, o = exact_top_k(v[:2], v[:0], 3, "Dot")
    assert (o == -1).all() and np.isnan(s).all() and o.shape == (2, 3)
    s, o = exact_top_k(v[:2], v, 0, "Dot")
    assert s.shape == o.shape == (2, 0)


def test_exact_top_k_many_queries_in_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    q, v = data(37, 8, "Euclid", seed=15), data(120, 8, "Euclid", seed=16)
    want = naive_top_k(q, v, 7, "Euclid")
    monkeypatch.setattr(dist_mod, "_BUDGET", 500)  # ~4 queries per block
    assert_matches_naive(exact_top_k(q, v, 7, "Euclid"), want, 7)


@settings(max_examples=60, deadline=None)
@given(
    distance=st.sampled_from(DISTANCES),
    n=st.integers(1, 40),
    k=st.integers(1, 45),
    seed=st.integers(0, 2**16),
    values=st.sampled_from(["normal", "small_ints"]),
)
def test_exact_top_k_property(distance: Distance, n: int, k: int, seed: int, values: str) -> None:
    """Tie-tolerant: small integer vectors give many equal scores."""
    rng = np.random.default_rng(seed)
    raw = rng.standard_normal((n + 2, 3)) if values == "normal" else rng.integers(-2, 3, (n + 2, 3))
    x = preprocess(raw, distance)
    q, v = x[:2], x[2:]
    allowed = rng.random(n) < 0.7
    scores, offs = exact_top_k(q, v, k, distance, allowed)
    ref = naive_scores(q, v, distance)
    for i in range(2):
        want = naive_top_k(q[i : i + 1], v, k, distance, allowed)[0]
        got = offs[i][offs[i] >= 0]
        assert len(got) == len(want) and len(set(got.tolist())) == len(got)
        assert allowed[got].all()
        np.testing.assert_allclose(scores[i, : len(got)], [s for _, s in want], rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(ref[i, got], [s for _, s in want], rtol=1e-5, atol=1e-4)


@settings(max_examples=30, deadline=None)
@given(
    vecs=hnp.arrays(np.float32, (6, 4), elements=st.floats(-100, 100, width=32)),
    distance=st.sampled_from(DISTANCES),
)
def test_scores_of_arbitrary_vectors_match_naive(vecs: F32, distance: Distance) -> None:
    x = preprocess(vecs, distance)
    got = score_matrix(x[:2], x, distance)
    np.testing.assert_allclose(got, naive_scores(x[:2], x, distance), rtol=1e-4, atol=1e-2)


# ---------------------------------------------------------------- rescoring


@pytest.mark.parametrize("distance", DISTANCES)
def test_rescore_resorts_candidates_exactly(distance: Distance) -> None:
    q, v = data(3, 8, distance, seed=17), data(100, 8, distance, seed=18)
    rng = np.random.default_rng(19)
    cands = np.stack([rng.permutation(100)[:20] for _ in range(3)]).astype(np.int64)
    cands[1, 15:] = -1  # fewer candidates for one query
    scores, offs = rescore(q, cands, v, 8, distance)
    for i in range(3):
        pool = cands[i][cands[i] >= 0]
        allowed = np.zeros(100, dtype=np.bool_)
        allowed[pool] = True
        want = naive_top_k(q[i : i + 1], v, 8, distance, allowed)
        assert_matches_naive((scores[i : i + 1], offs[i : i + 1]), want, 8)
    threshold = float(np.nanmedian(scores))
    s2, o2 = rescore(q, cands, v, 8, distance, threshold)
    assert passes_threshold(s2[o2 >= 0], threshold, distance).all()
    kept, before = (o2 >= 0).sum(axis=1), (offs >= 0).sum(axis=1)
    assert (kept <= before).all() and kept.sum() < before.sum()
    empty = rescore(q, np.full((3, 5), -1, dtype=np.int64), v, 4, distance)
    assert (empty[1] == -1).all() and np.isnan(empty[0]).all()
