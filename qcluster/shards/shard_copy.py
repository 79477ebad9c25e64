"""Copying every point of a shard, page by page, as upsert batches (a rebuild into a new vector
layout, a ``stream_records`` transfer), then its payload indexes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence

import numpy as np

from qcluster.shards.base import ALL_PAYLOAD, Record, ScrollRequest, ScrollResult, ShardInfo, VectorSelector
from qcluster.shards.operations import (
    CreateFieldIndex,
    NamedVectors,
    PointsBatch,
    UpdateOperation,
    UpsertPoints,
)
from qcluster.types import PointId

PAGE = 1000
Scroll = Callable[[ScrollRequest], Awaitable[ScrollResult]]
Info = Callable[[], Awaitable[ShardInfo]]
Sink = Callable[[UpdateOperation], Awaitable[object]]


def records_batch(records: Sequence[Record], dims: Mapping[str, int]) -> PointsBatch:
    """Records as one batch keeping the vectors named in ``dims``; a point without any of them
    keeps an all-absent column of the first name."""
    names = list(dims)
    vectors: dict[str, NamedVectors] = {}
    for name in names:
        rows = [r.vector.get(name) if r.vector else None for r in records]
        present = np.array([v is not None for v in rows], dtype=np.bool_)
        if not present.any():
            continue
        dim = next(v for v in rows if v is not None).shape[0]
        data = np.zeros((len(rows), dim), dtype=np.float32)
        for i, v in enumerate(rows):
            if v is not None:
                data[i] = v
        vectors[name] = NamedVectors(data, None if present.all() else present)
    if not vectors and names:
        n = len(records)
        vectors[names[0]] = NamedVectors(
            np.zeros((n, dims[names[0]]), dtype=np.float32), np.zeros(n, dtype=np.bool_)
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
