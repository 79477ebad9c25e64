"""Search inside one segment: the cost-based planner and the plans it runs.

Per segment and per request (a batch of queries sharing filter and parameters)::

    no filter ──────────────► graph (deleted points masked) │ exact when no index / exact=true
    filter ─► count candidates from payload indexes (posting sizes, sorted-value searches)
              │ within the largest exact budget ─► allowed offsets from the indexes (no mask)
              │ more, or a leaf needs payloads  ─► allowed mask (evaluate)
              ▼ count, share of the segment
              card <= exact limit ─────────────► exact over the allowed offsets
              a per-value graph covers the filter ► payload graph walk (``payload_search.py``)
              share >= 10 % ───────────────────► post-filter: plain walk for k / share points,
                                                  keep the allowed; fewer than k ─► exact
              otherwise ───────────────────────► main graph + selector, beam widened
                                                  └ verify: short, region excluded (few allowed
                                                    among its plain neighbours) or probes of the
                                                    allowed set beat it ─► exact (re-plan once)

*Widening*: a selector walk keeps recall down to ~10 % of the points allowed at the requested
beam (uncorrelated filters); below that the beam grows with ``0.1 / share`` (at most
``MAX_EF``): measured on 100k clustered vectors, ef 128 gives recall@10 0.995 at 10 %, 0.95 at
2 % and 0.77 at 1 %.

*Exact limit*: the smaller of ``full_scan_threshold`` (KB of vectors, as in Qdrant) and
``EXACT_PER_EF`` points per unit of the (widened) beam: exact scoring costs ~1/40 of a graph
step per point (measured at 128 dims; both scale with the dimension), so beyond that a walk is
cheaper. Small shares widen the beam and so raise the limit.

*Verification*: a walk on the main graph can miss when the filter excludes the query's region
(filters correlated with the vectors): it settles for allowed points met on the way. Two checks
send such queries to exact scoring: the query's plain neighbours (enough of them to expect ~8
allowed: ``8 / share``, 32 to 512) hold under a quarter of the allowed share; or a fixed probe
of up to ``PROBES`` allowed points, scored exactly, beats the walk's worst result more often
than a good walk allows (~``k / card`` of the probes, plus a margin).

Every choice is counted in ``search_stats`` and logged at debug level.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from qcluster.logging import get_logger
from qcluster.models.config import Distance, HnswConfig
from qcluster.shards import payload_search, search_stats
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
MIN_BLOCK = 32
POSTFILTER_SHARE = 0.1
POSTFILTER_MARGIN = 2.5
NEIGHBOURS = 32
MAX_NEIGHBOURS = 512
PROBES = 64
PROBE_HITS = 2
MIN_PROBES = 16


@dataclass(slots=True)
class Query:
    """One request's queries and parameters, shared by every segment it searches (never changed
    once made: ``clamped`` returns a copy; not frozen only because a frozen dataclass costs
    microseconds to create, on the one-query path)."""

    vectors: F32  # preprocessed [nq, dim]
    using: str
    k: int
    distance: Distance
    hnsw: HnswConfig
    params: SearchParams
    threshold: float | None
    filter: Filter | None
    ef: int = 0  # the beam asked for (hnsw_ef, else ef_construct; at least k): set on creation

    def __post_init__(self) -> None:
        if not self.ef:
            self.ef = max(self.params.hnsw_ef or self.hnsw.ef_construct, self.k)

    def clamped(self, size: int) -> Query:
        """This query with ``k`` and the beam at most ``size`` (a segment's points): a limit or
        ``hnsw_ef`` beyond them visits nothing more, and FAISS would allocate for it."""
        if self.k <= size and self.ef <= size:
            return self
        return replace(self, k=min(self.k, size), ef=min(self.ef, size))


def widened_ef(ef: int, share: float) -> int:
    """The beam a selector walk needs to keep recall when ``share`` of the points are allowed."""
    if share >= WIDEN_BELOW_SHARE:
        return ef
    if share <= 0:
        return max(ef, MAX_EF)
    return min(max(ef, math.ceil(ef * WIDEN_BELOW_SHARE / share)), max(ef, MAX_EF))


def neighbours(share: float) -> int:
    """How many plain neighbours the region check looks at: enough to expect ~8 allowed ones."""
    if share <= 0:
        return MAX_NEIGHBOURS
    return min(MAX_NEIGHBOURS, max(NEIGHBOURS, math.ceil(8 / share)))


def exact_limit(q: Query, dim: int, share: float = 1.0) -> int:
    """Allowed points up to which exact scoring beats a graph plan (see the module docstring):
    below ``POSTFILTER_SHARE`` the plan is a widened selector walk plus the region check."""
    by_threshold = q.hnsw.full_scan_threshold * 1024 // max(1, dim * 4)
    steps = q.ef if share >= POSTFILTER_SHARE else widened_ef(q.ef, share) + neighbours(share)
    return max(4 * q.k, min(by_threshold, EXACT_PER_EF * steps))


def block_threshold(hnsw: HnswConfig, dim: int) -> int:
    """Smallest value block worth a payload graph: larger than what the planner scores exactly at
    the default beam (``ef_construct``)."""
    by_threshold = hnsw.full_scan_threshold * 1024 // max(1, dim * 4)
    return max(MIN_BLOCK, min(by_threshold, EXACT_PER_EF * hnsw.ef_construct) + 1)


def search_segment(seg: Segment, q: Query) -> tuple[F32, I64]:
    """Top ``k`` (Qdrant scores, segment offsets) per query row; offsets -1 where fewer."""
    nq, size = len(q.vectors), seg.size
    single_thread()
    if size == 0 or q.using not in seg.vectors:
        return empty_result(nq, q.k)
    q = q.clamped(size)  # never allocate for more results than the segment has points
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
    dim = vectors.shape[1]
    # A filter whose candidates the indexes can list within the largest exact budget never
    # builds a point mask; otherwise (too many, or a leaf needs payloads) it becomes a mask.
    ids = _allowed(seg, q, size, dim, index is not None, base)
    mask: Mask | None = None
    if ids is None and index is not None:
        wide = _wide_share(q.filter, seg, index, base)
        if wide is not None:  # a plain walk checking its candidates: no point mask at all
            return _postfilter(seg, index, q, vectors, base, None, wide, wide)
    if ids is None:
        mask = evaluate(q.filter, seg, base)
        card = int(np.count_nonzero(mask))
    else:
        card = len(ids)
    est = selection.estimate(q.filter, seg, seg.live_count) if _debug.isEnabledFor(logging.DEBUG) else None
    if card == 0:
        _note("empty", seg, nq, 0, est)
        return empty_result(nq, q.k)
    share = card / size
    if index is None or card <= 4 * q.k or card <= exact_limit(q, dim, share):
        _note("exact", seg, nq, card, est)
        rows = ids if ids is not None else np.flatnonzero(np.asarray(mask))
        return exact_rows(q.vectors, vectors, rows, q.k, q.distance, q.threshold)
    if mask is None:
        assert ids is not None
        mask = np.zeros(size, dtype=np.bool_)
        mask[ids] = True
    choice = payload_search.choose(index, q.filter, seg) if index.payload_graphs else None
    if choice is not None:
        _note("payload_graph", seg, nq, card, est, q.ef)
        return payload_search.search(seg, index, q, choice, mask, card, q.ef)
    if share >= POSTFILTER_SHARE:
        return _postfilter(seg, index, q, vectors, base, mask, card, est)
    ef = widened_ef(q.ef, share)
    _note("graph", seg, nq, card, est, ef)
    scores, offs = _walk(index, q, ef, mask, vectors)
    if q.threshold is None:
        _verify(index, q, vectors, base, mask, card, scores, offs)
    return scores, offs


def _allowed(seg: Segment, q: Query, size: int, dim: int, indexed: bool, base: Mask | None) -> I64 | None:
    """The searchable offsets the filter allows, listed from the payload indexes within the
    largest exact budget when the segment is ``indexed`` (None: too many, or a leaf needs
    payloads), remembered per filter until the segment changes (``selection_cache.py``)."""
    flt = q.filter
    assert flt is not None
    stamp = (seg.generation, seg.epoch, size)
    key = (q.using, q.k, q.ef, q.hnsw.full_scan_threshold, indexed)  # what the budget depends on
    found, ids = seg.selections.get(flt, key, stamp)
    if found:
        return ids
    ids = selection.offsets(flt, seg, size, exact_limit(q, dim, 0.0) if indexed else None)
    if ids is not None and base is not None:
        ids = ids[base[ids]]
    seg.selections.put(flt, key, stamp, ids)
    return ids


def _wide_share(flt: Filter, seg: Segment, index: Any, base: Mask | None) -> int | None:
    """The fewest points the filter can allow when the payload indexes count at least
    ``POSTFILTER_SHARE`` of the segment for it (and no payload graph is made for it): the plan is
    then a post-filtered walk whose candidates are checked one by one. None otherwise."""
    est = selection.estimate(flt, seg, seg.live_count)
    if est is None:
        return None
    low = est[0] - (0 if base is None else seg.size - int(np.count_nonzero(base)))
    if low < POSTFILTER_SHARE * seg.size:
        return None
    if index.payload_graphs and payload_search.choose(index, flt, seg) is not None:
        return None
    return low


def _postfilter(
    seg: Segment,
    index: Any,
    q: Query,
    vectors: F32,
    base: Mask | None,
    mask: Mask | None,
    card: int,
    est: Any,
) -> tuple[F32, I64]:
    """A walk of the main graph for ``k / share`` neighbours (times a margin), keeping the allowed
    ones: one plain walk, no selector. Queries that keep fewer than ``k`` (their region is
    excluded, or they were unlucky) are answered exactly. Without a ``mask`` the candidates are
    checked by index lookups (``card`` is then a lower bound), and the mask is only built when a
    query needs the exact answer."""
    flt = q.filter
    assert flt is not None
    share = card / seg.size
    fetch = min(seg.size, max(q.k, math.ceil(q.k * POSTFILTER_MARGIN / share)))
    _note("postfilter", seg, len(q.vectors), card, est, max(q.ef, fetch))
    wide = Query(q.vectors, q.using, fetch, q.distance, q.hnsw, q.params, q.threshold, None)
    scores, offs = _walk(index, wide, max(q.ef, fetch), base, vectors)
    found = offs >= 0
    accepted = None if mask is not None else selection.member(flt, seg, offs[found])
    if accepted is None:
        if mask is None:
            mask = evaluate(flt, seg, base)
        keep = found & mask[np.maximum(offs, 0)]
    else:
        keep = np.zeros(offs.shape, dtype=np.bool_)
        keep[found] = accepted
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
        if mask is None:
            mask = evaluate(flt, seg, base)
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
    m = neighbours(share)
    _, near = index.search(q.vectors, m, ef=m, allowed=base)
    allowed_near = np.where(near >= 0, mask[np.maximum(near, 0)], False).sum(axis=1)
    region = allowed_near < share * m / 4
    probe = index.probe_rows()
    cand = probe[mask[probe]][:PROBES]
    if len(cand) >= MIN_PROBES:
        ps, _ = exact_rows(q.vectors, vectors, cand, len(cand), q.distance)
        valid = offs >= 0
        if higher_is_better(q.distance):
            beats = ps > np.where(valid, scores, np.inf).min(axis=1)[:, None]
        else:
            beats = ps < np.where(valid, scores, -np.inf).max(axis=1)[:, None]
        expected = len(cand) * q.k / card  # probes a good walk's worst result loses to
        region |= beats.sum(axis=1) >= PROBE_HITS + expected + 2 * math.sqrt(expected)
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
