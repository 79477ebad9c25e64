from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import numpy as np
import pytest

from qcluster.models.config import OptimizersConfig, ShardConfig, VectorParams
from qcluster.settings import StorageSettings, WalSettings
from qcluster.shards.local_shard import LocalShard
from qcluster.shards.operations import NamedVectors, PointsBatch, UpsertPoints


def clustered(n: int, dim: int, clusters: int = 20, seed: int = 0, intrinsic: int = 8) -> np.ndarray:
    """Gaussian clusters whose spread lives mostly in a low-dimensional subspace, like real
    embeddings (isotropic high-dimensional noise makes every ANN index look bad)."""
    rng = np.random.default_rng(seed)
    basis_rng = np.random.default_rng(12345)  # same subspace and centers for data and queries
    centers = basis_rng.standard_normal((clusters, dim)).astype(np.float32) * 3
    basis = basis_rng.standard_normal((intrinsic, dim)).astype(np.float32)
    labels = rng.integers(0, clusters, n)
    low = rng.standard_normal((n, min(intrinsic, dim))).astype(np.float32) @ basis[: min(intrinsic, dim)]
    noise = 0.1 * rng.standard_normal((n, dim)).astype(np.float32)
    return (centers[labels] + low + noise).astype(np.float32)


def shard_config(
    dim: int, distance: str = "Cosine", indexing_threshold: int = 10000, **vector_kw: object
) -> ShardConfig:
    return ShardConfig(
        vectors={"": VectorParams(size=dim, distance=distance, **vector_kw)},  # type: ignore[arg-type]
        optimizer_config=OptimizersConfig(indexing_threshold=indexing_threshold, flush_interval_sec=1),
    )


def storage(durability: str = "os") -> StorageSettings:
    return StorageSettings(wal=WalSettings(durability=durability))  # type: ignore[arg-type]


def upsert_op(ids: list[int], vectors: np.ndarray, payloads: list[dict] | None = None) -> UpsertPoints:
    return UpsertPoints(
        PointsBatch(
            tuple(ids),
            {"": NamedVectors(vectors.astype(np.float32))},
            None if payloads is None else tuple(payloads),
        )
    )


async def wait_for(
    cond: Callable[[], Awaitable[bool]], timeout: float = 60.0, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await cond():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


async def wait_optimized(shard: LocalShard, timeout: float = 120.0) -> None:
    async def done() -> bool:
        info = await shard.info()
        return info.status == "green" and shard.optimizer.idle

    shard.optimizer.wake()
    await wait_for(done, timeout, "optimizer to finish")


@pytest.fixture
def make_storage() -> Callable[..., StorageSettings]:
    return storage
