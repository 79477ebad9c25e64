"""Splitting one update operation into per-shard operations (pure)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from qcluster.shards.operations import (
    SELECTOR_OPS,
    PointsBatch,
    PointSelector,
    UpdateOperation,
    UpdateVectors,
    UpsertPoints,
)
from qcluster.shards.routing import split_ids


def sub_batch(batch: PointsBatch, rows: list[int]) -> PointsBatch:
    idx = np.asarray(rows, dtype=np.int64)
    vectors = {name: col.take(idx) for name, col in batch.vectors.items()}
    payloads = None if batch.payloads is None else tuple(batch.payloads[i] for i in rows)
    return PointsBatch(tuple(batch.ids[i] for i in rows), vectors, payloads)


def split_operation(op: UpdateOperation, shard_count: int) -> dict[int, UpdateOperation]:
    """Shard id -> the part of ``op`` that shard must apply. Filters and index ops go to all."""
    if shard_count <= 1:
        return {0: op}
    if isinstance(op, UpsertPoints | UpdateVectors):
        parts = split_ids(op.batch.ids, shard_count)
        return {sid: replace(op, batch=sub_batch(op.batch, rows)) for sid, rows in parts.items()}
    if isinstance(op, SELECTOR_OPS) and op.selector.ids is not None and op.selector.filter is None:
        ids = op.selector.ids
        parts = split_ids(ids, shard_count)
        return {
            sid: replace(op, selector=PointSelector(ids=tuple(ids[i] for i in rows)))
            for sid, rows in parts.items()
        }
    return dict.fromkeys(range(shard_count), op)
