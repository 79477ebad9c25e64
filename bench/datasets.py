"""Benchmark data: a deterministic clustered generator, the real MiniLM embeddings, exact ground
truth and recall@k.

Every engine in a run sees the same vectors, queries and ground truth. The synthetic data is
built to behave like real embeddings (low intrinsic dimension, uneven density): K gaussian
clusters, each spread along its own low-dimensional subspace with its own width, unit length
for cosine. Queries are drawn the same way (new points near the same clusters), never copies of
base points.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
# The MiniLM set is not kept in the repo (35 MB): put it under bench/data/minilm-20k (ignored by
# git) or point QCLUSTER_MINILM_DIR at a copy. Files: base.npy, queries.npy, gt_cosine.npy.
MINILM_DIR = Path(os.environ.get("QCLUSTER_MINILM_DIR", REPO / "bench" / "data" / "minilm-20k"))
GT_K = 100


@dataclass(frozen=True)
class Dataset:
    """Base vectors (unit length, float32), their cluster labels, queries, and the exact top-100
    of every query (row indices into ``base``, best first)."""

    name: str
    base: np.ndarray
    labels: np.ndarray
    queries: np.ndarray
    gt: np.ndarray

    @property
    def n(self) -> int:
        return len(self.base)

    @property
    def dim(self) -> int:
        return int(self.base.shape[1])


def _structure(dim: int, clusters: int, intrinsic: int, seed: int) -> tuple[np.ndarray, ...]:
    """The shared shape of the data: centres, per-cluster subspace bases and spreads, and the
    cluster weights. Fixed by ``seed`` alone, so base and queries come from the same clusters."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((clusters, dim)).astype(np.float32) * 2.0
    bases = rng.standard_normal((clusters, intrinsic, dim)).astype(np.float32) / np.sqrt(intrinsic)
    # widths vary by about 2x either way around the median: tight and loose neighbourhoods
    spread = (1.5 * np.exp(rng.normal(0.0, 0.3, clusters))).astype(np.float32)
    # cluster sizes vary mildly (x0.5 .. x1.5 of the mean)
    weights = rng.uniform(0.5, 1.5, clusters)
    return centers, bases, spread, weights / weights.sum()


def clustered(
    n: int,
    dim: int,
    clusters: int = 100,
    seed: int = 0,
    intrinsic: int = 48,
    structure_seed: int = 777,
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` unit-length float32 vectors in ``clusters`` gaussian clusters of varying spread and
    size; returns (vectors, cluster labels). Deterministic for given arguments."""
    centers, bases, spread, weights = _structure(dim, clusters, intrinsic, structure_seed)
    rng = np.random.default_rng(seed)
    labels = rng.choice(clusters, size=n, p=weights)
    z = rng.standard_normal((n, intrinsic)).astype(np.float32)
    x = centers[labels].copy()
    for c in range(clusters):
        rows = np.flatnonzero(labels == c)
        if len(rows):
            x[rows] += (z[rows] @ bases[c]) * spread[c]
    x += 0.05 * rng.standard_normal((n, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), labels.astype(np.int64)


def queries_near(nq: int, dim: int, clusters: int = 100, seed: int = 1) -> np.ndarray:
    """Queries drawn near the same clusters as :func:`clustered` (a different seed)."""
    return clustered(nq, dim, clusters=clusters, seed=seed)[0]


def ground_truth(
    base: np.ndarray,
    queries: np.ndarray,
    k: int = GT_K,
    mask: np.ndarray | None = None,
    chunk: int = 256,
) -> np.ndarray:
    """Exact top-k rows of ``base`` by inner product (cosine on unit vectors), optionally only
    among rows where ``mask`` is true; computed in query chunks. Short rows are padded with -1."""
    out = np.full((len(queries), k), -1, dtype=np.int64)
    rows = np.arange(len(base)) if mask is None else np.flatnonzero(mask)
    if len(rows) == 0:
        return out
    sub = base if mask is None else base[rows]
    kk = min(k, len(rows))
    for start in range(0, len(queries), chunk):
        scores = queries[start : start + chunk] @ sub.T
        part = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
        order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
        out[start : start + chunk, :kk] = rows[np.take_along_axis(part, order, axis=1)]
    return out


def recall_at_k(found: Iterable[Iterable[int]], truth: np.ndarray, k: int = 10) -> float:
    """Mean over queries of |found[:k] ∩ truth[:k]| / |truth[:k]| (queries whose truth is empty,
    because nothing matches a filter, are skipped)."""
    scores = []
    for got, want in zip(found, truth, strict=True):
        w = {int(x) for x in want[:k] if x >= 0}
        if not w:
            continue
        scores.append(len(w & {int(x) for x in list(got)[:k]}) / len(w))
    return float(np.mean(scores)) if scores else 1.0


def synthetic(n: int, nq: int, dim: int = 128, clusters: int = 100, query_seed: int = 1) -> Dataset:
    base, labels = clustered(n, dim, clusters=clusters)
    queries = queries_near(nq, dim, clusters=clusters, seed=query_seed)
    return Dataset(f"clustered-{n // 1000}k-{dim}", base, labels, queries, ground_truth(base, queries))


def minilm(nq: int | None = None, clusters: int = 100) -> Dataset:
    """The real all-MiniLM-L6-v2 embeddings (20,000 x 384 base, 1,000 queries, unit length).
    Labels come from a few k-means iterations (for cluster-correlated filters). The ground truth is
    recomputed to top-100 and checked against the shipped top-10."""
    if not (MINILM_DIR / "base.npy").exists():
        raise FileNotFoundError(
            f"MiniLM dataset not found at {MINILM_DIR} (set QCLUSTER_MINILM_DIR to its folder)"
        )
    base = np.ascontiguousarray(np.load(MINILM_DIR / "base.npy"), dtype=np.float32)
    queries = np.ascontiguousarray(np.load(MINILM_DIR / "queries.npy"), dtype=np.float32)
    shipped = np.load(MINILM_DIR / "gt_cosine.npy")
    if nq is not None:
        queries, shipped = queries[:nq], shipped[:nq]
    gt = ground_truth(base, queries)
    agree = recall_at_k(gt[:, :10], shipped)
    if agree < 0.999:
        raise ValueError(f"recomputed MiniLM ground truth disagrees with gt_cosine.npy ({agree:.4f})")
    return Dataset("minilm-20k-384", base, kmeans_labels(base, clusters), queries, gt)


def kmeans_labels(x: np.ndarray, k: int, iters: int = 8, seed: int = 0) -> np.ndarray:
    """Cluster labels by plain spherical k-means (numpy only, deterministic)."""
    rng = np.random.default_rng(seed)
    cent = x[rng.choice(len(x), size=k, replace=False)].copy()
    labels = np.zeros(len(x), dtype=np.int64)
    for _ in range(iters):
        labels = np.argmax(x @ cent.T, axis=1)
        for c in range(k):
            members = x[labels == c]
            if len(members):
                v = members.sum(axis=0)
                cent[c] = v / max(float(np.linalg.norm(v)), 1e-12)
    return labels


def load(name: str, n: int, nq: int) -> Dataset:
    """``clustered`` (n x 128 synthetic) or ``minilm`` (the real 20k x 384; n is ignored)."""
    if name == "clustered":
        return synthetic(n, nq)
    if name == "minilm":
        return minilm(nq)
    raise ValueError(f"unknown dataset {name!r} (clustered, minilm)")
