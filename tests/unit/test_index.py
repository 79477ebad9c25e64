"""The FAISS wrapper: every kind builds, searches with Qdrant scores, survives save/load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from qcluster.models.config import (
    BinaryQuantization,
    BinaryQuantizationConfig,
    HnswConfig,
    ProductQuantization,
    ProductQuantizationConfig,
    ScalarQuantization,
    ScalarQuantizationConfig,
)
from qcluster.shards.base import QuantizationSearchParams
from qcluster.shards.distance import exact_top_k, preprocess, score_matrix
from qcluster.shards.index import VectorIndex


def data(n: int = 3000, dim: int = 32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = np.random.default_rng(99).standard_normal((30, dim)) * 3
    basis = np.random.default_rng(98).standard_normal((6, dim))
    x = (
        centers[rng.integers(0, 30, n)]
        + rng.standard_normal((n, 6)) @ basis
        + 0.05 * rng.standard_normal((n, dim))
    )
    return x.astype(np.float32)


def recall(index: VectorIndex, base: np.ndarray, queries: np.ndarray, distance: str, **kw: object) -> float:
    _, want = exact_top_k(queries, base, 10, distance)  # type: ignore[arg-type]
    _, got = index.search(queries, 10, originals=base, **kw)  # type: ignore[arg-type]
    return float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(got, want, strict=True)]))


@pytest.mark.parametrize("distance", ["Cosine", "Dot", "Euclid", "Manhattan"])
def test_hnsw_scores_are_qdrant_scores(distance: str) -> None:
    base = preprocess(data(), distance)  # type: ignore[arg-type]
    queries = preprocess(data(20, seed=1), distance)  # type: ignore[arg-type]
    index = VectorIndex.build(base, distance, HnswConfig(), None)  # type: ignore[arg-type]
    assert recall(index, base, queries, distance, ef=128) >= 0.95
    scores, offs = index.search(queries, 5, ef=64)
    exact = score_matrix(queries, base, distance)  # type: ignore[arg-type]
    for i in range(len(queries)):
        assert np.allclose(scores[i], exact[i][offs[i]], rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize(
    ("quant", "kind", "min_recall"),
    [
        (ScalarQuantization(scalar=ScalarQuantizationConfig(quantile=0.99)), "hnsw_sq8", 0.97),
        (ProductQuantization(product=ProductQuantizationConfig(compression="x8")), "hnsw_pq", 0.8),
        (BinaryQuantization(binary=BinaryQuantizationConfig()), "binary", 0.5),
    ],
)
def test_quantized_kinds_rescore(quant: object, kind: str, min_recall: float, tmp_path: Path) -> None:
    base = preprocess(data(), "Cosine")
    queries = preprocess(data(30, seed=2), "Cosine")
    index = VectorIndex.build(base, "Cosine", HnswConfig(), quant)  # type: ignore[arg-type]
    assert index.kind == kind and index.warning is None
    params = QuantizationSearchParams(rescore=True, oversampling=3.0)
    assert recall(index, base, queries, "Cosine", ef=128, quantization=params) >= min_recall
    path = tmp_path / "i.faiss"
    index.save(path)
    again = VectorIndex.load(path)
    a = index.search(queries, 10, ef=64, originals=base)
    b = again.search(queries, 10, ef=64, originals=base)
    assert np.array_equal(a[1], b[1])


def test_manhattan_with_quantization_never_reaches_faiss() -> None:
    base = data(500)
    for quant in (
        ScalarQuantization(scalar=ScalarQuantizationConfig()),
        ProductQuantization(product=ProductQuantizationConfig(compression="x4")),
    ):
        index = VectorIndex.build(base, "Manhattan", HnswConfig(), quant)
        assert index.kind == "hnsw" and index.warning is not None and "Manhattan" in index.warning
        assert recall(index, base, base[:10], "Manhattan", ef=64) >= 0.9


def test_flat_extended_filtered_and_memory(tmp_path: Path) -> None:
    base = preprocess(data(2000), "Dot")
    flat = VectorIndex.build(base, "Dot", HnswConfig(m=0), None)
    assert flat.kind == "flat" and recall(flat, base, base[:10], "Dot") == 1.0
    first = VectorIndex.build(base[:1200], "Dot", HnswConfig(), None)
    grown = first.extended(base[1200:])
    assert grown.size == 2000 and first.size == 1200
    assert recall(grown, base, base[:20], "Dot", ef=128) >= 0.95
    allowed = np.zeros(2000, dtype=np.bool_)
    allowed[::7] = True
    _, offs = grown.search(base[:20], 10, ef=128, allowed=allowed)
    assert all(allowed[o] for o in offs.ravel() if o >= 0)
    big = preprocess(data(3000, dim=128), "Cosine")
    plain = VectorIndex.build(big, "Cosine", HnswConfig(), None).memory_bytes()
    sq8 = VectorIndex.build(
        big, "Cosine", HnswConfig(), ScalarQuantization(scalar=ScalarQuantizationConfig())
    ).memory_bytes()
    assert sq8 <= 0.45 * plain
    with_disk = tmp_path / "g.faiss"
    grown.save(with_disk)
    mm = VectorIndex.load(with_disk, on_disk=True)
    assert np.array_equal(mm.search(base[:5], 5, ef=64)[1], grown.search(base[:5], 5, ef=64)[1])
