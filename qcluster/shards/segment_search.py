"""Search inside one segment: the cost-based planner and the plans it runs.

Per segment and per request (a batch of queries sharing filter and parameters)::

    no filter ──────────────► graph (deleted points masked) │ exact when no index / exact=true
    filter ─► estimate from payload indexes (posting sizes, sorted-value searches; O(values))
              │ expected <= exact limit  ─► allowed offsets from the indexes (no point mask)
              │ otherwise / not countable ─► allowed mask (evaluate)
              ▼ count
              card <= exact limit ─────────────► exact over the allowed offsets
              a per-value graph covers the filter ► payload graph walk (entries of the values)
              otherwise ───────────────────────► main graph + selector, beam widened
                                                  └ verify: short, or probes of the allowed set
                                                    beat its results ─► exact (re-plan once)

*Exact limit*: the smaller of ``full_scan_threshold`` (KB of vectors, as in Qdrant) and
``EXACT_PER_EF * ef`` points: exact scoring costs ~1/40 of a graph step per point (measured at
128 dims, both scale with the dimension), so beyond that a graph walk is cheaper.

*Widening*: a selector walk keeps recall down to ~10 % of the points allowed at the requested
beam (uncorrelated filters); below that the beam grows with ``sqrt(0.1 / share)``.

*Verification*: a walk on the main graph can miss when the filter excludes the query's region
(filters correlated with the vectors): it settles for allowed points met on the way. A fixed
probe of up to ``PROBES`` allowed points is scored exactly; if ``PROBE_HITS`` or more of them
beat the walk's worst result, the walk missed a region and the query is answered exactly. (A
good walk's worst result is beaten by ~k/card of the allowed points, so two probe hits are
unlikely: ~1 % at card 5,000.)

Every choice is counted in ``search_stats`` and logged at debug level.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from qcluster.logging import get_logger
from qcluster.models.config import Distance, HnswConfig
from qcluster.shards import search_stats
from qcluster.shards.base import SearchParams
from qcluster.shards.distance import empty_result, higher_is_better
from qcluster.shards.filters import Filter, evaluate
from qcluster.shards.filters import select as selection
from qcluster.shards.index.exact import all_rows, exact_rows, single_thread
from qcluster.shards.segment import Segment

log = get_logger(__name__)
_debug = logging.getLogger()  # the level structlog filters on (``setup_logging``)
F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]

EXACT_PER_EF = 40
WIDEN_BELOW_SHARE = 0.1
MAX_EF = 2048
POSTFILTER_SHARE = 0.1
POSTFILTER_MARGIN = 2.5
NEIGHBOURS = 32
PROBES = 64
PROBE_HITS = 2
MIN_PROBES = 16


@dataclass(frozen=True, slots=True)
class Query:
    """One request's queries and parameters, shared by every segment it searches."""

    vectors: F32  # preprocessed [nq, dim]
    using: str
    k: int
    distance: Distance
    hnsw: HnswConfig
    params: SearchParams
    threshold: float | None
    filter: Filter | None

    @property
    def ef(self) -> int:
        return max(self.params.hnsw_ef or self.hnsw.ef_construct, self.k)


def exact_limit(q: Query, dim: int) -> int:
    """Allowed points up to which exact scoring beats a graph walk (see the module docstring)."""
    by_threshold = q.hnsw.full_scan_threshold * 1024 // max(1, dim * 4)
    return max(4 * q.k, min(by_threshold, EXACT_PER_EF * q.ef))


def search_segment(seg: Segment, q: Query) -> tuple[F32, I64]:
    """Top ``k`` (Qdrant scores, segment offsets) per query row; offsets -1 where fewer."""
    nq, size = len(q.vectors), seg.size
    single_thread()
    if size == 0 or q.using not in seg.vectors:
        return empty_result(nq, q.k)
    base = seg.searchable_mask(q.using)
    vectors = seg.vectors[q.using]
    index = None if q.params.exact else seg.indexes.get(q.using)
    if q.filter is None:
        if index is None:
            rows = all_rows(size) if base is None else np.flatnonzero(base)
            _note("exact", seg, nq, len(rows))
            return exact_rows(q.vectors, vectors, rows, q.k, q.distance, q.threshold)
        _note("unfiltered", seg, nq, size)
        return _walk(index, q, q.ef, base, vectors)
    limit = exact_limit(q, vectors.shape[1])
    # A filter whose candidates the indexes can list within the exact budget never builds a
    # point mask; otherwise (too many, or a leaf needs payloads) it is evaluated as a mask.
    ids = selection.offsets(q.filter, seg, size, None if index is None else limit)
    mask: Mask | None = None
    if ids is None:
        mask = evaluate(q.filter, seg, base)
        card = int(np.count_nonzero(mask))
    else:
        if base is not None:
            ids = ids[base[ids]]
        card = len(ids)
    est = selection.estimate(q.filter, seg, seg.live_count) if _debug.isEnabledFor(logging.DEBUG) else None
    if card == 0:
        _note("empty", seg, nq, 0, est)
        return empty_result(nq, q.k)
    if index is None or card <= limit:
        _note("exact", seg, nq, card, est)
        rows = ids if ids is not None else np.flatnonzero(np.asarray(mask))
        return exact_rows(q.vectors, vectors, rows, q.k, q.distance, q.threshold)
    if mask is None:
        assert ids is not None
        mask = np.zeros(size, dtype=np.bool_)
        mask[ids] = True
    share = card / size
    if share >= POSTFILTER_SHARE:
        return _postfilter(seg, index, q, vectors, base, mask, card, est)
    ef = min(max(q.ef, math.ceil(q.ef * math.sqrt(WIDEN_BELOW_SHARE / share))), max(q.ef, MAX_EF))
    _note("graph", seg, nq, card, est, ef)
    scores, offs = _walk(index, q, ef, mask, vectors)
    if q.threshold is None:
        _verify(index, q, vectors, base, mask, card, scores, offs)
    return scores, offs


