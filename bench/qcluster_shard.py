"""The qcluster shard the engine and filtered benchmarks measure (imports qcluster lazily, so the
reference engines still run where qcluster is not importable)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from bench.common import ticker

M, EF_CONSTRUCT = 16, 100
DEFAULT_INDEXING_THRESHOLD_KB = 10_000  # Qdrant's default


def shard_config(dim: int, n: int) -> Any:
    """HNSW M=16 / ef_construct=100, cosine, Qdrant's default optimizer settings. Data smaller than
    the default indexing threshold gets the smallest threshold (every ingest batch is sealed and
    indexed), so small runs end fully indexed too."""
    from qcluster.models.config import HnswConfig, OptimizersConfig, ShardConfig, VectorParams

    data_kb = n * dim * 4 // 1024
    threshold = DEFAULT_INDEXING_THRESHOLD_KB if data_kb >= DEFAULT_INDEXING_THRESHOLD_KB else 1
    return ShardConfig(
        vectors={"": VectorParams(size=dim, distance="Cosine")},
        hnsw_config=HnswConfig(m=M, ef_construct=EF_CONSTRUCT),
        optimizer_config=OptimizersConfig(indexing_threshold=threshold),
    )


def sparse_indexed(shard: Any) -> int:
    """Live points in sealed segments whose every sparse vector name has its inverted index (the
    sparse counterpart of ``indexed_vectors_count``, which counts dense HNSW vectors)."""
    return sum(
        seg.live_count
        for seg in shard.set.segments
        if not seg.appendable and all(store.index is not None for store in seg.sparse.values())
    )


async def wait_fully_indexed(
    shard: Any, n: int, timeout_s: float = 600.0, indexed: Callable[[Any], int] | None = None
) -> Any:
    """Until every vector is in an HNSW index and the optimizer is idle (bounded in time). A tail
    below ``indexing_threshold`` is indexed by lowering the threshold once the rest is done.
    ``indexed(shard)``: how many points count as indexed (default: ``indexed_vectors_count``)."""
    deadline = time.monotonic() + timeout_s
    flushed = False
    with ticker("qcluster indexing (optimizer)"):
        while True:
            info = await shard.info()
            done = info.indexed_vectors_count if indexed is None else indexed(shard)
            if info.optimizer_error:
                raise RuntimeError(f"optimizer failed: {info.optimizer_error}")
            if shard.optimizer.idle:
                if done >= n:
                    return info
                if flushed:
                    raise RuntimeError(f"optimizer idle with {done}/{n} vectors indexed")
                # the tail sits in a segment below indexing_threshold: index it too, as
                # qdrant-edge's optimize() does, so both engines search fully indexed data
                cfg = shard.config
                tail = cfg.optimizer_config.model_copy(update={"indexing_threshold": 1})
                await shard.update_config(cfg.model_copy(update={"optimizer_config": tail}))
                flushed = True
            if time.monotonic() > deadline:
                raise TimeoutError(f"not fully indexed after {timeout_s:.0f} s ({done}/{n})")
            await asyncio.sleep(0.02)
