"""The best ``k`` points of one query over an inverted index that covers every row of its segment
(a sealed segment): exact dot products, best score first, then lower offset.

Every posting of the query's terms is gathered and summed per offset (one ``bincount``, float64).
Then a *floor*: the k-th best score among the points of one posting list holding at least ``k``
allowed points (a list holds each point once) is reached by at least ``k`` allowed points, so every
point of the answer scores at least that much. When the floor is positive, the
answer is among the offsets scoring at least the floor (a point sharing no dimension scores 0, so
none of those slips in): one comparison over the scores, and the few offsets left are sorted by
score, then offset (ties at the cut all seen, broken by the lower offset).

Without a positive floor (no list holds ``k`` allowed points, or scores can be 0 or negative), the
answer is chosen among the gathered postings themselves: a point appears at most once per query
term, so the best ``k * terms`` postings hold at least ``k`` distinct points; every posting scoring
at least the worst of those is kept, sorted, and the first ``k`` distinct offsets taken.
"""

from __future__ import annotations

from typing import cast

import numpy as np
import numpy.typing as npt

from qcluster.shards.sparse.inverted import InvertedIndex
from qcluster.shards.sparse.vector import SparseVector

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]
Arr = npt.NDArray[np.generic]


LARGE = 256  # more candidates than this above the floor: cut them to the k best first
FLOOR_LIST = 512  # the floor is read from a posting list of up to this many postings if one fits


def top_k(
    index: InvertedIndex, query: SparseVector, k: int, allowed: Mask | None, threshold: float | None
) -> tuple[F64, I64]:
    """(scores, offsets) of the best ``k`` points sharing a dimension with ``query``, within
    ``allowed`` (when given) and scoring at least ``threshold`` (when given); fewer when fewer
    match. ``allowed`` covers the index's rows."""
    w, lo, hi, _ = index.lookup(query)
    if not lo or k <= 0:
        return np.zeros(0, np.float64), np.zeros(0, np.int64)
    docs, weighted = index.gather(lo, hi, w)
    scores = cast(F64, np.bincount(docs, weights=weighted, minlength=index.size))  # float64 with weights
    floor = _floor_from_a_list(scores, docs, allowed, lo, hi, k)
    if threshold is not None and (floor is None or threshold > floor):
        floor = threshold
    if floor is not None and floor > 0:
        above = scores >= floor
        if allowed is not None:
            above &= allowed
        cand = above.nonzero()[0]  # ascending
        cs = scores.take(cand)
        if len(cand) > LARGE:
            sel = cs >= _kth_largest(cs, k)
            cand, cs = cand[sel], cs[sel]
        order = (-cs).argsort(kind="stable")[:k]  # best score first, then lower offset
        return cs.take(order), cand.take(order)
    return _among_postings(docs.astype(np.int64, copy=False), scores, len(lo), k, allowed, threshold)


def _floor_from_a_list(
    scores: F64, docs: Arr, allowed: Mask | None, lo: list[int], hi: list[int], k: int
) -> float | None:
    """The k-th best score among the allowed points of one posting list holding at least ``k``
    of them, or None. ``docs`` holds the lists one after another. Without a mask: the longest
    list of at most ``FLOOR_LIST`` postings (a longer list holds better points, so the floor is
    higher and fewer offsets pass it), else the shortest; with one, the shortest."""
    if allowed is None:
        start = best = best_start = 0
        for a, b in zip(lo, hi, strict=True):
            n = b - a
            if n >= k and (best == 0 or best < n <= FLOOR_LIST or n < best > FLOOR_LIST):
                best, best_start = n, start
            start += n
        if best == 0:
            return None
        return _kth_largest(scores.take(cast(I64, docs[best_start : best_start + best])), k, scratch=True)
    lens = [b - a for a, b in zip(lo, hi, strict=True)]
    starts = [0] * len(lens)
    for i in range(1, len(lens)):
        starts[i] = starts[i - 1] + lens[i - 1]
    for t in sorted(range(len(lens)), key=lens.__getitem__):
        n = lens[t]
        if n < k:
            continue
        points = docs[starts[t] : starts[t] + n]
        points = points[allowed[points]]
        if len(points) < k:
            continue
        return _kth_largest(scores[points], k, scratch=True)
    return None


def _among_postings(
    docs: I64, scores: F64, terms: int, k: int, allowed: Mask | None, threshold: float | None
) -> tuple[F64, I64]:
    """The best ``k`` distinct offsets among ``docs`` (repeated at most ``terms`` times each),
    ``scores`` being every offset's score."""
    s = scores[docs]
    keep: Mask | None = None
    if allowed is not None:
        keep = allowed[docs]
    if threshold is not None:
        above = s >= threshold
        keep = above if keep is None else keep & above
    if keep is not None:
        docs, s = docs[keep], s[keep]
    m = k * terms  # holds >= k distinct offsets
    if len(s) > m:
        sel = s >= _kth_largest(s, m)  # every tie at the cut too
        docs, s = docs[sel], s[sel]
    order = np.lexsort((docs, -s))  # a point's postings share its score: they end up adjacent
    docs, s = docs[order], s[order]
    if len(docs) > 1:
        first = np.empty(len(docs), dtype=np.bool_)
        first[0] = True
        np.not_equal(docs[1:], docs[:-1], out=first[1:])
        if not first.all():
            docs, s = docs[first], s[first]
    return s[:k], docs[:k]


def _kth_largest(s: F64, k: int, scratch: bool = False) -> float:
    """The k-th largest of ``s`` (1 <= k <= len(s)); ``scratch``: ``s`` is a temporary, reordered
    in place."""
    at = len(s) - k
    if not scratch:
        s = s.copy()
    s.partition(at)
    return float(s[at])
