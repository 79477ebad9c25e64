"""The FAISS wrapper of a sealed segment: recall, Qdrant scores, filters, quantization, persistence.

Real FAISS on small clustered data with fixed seeds; the reference is ``exact_top_k``.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import faiss
import numpy as np
import numpy.typing as npt
import pytest

from qcluster.errors import BadInputError, CorruptedStorageError
from qcluster.models.config import (
    BinaryQuantization,
    Distance,
    HnswConfig,
    ProductQuantization,
    QuantizationConfig,
    ScalarQuantization,
)
from qcluster.shards.base import QuantizationSearchParams as QP
from qcluster.shards.distance import exact_top_k, passes_threshold, preprocess, score_matrix
from qcluster.shards.index import PQ_MIN_POINTS, VectorIndex, plan_index, pq_subquantizers

DISTANCES: list[Distance] = ["Cosine", "Euclid", "Dot", "Manhattan"]
F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
HNSW = HnswConfig(m=16, ef_construct=100)
FLAT = HnswConfig(m=0)
SQ8 = ScalarQuantization.model_validate({"scalar": {"type": "int8"}})
SQ8_Q99 = ScalarQuantization.model_validate({"scalar": {"type": "int8", "quantile": 0.99}})
PQ_X8 = ProductQuantization.model_validate({"product": {"compression": "x8"}})
PQ_X32 = ProductQuantization.model_validate({"product": {"compression": "x32"}})
BINARY = BinaryQuantization.model_validate({"binary": {}})
QUANTS: dict[str, QuantizationConfig | None] = {"none": None, "sq8": SQ8, "pq": PQ_X8, "binary": BINARY}


def clustered(n: int, dim: int, clusters: int, seed: int) -> F32:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((clusters, dim)) * 2.0
    return (centers[rng.integers(0, clusters, n)] + rng.standard_normal((n, dim))).astype(np.float32)


def split(raw: F32, nq: int, distance: Distance) -> tuple[F32, F32]:
    x = preprocess(raw, distance)
    return np.ascontiguousarray(x[:-nq]), np.ascontiguousarray(x[-nq:])


def recall(got: I64, want: I64) -> float:
    hits = [len(set(g[g >= 0].tolist()) & set(w[w >= 0].tolist())) for g, w in zip(got, want, strict=True)]
    return float(sum(hits) / max(1, int((want >= 0).sum())))


def assert_qdrant_scores(index: VectorIndex, queries: F32, base: F32, scores: F32, offs: I64) -> None:
    """Returned scores are the exact Qdrant scores of the returned rows, best first."""
    valid = offs >= 0
    ref = np.take_along_axis(score_matrix(queries, base, index.distance), np.maximum(offs, 0), axis=1)
    np.testing.assert_allclose(scores[valid], ref[valid], rtol=1e-4, atol=2e-3)
    assert np.isnan(scores[~valid]).all()
    ordered = np.where(valid, scores, np.nan)
    step = np.diff(ordered, axis=1)
    step = step[~np.isnan(step)]
    assert (step <= 1e-6).all() if index.distance in ("Cosine", "Dot") else (step >= -1e-6).all()


@pytest.fixture(scope="module")
def hnsw_sets() -> dict[Distance, tuple[F32, F32, VectorIndex]]:
    raw = clustered(5000 + 100, 32, 40, seed=1)
    out = {}
    for d in DISTANCES:
        base, queries = split(raw, 100, d)
        out[d] = (base, queries, VectorIndex.build(base, d, HNSW, None, threads=2))
    return out


# ---------------------------------------------------------------- plain HNSW


@pytest.mark.parametrize("distance", DISTANCES)
def test_hnsw_recall_and_scores(
    hnsw_sets: dict[Distance, tuple[F32, F32, VectorIndex]], distance: Distance
) -> None:
    base, queries, index = hnsw_sets[distance]
    assert index.kind == "hnsw" and index.size == 5000 and index.dim == 32 and index.warning is None
    _, want = exact_top_k(queries, base, 10, distance)
    scores, offs = index.search(queries, 10)
    assert offs.dtype == np.int64 and scores.dtype == np.float32 and offs.shape == (100, 10)
    assert recall(offs, want) >= 0.95
    assert_qdrant_scores(index, queries, base, scores, offs)
    # one query at a time gives the same answer as the batch
    one_s, one_o = index.search(queries[3:4], 10)
    np.testing.assert_array_equal(one_o[0], offs[3])
    np.testing.assert_allclose(one_s[0], scores[3], rtol=1e-6)


@pytest.mark.parametrize("distance", DISTANCES)
def test_hnsw_filtered_never_returns_disallowed(
    hnsw_sets: dict[Distance, tuple[F32, F32, VectorIndex]], distance: Distance
) -> None:
    base, queries, index = hnsw_sets[distance]
    rng = np.random.default_rng(2)
    for share in (0.5, 0.1):
        allowed = rng.random(len(base)) < share
        scores, offs = index.search(queries, 10, allowed=allowed, ef=128)
        assert allowed[offs[offs >= 0]].all()
        _, want = exact_top_k(queries, base, 10, distance, allowed)
        assert recall(offs, want) >= 0.85  # the segment planner goes exact for tight filters
        assert_qdrant_scores(index, queries, base, scores, offs)
    nothing = np.zeros(len(base), dtype=np.bool_)
    scores, offs = index.search(queries[:2], 5, allowed=nothing)
    assert (offs == -1).all() and np.isnan(scores).all()
    # a mask shorter than the index: rows beyond it are not allowed
    scores, offs = index.search(queries[:5], 10, allowed=np.ones(100, dtype=np.bool_))
    assert ((offs >= 0) & (offs < 100)).sum() > 0 and (offs < 100).all()


@pytest.mark.parametrize("distance", DISTANCES)
def test_hnsw_threshold(hnsw_sets: dict[Distance, tuple[F32, F32, VectorIndex]], distance: Distance) -> None:
    _, queries, index = hnsw_sets[distance]
    full_s, full_o = index.search(queries[:20], 10)
    threshold = float(np.median(full_s))
    scores, offs = index.search(queries[:20], 10, threshold=threshold)
    valid = offs >= 0
    assert passes_threshold(scores[valid], threshold, distance).all()
    assert 0 < valid.sum() < valid.size
    assert (valid == passes_threshold(full_s, threshold, distance)).all()
    np.testing.assert_array_equal(offs[valid], full_o[valid])


def test_search_shapes_and_bad_input(hnsw_sets: dict[Distance, tuple[F32, F32, VectorIndex]]) -> None:
    _, queries, index = hnsw_sets["Cosine"]
    s, o = index.search(queries[:0], 10)
    assert s.shape == o.shape == (0, 10)
    s, o = index.search(queries[:3], 0)
    assert s.shape == o.shape == (3, 0)
    s, o = index.search(queries[:2], 6000)  # more than the index holds
    assert o.shape == (2, 6000) and (o[:, 5000:] == -1).all() and np.isnan(s[:, 5000:]).all()
    s, o = index.search(np.asfortranarray(queries[:4]).astype(np.float64), 5)  # converted, same answer
    np.testing.assert_array_equal(o, index.search(queries[:4], 5)[1])
    with pytest.raises(BadInputError) as err:
        index.search(queries[:, :16], 10)
    assert err.value.field == "vector" and "expected dim: 32, got 16" in err.value.message
    with pytest.raises(BadInputError):
        index.search(queries, -1)


def test_flat_m0_is_exact(tmp_path: Path) -> None:
    raw = clustered(1500 + 20, 16, 10, seed=3)
    for d in DISTANCES:
        base, queries = split(raw, 20, d)
        index = VectorIndex.build(base, d, FLAT, None)
        assert index.kind == "flat" and index.memory_bytes() == base.nbytes
        allowed = np.arange(len(base)) % 2 == 0
        got_s, got_o = index.search(queries, 10, allowed=allowed)
        want_s, want_o = exact_top_k(queries, base, 10, d, allowed)
        np.testing.assert_array_equal(got_o, want_o)
        np.testing.assert_allclose(got_s, want_s, rtol=1e-4, atol=1e-3)


# ---------------------------------------------------------------- quantization


@pytest.mark.parametrize(("distance", "n"), [("Cosine", 10_000), ("Euclid", 4000)])
def test_sq8_with_rescoring_recall(distance: Distance, n: int) -> None:
    base, queries = split(clustered(n + 100, 64, 50, seed=4), 100, distance)
    index = VectorIndex.build(base, distance, HNSW, SQ8_Q99, threads=2)
    assert index.kind == "hnsw_sq8" and index.quantile == 0.99
    _, want = exact_top_k(queries, base, 10, distance)
    scores, offs = index.search(queries, 10, quantization=QP(oversampling=2.0), originals=base)
    assert recall(offs, want) >= 0.99
    assert_qdrant_scores(index, queries, base, scores, offs)
    # without rescoring: approximate scores of the same kind, still ordered best first
    approx_s, approx_o = index.search(queries, 10, quantization=QP(rescore=False), originals=base)
    assert recall(approx_o, want) >= 0.8
    exact_of_approx = np.take_along_axis(score_matrix(queries, base, distance), approx_o, axis=1)
    np.testing.assert_allclose(approx_s, exact_of_approx, atol=0.1 * float(np.abs(exact_of_approx).max()))


def test_pq_and_binary_with_rescoring() -> None:
    raw = clustered(2000 + 50, 128, 30, seed=5)
    for d in ("Cosine", "Dot", "Euclid"):
        base, queries = split(raw, 50, d)
        _, want = exact_top_k(queries, base, 10, d)
        pq = VectorIndex.build(base, d, HNSW, PQ_X32, threads=2)  # 16 sub-quantizers of 8 dims
        assert pq.kind == "hnsw_pq" and pq.warning is None
        s, o = pq.search(queries, 10, quantization=QP(oversampling=8.0), originals=base)
        assert recall(o, want) >= 0.9
        assert recall(pq.search(queries, 10, originals=base)[1], want) >= 0.25  # oversampling 1, 16 bytes
        assert_qdrant_scores(pq, queries, base, s, o)
        approx_s, approx_o = pq.search(queries, 10, quantization=QP(rescore=False))
        assert recall(approx_o, want) >= 0.25 and not np.isnan(approx_s).any()
        binary = VectorIndex.build(base, d, HNSW, BINARY, threads=2)
        assert binary.kind == "binary"
        s, o = binary.search(queries, 10, originals=base)
        assert recall(o, want) >= 0.5
        assert_qdrant_scores(binary, queries, base, s, o)
        s, o = binary.search(queries, 10, quantization=QP(oversampling=8.0), originals=base)
        assert recall(o, want) >= 0.85
        with pytest.raises(ValueError):
            binary.search(queries, 10)  # sign bits alone cannot give Qdrant scores


def test_memory_sq8_vs_plain() -> None:
    base = preprocess(clustered(2000, 128, 10, seed=6), "Cosine")
    plain = VectorIndex.build(base, "Cosine", HNSW, None, threads=2)
    sq8 = VectorIndex.build(base, "Cosine", HNSW, SQ8, threads=2)
    assert plain.memory_bytes() >= base.nbytes
    assert sq8.memory_bytes() <= 0.45 * plain.memory_bytes()


@pytest.mark.parametrize("quant", ["sq8", "pq", "binary"])
@pytest.mark.parametrize("m", [16, 0])
def test_manhattan_ignores_quantization(quant: str, m: int) -> None:
    base, queries = split(clustered(1200 + 10, 16, 5, seed=7), 10, "Manhattan")
    index = VectorIndex.build(base, "Manhattan", HnswConfig(m=m), QUANTS[quant])
    assert index.kind == ("hnsw" if m else "flat")
    assert index.warning is not None and "Manhattan" in index.warning and "ignored" in index.warning
    s, o = index.search(queries, 5, quantization=QP(oversampling=2.0), originals=base)
    _, want = exact_top_k(queries, base, 5, "Manhattan")
    assert recall(o, want) >= 0.9
    assert_qdrant_scores(index, queries, base, s, o)


@pytest.mark.parametrize("distance", DISTANCES)
@pytest.mark.parametrize("quant", list(QUANTS))
@pytest.mark.parametrize("m", [8, 0])
def test_every_combination_builds_and_searches(distance: Distance, quant: str, m: int) -> None:
    """No combination may reach FAISS in a shape that aborts the process or returns garbage."""
    base, queries = split(clustered(1100 + 8, 24, 8, seed=8), 8, distance)
    index = VectorIndex.build(base, distance, HnswConfig(m=m, ef_construct=40), QUANTS[quant])
    allowed = np.arange(len(base)) % 3 != 0
    _, want = exact_top_k(queries, base, 5, distance, allowed)
    for mask in (None, allowed):
        s, o = index.search(
            queries, 5, allowed=mask, quantization=QP(oversampling=4.0), originals=base, ef=64
        )
        if mask is not None:
            assert mask[o[o >= 0]].all()
            assert recall(o, want) >= (0.2 if quant == "binary" else 0.85)  # 24 sign bits say little
        assert_qdrant_scores(index, queries, base, s, o)
    if quant != "binary":  # approximate scores straight from the index, same scale as Qdrant's
        s, o = index.search(queries, 5, allowed=allowed, quantization=QP(rescore=False))
        assert allowed[o[o >= 0]].all() and (o >= 0).all()
        exact = np.take_along_axis(score_matrix(queries, base, distance), o, axis=1)
        np.testing.assert_allclose(s, exact, atol=0.1 * float(np.abs(exact).max()))


def test_pq_with_too_few_points_falls_back_to_sq8() -> None:
    base = preprocess(clustered(PQ_MIN_POINTS - 1, 16, 4, seed=9), "Euclid")
    index = VectorIndex.build(base, "Euclid", HNSW, PQ_X8)
    assert index.kind == "hnsw_sq8"
    assert index.warning is not None and "too few points" in index.warning
    s, o = index.search(base[:3], 1, originals=base)
    assert o[:, 0].tolist() == [0, 1, 2] and (s[:, 0] == 0.0).all()


def test_plan_sizes_and_edge_configs() -> None:
    assert pq_subquantizers(128, 16) == 32 and pq_subquantizers(100, 16) == 25
    assert pq_subquantizers(7, 4) == 7 and pq_subquantizers(7, 16) == 1 and pq_subquantizers(96, 64) == 6
    plan = plan_index("Cosine", 64, 5000, HNSW, PQ_X8)
    assert plan.kind == "hnsw_pq" and plan.pq_m == 32 and plan.warning is None
    assert plan_index("Dot", 8, 10, HnswConfig(m=0), BINARY).kind == "binary"
    one = plan_index("Dot", 8, 10, HnswConfig(m=1), None)
    assert one.m == 2 and one.warning is not None and "m=1" in one.warning
    with pytest.raises(BadInputError):
        plan_index("Hamming", 8, 10, HNSW, None)  # type: ignore[arg-type]
    base = preprocess(clustered(300, 8, 3, seed=10), "Euclid")
    index = VectorIndex.build(base, "Euclid", HnswConfig(m=1), None)  # FAISS segfaults on M=1
    assert recall(index.search(base[:5], 1)[1], np.arange(5)[:, None]) == 1.0


def test_ignore_quantization_ranks_by_originals() -> None:
    base, queries = split(clustered(2000 + 20, 32, 10, seed=11), 20, "Dot")
    want_s, want_o = exact_top_k(queries, base, 10, "Dot")
    flat = VectorIndex.build(base, "Dot", FLAT, SQ8)
    assert flat.kind == "flat_sq8"
    s, o = flat.search(queries, 10, quantization=QP(ignore=True), originals=base)
    np.testing.assert_array_equal(o, want_o)
    np.testing.assert_allclose(s, want_s, rtol=1e-5)
    graph = VectorIndex.build(base, "Dot", HNSW, SQ8)
    s, o = graph.search(queries, 10, quantization=QP(ignore=True), originals=base)
    assert recall(o, want_o) >= 0.95
    assert_qdrant_scores(graph, queries, base, s, o)


# ---------------------------------------------------------------- build details, growth, persistence


def test_progress_threads_and_extended() -> None:
    base, queries = split(clustered(9000 + 20, 16, 10, seed=12), 20, "Cosine")
    seen: list[tuple[int, int]] = []
    before = faiss.omp_get_max_threads()
    head = VectorIndex.build(
        base[:6000], "Cosine", HNSW, None, threads=1, progress=lambda d, t: seen.append((d, t))
    )
    assert faiss.omp_get_max_threads() == before  # the thread setting is restored
    assert (
        seen[-1] == (6000, 6000) and len(seen) >= 2 and all(a[0] < b[0] for a, b in itertools.pairwise(seen))
    )
    whole = head.extended(base[6000:], threads=2)
    assert whole.size == 9000 and head.size == 6000 and whole.kind == "hnsw"
    _, want = exact_top_k(queries, base, 10, "Cosine")
    assert recall(whole.search(queries, 10)[1], want) >= 0.95
    assert (head.search(queries, 10)[1] < 6000).all()  # the original is untouched
    with pytest.raises(BadInputError):
        head.extended(base[:10, :8])


@pytest.mark.parametrize("distance", ["Dot", "Euclid"])
def test_extended_pq_keeps_recall(distance: Distance) -> None:
    base, queries = split(clustered(3000 + 20, 32, 10, seed=13), 20, distance)
    head = VectorIndex.build(base[:2000], distance, HNSW, PQ_X8)
    whole = head.extended(base[2000:])
    assert whole.kind == "hnsw_pq" and whole.size == 3000
    _, want = exact_top_k(queries, base, 10, distance)
    s, o = whole.search(queries, 10, quantization=QP(oversampling=4.0), originals=base)
    assert recall(o, want) >= 0.9 and (o >= 2000).any()
    assert_qdrant_scores(whole, queries, base, s, o)


def test_empty_index_then_extended_trains() -> None:
    empty = VectorIndex.build(np.zeros((0, 8), np.float32), "Euclid", HNSW, SQ8)
    s, o = empty.search(np.ones((2, 8), np.float32), 3)
    assert (o == -1).all() and empty.memory_bytes() >= 0
    base = preprocess(clustered(500, 8, 4, seed=14), "Euclid")
    grown = empty.extended(base)
    assert grown.size == 500
    s, o = grown.search(base[:4], 1, originals=base)
    assert o[:, 0].tolist() == [0, 1, 2, 3] and np.allclose(s[:, 0], 0.0, atol=1e-5)


@pytest.mark.parametrize("quant", list(QUANTS))
@pytest.mark.parametrize("on_disk", [False, True])
def test_save_load_round_trip(tmp_path: Path, quant: str, on_disk: bool) -> None:
    base, queries = split(clustered(1500 + 10, 32, 5, seed=15), 10, "Cosine")
    index = VectorIndex.build(base, "Cosine", HnswConfig(m=8, ef_construct=40), QUANTS[quant])
    path = tmp_path / "index_v0.faiss"
    index.save(path)
    assert path.exists() and path.with_suffix(".json").exists()
    assert not list(tmp_path.glob("*.tmp"))
    loaded = VectorIndex.load(path, on_disk=on_disk)
    assert (loaded.kind, loaded.size, loaded.dim, loaded.distance) == (index.kind, 1500, 32, "Cosine")
    assert loaded.quantile == index.quantile and loaded.warning == index.warning
    assert loaded.mmapped == (on_disk and quant != "binary")
    if not loaded.mmapped:
        assert loaded.memory_bytes() == index.memory_bytes()
    else:
        assert loaded.memory_bytes() < index.memory_bytes()
    allowed = np.arange(1500) % 4 != 1
    for kw in ({}, {"allowed": allowed}, {"threshold": 0.5}):
        a = index.search(queries, 10, originals=base, **kw)
        b = loaded.search(queries, 10, originals=base, **kw)
        np.testing.assert_array_equal(a[1], b[1])
        np.testing.assert_array_equal(a[0], b[0])
    grown = loaded.extended(base[:10])  # an mmapped index can still be copied and grown
    assert grown.size == 1510


def test_load_rejects_damaged_files(tmp_path: Path) -> None:
    base = preprocess(clustered(400, 8, 3, seed=16), "Dot")
    path = tmp_path / "index_v0.faiss"
    VectorIndex.build(base, "Dot", HNSW, None).save(path)
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(CorruptedStorageError):
        VectorIndex.load(path)
    path.write_bytes(good)
    meta = path.with_suffix(".json")
    meta.write_bytes(meta.read_bytes().replace(b'"size":400', b'"size":401'))
    with pytest.raises(CorruptedStorageError) as err:
        VectorIndex.load(path)
    assert "400" in err.value.message
    meta.write_bytes(b"{not json")
    with pytest.raises(CorruptedStorageError):
        VectorIndex.load(path)
    meta.unlink()
    with pytest.raises(CorruptedStorageError):
        VectorIndex.load(path)
