"""Copying every point of a shard, page by page, as upsert batches (a rebuild into a new vector
layout, a ``stream_records`` transfer), then its payload indexes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import numpy as np

from qcluster.shards.base import ALL_PAYLOAD, Record, ScrollRequest, ScrollResult, ShardInfo, VectorSelector
from qcluster.shards.operations import (
    Column,
    CreateFieldIndex,
    MultiColumn,
    NamedVectors,
    PointsBatch,
    UpdateOperation,
    UpsertPoints,
)
from qcluster.shards.sparse.vector import SparseColumn, SparseVector
from qcluster.types import PointId

PAGE = 1000
Scroll = Callable[[ScrollRequest], Awaitable[ScrollResult]]
Info = Callable[[], Awaitable[ShardInfo]]
Sink = Callable[[UpdateOperation], Awaitable[object]]


def _column(rows: list[Any], dim: int) -> Column | None:
    """A column of stored values (None where absent), of the values' kind: sparse vectors,
    multivectors (``[rows, dim]``) or single vectors."""
    kept = [v for v in rows if v is not None]
    if not kept:
        return None
    if isinstance(kept[0], SparseVector):
        return SparseColumn.from_rows(rows)
    if np.asarray(kept[0]).ndim == 2:
        return MultiColumn.from_rows(rows, dim)
    present = np.array([v is not None for v in rows], dtype=np.bool_)
    data = np.zeros((len(rows), np.asarray(kept[0]).shape[0]), dtype=np.float32)
    for i, v in enumerate(rows):
        if v is not None:
            data[i] = v
    return NamedVectors(data, None if present.all() else present)


def records_batch(records: Sequence[Record], dims: Mapping[str, int]) -> PointsBatch:
    """Records as one batch keeping the vectors named in ``dims`` (name -> dimension, 0 for a
    sparse vector); a point without any of them keeps an all-absent column of the first single
    vector name."""
    vectors: dict[str, Column] = {}
    for name, dim in dims.items():
        col = _column([r.vector.get(name) if r.vector else None for r in records], dim)
        if col is not None:
            vectors[name] = col
    single = [n for n, d in dims.items() if d > 0]
    if not vectors and single:
        n = len(records)
        vectors[single[0]] = NamedVectors(
            np.zeros((n, dims[single[0]]), dtype=np.float32), np.zeros(n, dtype=np.bool_)
        )
    return PointsBatch(tuple(r.id for r in records), vectors, tuple(r.payload for r in records))


async def copy_points(
    scroll: Scroll,
    info: Info,
    sink: Sink,
    dims: Mapping[str, int],
    on_page: Callable[[int], None] | None = None,
    page: int = PAGE,
) -> int:
    """Hand every point to ``sink`` as ``UpsertPoints`` batches, then one ``CreateFieldIndex`` per
    payload index; returns the number of points copied."""
    names = tuple(dims)
    keep = VectorSelector(True, names) if names else VectorSelector(False)
    offset: PointId | None = None
    copied = 0
    while True:
        result = await scroll(
            ScrollRequest(offset=offset, limit=page, with_payload=ALL_PAYLOAD, with_vector=keep)
        )
        if result.points:
            await sink(UpsertPoints(records_batch(result.points, dims)))
            copied += len(result.points)
            if on_page is not None:
                on_page(len(result.points))
        if result.next_page_offset is None:
            break
        offset = result.next_page_offset
    for key, schema in (await info()).payload_schema.items():
        await sink(CreateFieldIndex(key, schema.get("params") or schema.get("data_type")))
    return copied
