"""How many live points of a segment pass a filter: (min, expected, max), cheaply.

- Every leaf answered by ids, vectors or payload indexes: the exact count (numpy only).
- Otherwise: bounds from the exact leaves combined through the clauses (an unknown leaf counts
  anywhere in [0, N]), and the expected value from evaluating the filter on an evenly spaced
  sample of live offsets (at most ``sample_size``, default 256, payload checks per unindexed leaf), clamped to
  the bounds. When the segment has no more live points than the sample, the sample is everything
  and the answer is exact.
"""

from __future__ import annotations

import numpy as np

from qcluster.shards.filters.conditions import Condition, Filter, Nested
from qcluster.shards.filters.evaluate import Evaluator, Mask, SegmentView

Bounds = tuple[int, int]


def _and(parts: list[Bounds], n: int) -> Bounds:
    if not parts:
        return n, n
    lo = max(0, sum(p[0] for p in parts) - (len(parts) - 1) * n)
    hi = min(p[1] for p in parts)
    return min(lo, hi), hi


def _bounds(c: Condition, ev: Evaluator, live: Mask, n: int) -> Bounds:
    if not isinstance(c, Filter):
        leaf = None if isinstance(c, Nested) else ev.leaf_mask(c)
        if leaf is None:
            return 0, n
        k = int(np.count_nonzero(leaf & live))
        return k, k
    parts = [_bounds(m, ev, live, n) for m in c.must]
    for m in c.must_not:
        lo, hi = _bounds(m, ev, live, n)
        parts.append((n - hi, n - lo))
    if c.should:
        sub = [_bounds(m, ev, live, n) for m in c.should]
        parts.append((max(p[0] for p in sub), min(n, sum(p[1] for p in sub))))
    if c.min_should is not None:
        sub = [_bounds(m, ev, live, n) for m in c.min_should.conditions]
        k, need = len(sub), c.min_should.min_count
        if need > k:
            parts.append((0, 0))
        else:
            hi = min(n, sum(p[1] for p in sub) // need)
            lo = max(0, -(-(sum(p[0] for p in sub) - (need - 1) * n) // (k - need + 1)))
            parts.append((min(lo, hi), hi))
    return _and(parts, n)


def estimate_cardinality(
    flt: Filter, view: SegmentView, live: Mask | None, sample_size: int = 256
) -> tuple[int, int, int]:
    """(min, expected, max) live points of ``view`` passing ``flt`` (``live`` None = all offsets)."""
    ev = Evaluator(view)
    size = ev.size
    live_mask = np.ones(size, dtype=np.bool_)
    if live is not None:
        lv = np.asarray(live, dtype=np.bool_)[:size]
        live_mask[:] = False
        live_mask[: len(lv)] = lv
    n = int(np.count_nonzero(live_mask))
    if n == 0:
        return 0, 0, 0
    if flt.is_empty():
        return n, n, n
    exact = ev.exact_without_payloads(flt)
    if exact is not None:
        k = int(np.count_nonzero(exact & live_mask))
        return k, k, k
    if n <= sample_size:
        k = int(np.count_nonzero(ev.filter(flt, live_mask)))
        return k, k, k
    lo, hi = _bounds(flt, ev, live_mask, n)
    offsets = np.flatnonzero(live_mask)
    pick = offsets[np.linspace(0, len(offsets) - 1, sample_size).astype(np.int64)]
    sample = np.zeros(size, dtype=np.bool_)
    sample[pick] = True
    m = int(np.count_nonzero(sample)) or 1
    hits = int(np.count_nonzero(ev.filter(flt, sample)))
    expected = round(hits / m * n)
    return lo, min(max(expected, lo), hi), hi