def _postfilter(
    seg: Segment, index: Any, q: Query, vectors: F32, base: Mask | None, mask: Mask, card: int, est: Any
) -> tuple[F32, I64]:
    """A walk of the main graph for ``k / share`` neighbours (times a margin), keeping the allowed
    ones: one plain walk, no selector. Queries that keep fewer than ``k`` (their region is
    excluded, or they were unlucky) are answered exactly."""
    share = card / seg.size
    fetch = min(seg.size, max(q.k, math.ceil(q.k * POSTFILTER_MARGIN / share)))
    _note("postfilter", seg, len(q.vectors), card, est, max(q.ef, fetch))
    wide = Query(q.vectors, q.using, fetch, q.distance, q.hnsw, q.params, q.threshold, None)
    scores, offs = _walk(index, wide, max(q.ef, fetch), base, vectors)
    keep = (offs >= 0) & mask[np.maximum(offs, 0)]
    nq, k = len(offs), q.k
    out_s, out_o = empty_result(nq, k)
    counts = keep.sum(axis=1)
    for row in range(nq):
        take = np.flatnonzero(keep[row])[:k]
        out_s[row, : len(take)] = scores[row, take]
        out_o[row, : len(take)] = offs[row, take]
    # Short rows are exact unless the walk itself ran out above the score threshold.
    short = counts < min(k, card)
    if q.threshold is not None:
        short &= offs[:, -1] >= 0
    redo = np.flatnonzero(short)
    if len(redo):
        search_stats.record("fallback_region", len(redo))
        s2, o2 = exact_rows(q.vectors[redo], vectors, np.flatnonzero(mask), k, q.distance, q.threshold)
        out_s[redo] = s2
        out_o[redo] = o2
    return out_s, out_o


def _walk(index: Any, q: Query, ef: int, allowed: Mask | None, vectors: F32) -> tuple[F32, I64]:
    scores, offs = index.search(
        q.vectors,
        q.k,
        ef=ef,
        allowed=allowed,
        quantization=q.params.quantization,
        originals=vectors,
        threshold=q.threshold,
    )
    return scores, offs


def _verify(
    index: Any, q: Query, vectors: F32, base: Mask | None, mask: Mask, card: int, scores: F32, offs: I64
) -> None:
    """Re-answer exactly, in place, the queries whose selector walk came back short, sits in a
    region the filter excludes (few allowed points among its plain neighbours), or lost to
    probes of the allowed set."""
    nq = len(offs)
    short = (offs >= 0).sum(axis=1) < min(q.k, card)
    share = card / len(mask)
    _, near = index.search(q.vectors, NEIGHBOURS, ef=NEIGHBOURS, allowed=base)
    allowed_near = np.where(near >= 0, mask[np.maximum(near, 0)], False).sum(axis=1)
    region = allowed_near < share * NEIGHBOURS / 4
    probe = index.probe_rows()
    cand = probe[mask[probe]][:PROBES]
    if len(cand) >= MIN_PROBES:
        ps, _ = exact_rows(q.vectors, vectors, cand, len(cand), q.distance)
        valid = offs >= 0
        if higher_is_better(q.distance):
            beats = ps > np.where(valid, scores, np.inf).min(axis=1)[:, None]
        else:
            beats = ps < np.where(valid, scores, -np.inf).max(axis=1)[:, None]
        region |= beats.sum(axis=1) >= PROBE_HITS
    region &= ~short
    redo = np.flatnonzero(short | region)
    if len(redo) == 0:
        return
    if short.any():
        search_stats.record("fallback_short", int(short.sum()))
    if region.any():
        search_stats.record("fallback_region", int(region.sum()))
    if _debug.isEnabledFor(logging.DEBUG):
        log.debug("search re-planned to exact", short=int(short.sum()), region=int(region.sum()), queries=nq)
    s2, o2 = exact_rows(q.vectors[redo], vectors, np.flatnonzero(mask), q.k, q.distance, q.threshold)
    scores[redo] = s2
    offs[redo] = o2


def _note(plan: str, seg: Segment, nq: int, card: int, est: Any = None, ef: int | None = None) -> None:
    search_stats.record(plan, nq)
    if _debug.isEnabledFor(logging.DEBUG):
        log.debug("search plan", plan=plan, segment=seg.id, queries=nq, allowed=card, estimate=est, ef=ef)
