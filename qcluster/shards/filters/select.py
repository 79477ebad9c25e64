"""What the search planner asks of a filter on one segment, answered from payload indexes without
touching payloads or building point-count masks where it can:

- ``estimate``: (low, expected, high) points passing, from posting-list sizes and sorted-value
  searches (O(values), not O(points)); None when some leaf has no index that can count it (the
  planner then evaluates the filter exactly);
- ``offsets``: the sorted offsets passing, for filters whose leaves indexes answer, built by
  intersecting / merging sorted arrays (a selective filter over a large segment costs O(matches));
  None otherwise;
- ``member``: which of some given offsets pass, by index lookups per offset (a plan that walks
  the graph and keeps the allowed candidates checks a few hundred points, not a point mask).

Both work on the leaves the evaluator would answer from indexes (``evaluate.py``), so ``offsets``
equals ``np.flatnonzero(evaluate(...))`` by construction (tested). Deleted offsets never reach an
index (a delete removes them), but callers still AND with their live / has-vector mask.
Expected values combine leaves as if independent: ``must`` multiplies shares, ``should`` adds
them as a union; low and high are hard bounds.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from qcluster.shards.filters.conditions import Condition, FieldCondition, Filter, HasId, IsEmpty, IsNull
from qcluster.shards.filters.evaluate import SegmentView
from qcluster.shards.payload_index.postings import sorted_union

I64 = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]
Estimate = tuple[int, int, int]
_EMPTY = np.empty(0, dtype=np.int64)


def estimate(flt: Condition, view: SegmentView, n: int) -> Estimate | None:
    """(low, expected, high) of the ``n`` live points of ``view`` passing ``flt``; None when a
    leaf cannot be counted from an index."""
    if isinstance(flt, Filter):
        return _estimate_filter(flt, view, n)
    if isinstance(flt, HasId):
        k = min(n, len(flt.ids))
        return 0, k, k
    if isinstance(flt, FieldCondition | IsEmpty | IsNull):
        idx = view.field_index(flt.key)
        if idx is None:
            return None
        counted = idx.estimate(flt)
        if counted is None:
            return None
        k = min(n, counted)
        return k, k, k
    return None


def _estimate_filter(flt: Filter, view: SegmentView, n: int) -> Estimate | None:
    if n == 0:
        return 0, 0, 0
    parts: list[Estimate] = []
    for c in flt.must:
        e = estimate(c, view, n)
        if e is None:
            return None
        parts.append(e)
    for c in flt.must_not:
        e = estimate(c, view, n)
        if e is None:
            return None
        parts.append((n - e[2], n - e[1], n - e[0]))
    if flt.should:
        sub = []
        for c in flt.should:
            e = estimate(c, view, n)
            if e is None:
                return None
            sub.append(e)
        miss = 1.0
        for e in sub:
            miss *= 1.0 - e[1] / n
        parts.append((max(e[0] for e in sub), round(n * (1.0 - miss)), min(n, sum(e[2] for e in sub))))
    if flt.min_should is not None:
        return None
    if not parts:
        return n, n, n
    lo = max(0, sum(p[0] for p in parts) - (len(parts) - 1) * n)
    hi = min(p[2] for p in parts)
    share = 1.0
    for p in parts:
        share *= p[1] / n
    exp = min(max(round(n * share), lo), hi)
    return min(lo, hi), exp, hi


def offsets(flt: Condition, view: SegmentView, size: int, budget: int | None = None) -> I64 | None:
    """Sorted offsets (< ``size``) passing ``flt``; None when a leaf needs a payload scan, or
    (with a ``budget``) when the candidates to gather number more than ``budget``.

    ``must`` starts from its smallest part (by estimate) and keeps the offsets the other parts'
    masks accept; ``should`` merges its parts' offsets; ``must_not`` drops what its masks accept.
    Point-count masks are only built for parts that cannot be smaller than the result."""
    if isinstance(flt, Filter):
        return _filter_offsets(flt, view, size, budget)
    if isinstance(flt, HasId):
        if budget is not None and len(flt.ids) > budget:
            return None
        offs = [view.offset_of(pid) for pid in flt.ids]
        arr = np.fromiter((o for o in offs if o is not None and 0 <= o < size), dtype=np.int64)
        arr.sort()
        return arr
    if isinstance(flt, FieldCondition | IsEmpty | IsNull):
        idx = view.field_index(flt.key)
        return None if idx is None else idx.offsets(flt, size, budget)
    return None


def member(flt: Condition, view: SegmentView, offsets: I64) -> Mask | None:
    """Which of ``offsets`` pass ``flt``, by per-offset index lookups, O(len(offsets)) whatever
    the filter's size: the check a plan that only meets a few candidates needs (None when some
    leaf can only be told by a mask or the payloads)."""
    if isinstance(flt, Filter):
        if flt.min_should is not None:
            return None
        keep = np.ones(len(offsets), dtype=np.bool_)
        for c in flt.must:
            part = member(c, view, offsets)
            if part is None:
                return None
            keep &= part
        if flt.should:
            any_ = np.zeros(len(offsets), dtype=np.bool_)
            for c in flt.should:
                part = member(c, view, offsets)
                if part is None:
                    return None
                any_ |= part
            keep &= any_
        for c in flt.must_not:
            part = member(c, view, offsets)
            if part is None:
                return None
            keep &= ~part
        return keep
    if isinstance(flt, HasId):
        listed = [view.offset_of(pid) for pid in flt.ids]
        return np.isin(offsets, np.fromiter((o for o in listed if o is not None), dtype=np.int64))
    return _member(flt, view, offsets)


def _member(c: Condition, view: SegmentView, offsets: I64) -> Mask | None:
    """Which of ``offsets`` pass leaf ``c``, by per-offset index lookups (None: use a mask)."""
    if isinstance(c, FieldCondition):
        idx = view.field_index(c.key)
        return None if idx is None else idx.member(c, offsets)
    return None


def _mask(c: Condition, view: SegmentView, size: int) -> Mask | None:
    """The exact mask of ``c`` from indexes only (None when a leaf needs payloads)."""
    if isinstance(c, FieldCondition | IsEmpty | IsNull):
        idx = view.field_index(c.key)
        return None if idx is None else idx.mask(c, size)
    part = offsets(c, view, size)
    if part is None:
        return None
    out = np.zeros(size, dtype=np.bool_)
    out[part] = True
    return out


def _filter_offsets(flt: Filter, view: SegmentView, size: int, budget: int | None) -> I64 | None:
    if flt.min_should is not None:
        return None
    if not flt.must and not flt.should:
        return None  # only must_not: the complement is the whole segment, no cheaper than a mask
    result: I64 | None = None
    if flt.must:
        first, rest = flt.must[0], list(flt.must[1:])
        if rest:  # start from the smallest part
            ranked = sorted(flt.must, key=lambda c: _size_hint(c, view, size))
            first, rest = ranked[0], ranked[1:]
        result = offsets(first, view, size, budget)
        if result is None:
            return None
        for c in rest:
            if len(result) == 0:
                return result
            keep = _member(c, view, result)
            if keep is None:
                m = _mask(c, view, size)
                if m is None:
                    return None
                keep = m[result]
            result = result[keep]
    if flt.should:
        if result is not None and len(result) == 0:
            return result
        parts = []
        for c in flt.should:
            part = offsets(c, view, size, budget if result is None else None)
            if part is None:
                return None
            parts.append(part)
        union = sorted_union(parts, size)
        if result is None and budget is not None and len(union) > budget:
            return None
        result = union if result is None else np.intersect1d(result, union, assume_unique=True)
    assert result is not None
    for c in flt.must_not:
        if len(result) == 0:
            break
        keep = _member(c, view, result)
        if keep is None:
            m = _mask(c, view, size)
            if m is None:
                return None
            keep = m[result]
        result = result[~keep]
    return result


def _size_hint(c: Condition, view: SegmentView, size: int) -> int:
    e = estimate(c, view, size)
    return size + 1 if e is None else e[1]
