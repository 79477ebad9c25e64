"""Search inside one segment, with the filtered-search planner.

The planner, per segment and per request:

1. no filter, no deletions -> the ANN index (or exact search when the segment has none);
2. a filter -> its exact mask (payload indexes make this O(matches)); when the allowed points'
   vectors fit under ``full_scan_threshold`` (KB, as in Qdrant) search them exactly: recall 1.0
   and cheaper than walking a graph that is mostly filtered out (small or correlated filters);
3. larger allowed sets -> the HNSW graph with the mask applied during traversal, with the beam
   widened as the allowed share shrinks;
4. a graph search that comes back short of ``limit`` while more allowed points exist falls back
   to exact search for that query.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from qcluster.models.config import Distance, HnswConfig
from qcluster.shards.base import SearchParams
from qcluster.shards.distance import exact_top_k
from qcluster.shards.segment import Segment

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]


def _empty(nq: int, k: int) -> tuple[F32, I64]:
    return np.full((nq, k), np.nan, dtype=np.float32), np.full((nq, k), -1, dtype=np.int64)


def _exact_subset(
    queries: F32,
    vectors: F32,
    size: int,
    k: int,
    distance: Distance,
    allowed: Mask | None,
    threshold: float | None,
) -> tuple[F32, I64]:
    if allowed is None:
        return exact_top_k(queries, vectors[:size], k, distance, None, threshold)
    rows = np.flatnonzero(allowed)
    if len(rows) == 0:
        return _empty(len(queries), k)
    if len(rows) * 8 > size:  # gathering many rows (from a memory map) costs more than scoring all
        return exact_top_k(queries, vectors[:size], k, distance, allowed, threshold)
    scores, offs = exact_top_k(queries, np.asarray(vectors[rows]), k, distance, None, threshold)
    mapped = np.where(offs >= 0, rows[np.maximum(offs, 0)], -1)
    return scores, mapped.astype(np.int64)


def search_segment(
    seg: Segment,
    queries: F32,
    using: str,
    k: int,
    distance: Distance,
    hnsw: HnswConfig,
    params: SearchParams,
    threshold: float | None,
    filter_mask: Mask | None,
) -> tuple[F32, I64]:
    """Top ``k`` (Qdrant scores, segment offsets) for each query row; offsets -1 where fewer."""
    size = seg.size
    nq = len(queries)
    if size == 0 or using not in seg.vectors:
        return _empty(nq, 0)
    k = min(k, size)  # never allocate for more results than the segment has points
    base = seg.searchable_mask(using)
    allowed: Mask | None
    if filter_mask is None:
        allowed = base
    else:
        fm = filter_mask[:size]
        allowed = fm if base is None else (fm & base)
    vectors = seg.vectors[using]
    index = seg.indexes.get(using)
    if index is None or params.exact:
        return _exact_subset(queries, vectors, size, k, distance, allowed, threshold)
    card = size if allowed is None else int(np.count_nonzero(allowed))
    if card == 0:
        return _empty(nq, k)
    dim = vectors.shape[1]
    # A beam wider than the segment visits nothing more: clamp before FAISS allocates for it.
    ef = min(max(params.hnsw_ef or hnsw.ef_construct, k), size)
    if allowed is not None and filter_mask is not None:
        if card * dim * 4 / 1024 < hnsw.full_scan_threshold or card <= 4 * k:
            return _exact_subset(queries, vectors, size, k, distance, allowed, threshold)
        share = card / size
        ef = min(max(ef, math.ceil(ef / max(share, 1e-3) ** 0.5)), max(ef, 2048))
    scores, offs = index.search(
        queries,
        k,
        ef=ef,
        allowed=allowed,
        quantization=params.quantization,
        originals=vectors,
        threshold=threshold,
    )
    if allowed is not None and threshold is None:
        want = min(k, card)
        redo = (offs >= 0).sum(axis=1) < want
        if filter_mask is not None:
            redo |= _excluded_region(index, queries, k, min(hnsw.ef_construct, size), base, allowed, params)
        rows = np.flatnonzero(redo)
        if len(rows):
            s2, o2 = _exact_subset(queries[rows], vectors, size, k, distance, allowed, threshold)
            scores[rows] = s2
            offs[rows] = o2
    return scores, offs


def _excluded_region(
    index: Any, queries: F32, k: int, ef: int, base: Mask | None, allowed: Mask, params: SearchParams
) -> Mask:
    """Queries whose unfiltered neighbourhood holds no allowed point: the filter excludes the
    region the query sits in (filters correlated with the vectors), where a filtered graph walk
    settles for allowed points it met on the way instead of the nearest ones. Those queries are
    answered exactly."""
    _, near = index.search(queries, k, ef=max(ef, k), allowed=base, quantization=params.quantization)
    hit = np.where(near >= 0, allowed[np.maximum(near, 0)], False)
    out: Mask = np.asarray(~hit.any(axis=1), dtype=np.bool_)
    return out
