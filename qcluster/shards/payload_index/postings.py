"""Posting lists (value -> offsets) and sorted value arrays, the two structures behind the
keyword / integer / bool / uuid / text indexes and the range / datetime / geo indexes.

Both stay cheap under writes: a posting list's numpy array is rebuilt only for the values that
changed, and a sorted array tracks the offsets changed since it was built ("dirty") and answers
them from the current values until there are enough of them to make a rebuild worth it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import numpy.typing as npt

Mask = npt.NDArray[np.bool_]
I64 = npt.NDArray[np.int64]
_EMPTY = np.empty(0, dtype=np.int64)


# What one value costs ``member`` (its binary searches and their bookkeeping), in postings a mask
# marks in the same time: measured ~2,000 on this machine's numpy.
MEMBER_PER_VALUE = 1500


def sorted_union(arrays: list[I64], size: int) -> I64:
    """The distinct offsets of ``arrays`` (each < ``size``), sorted: a mask when they cover much
    of ``size``, else a sort and a neighbour comparison (``np.unique`` hashes, several times
    slower on the few thousand offsets typical here)."""
    if not arrays:
        return _EMPTY
    if len(arrays) == 1:
        return arrays[0]
    total = sum(len(a) for a in arrays)
    if total * 16 > size:
        mask = np.zeros(size, dtype=np.bool_)
        for a in arrays:
            mask[a] = True
        return np.flatnonzero(mask)
    out = np.concatenate(arrays)
    out.sort()  # (in place: the concatenation is ours)
    if len(out) > 1:
        keep = np.empty(len(out), dtype=np.bool_)
        keep[0] = True
        np.not_equal(out[1:], out[:-1], out=keep[1:])
        if not keep.all():
            out = out[keep]
    return out


class Postings:
    def __init__(self) -> None:
        self.sets: dict[Any, set[int]] = {}
        self._arrays: dict[Any, I64] = {}

    def load(self, offsets: I64, values: list[Any]) -> None:
        """Fill from aligned (offset, value) pairs at once (an empty index's bulk restore)."""
        if not values:
            return
        vals = np.asarray(values)
        order = np.lexsort((offsets, vals))
        sv, so = vals[order], offsets[order]
        new_value = np.empty(len(sv), dtype=np.bool_)
        new_value[0] = True
        np.not_equal(sv[1:], sv[:-1], out=new_value[1:])
        repeat = ~new_value
        repeat[1:] &= so[1:] == so[:-1]  # one value listed twice by one point
        if repeat.any():
            sv, so, new_value = sv[~repeat], so[~repeat], new_value[~repeat]
        starts = np.flatnonzero(new_value)
        for v, group in zip(sv[starts].tolist(), np.split(so, starts[1:]), strict=True):
            self.sets[v] = set(group.tolist())
            self._arrays[v] = group

    def add(self, value: Any, offset: int) -> None:
        self.sets.setdefault(value, set()).add(offset)
        self._arrays.pop(value, None)

    def discard(self, value: Any, offset: int) -> None:
        bucket = self.sets.get(value)
        if bucket is None:
            return
        bucket.discard(offset)
        if not bucket:
            del self.sets[value]
        self._arrays.pop(value, None)

    def array(self, value: Any) -> I64:
        """Sorted offsets holding ``value``."""
        arr = self._arrays.get(value)
        if arr is None:
            bucket = self.sets.get(value)
            if not bucket:
                return _EMPTY
            arr = np.fromiter(bucket, dtype=np.int64, count=len(bucket))
            arr.sort()
            self._arrays[value] = arr
        return arr

    def count(self, values: Iterable[Any]) -> int:
        """Postings of ``values`` summed (a point holding two of them counts twice)."""
        sets = self.sets
        return sum(len(sets.get(v, ())) for v in values)

    def offsets(self, values: Iterable[Any], size: int, budget: int | None = None) -> I64 | None:
        """Sorted distinct offsets (< ``size``) holding any of ``values``; None when their
        postings add up to more than ``budget``."""
        values = tuple(values)
        if budget is not None and self.count(values) > budget:
            return None
        arrays = [
            a if a[-1] < size else a[: int(a.searchsorted(size))] for a in map(self.array, values) if a.size
        ]
        return sorted_union(arrays, size)

    def member(self, values: Iterable[Any], offsets: I64) -> Mask | None:
        """Which of ``offsets`` hold any of ``values`` (binary searches in the posting arrays:
        O(len(offsets) log posting) per value, no point-count mask). None when the values are so
        many that marking their postings in a mask costs less (the caller builds the mask)."""
        values = tuple(values)
        if len(values) > 4 and len(values) * (MEMBER_PER_VALUE + 5 * len(offsets)) > self.count(values):
            return None
        out = np.zeros(len(offsets), dtype=np.bool_)
        for v in values:
            arr = self.array(v)
            if arr.size:
                at = arr.searchsorted(offsets)
                np.minimum(at, arr.size - 1, out=at)
                out |= arr[at] == offsets
        return out

    def mask(self, values: Iterable[Any], size: int) -> Mask:
        out = np.zeros(size, dtype=np.bool_)
        for v in values:
            arr = self.array(v)
            if arr.size:
                out[arr[arr < size]] = True
        return out

    def blocks(self, min_size: int) -> dict[Any, I64]:
        """Value -> sorted offsets, for values with at least ``min_size`` offsets."""
        return {v: self.array(v) for v, bucket in self.sets.items() if len(bucket) >= min_size}

    def facet(self, mask: Mask | None) -> list[tuple[Any, int]]:
        counts: list[tuple[Any, int]] = []
        for value in self.sets:
            arr = self.array(value)
            if mask is None:
                n = int(arr.size)
            else:
                inside = arr[arr < len(mask)]
                n = int(np.count_nonzero(mask[inside]))
            if n:
                counts.append((value, n))
        counts.sort(key=lambda kv: (-kv[1], kv[0]))
        return counts


class SortedValues:
    """All (value, offset) pairs of an index sorted by value, for range selections.

    ``source`` is the index's own offset -> values map (read, never written here); ``touch``
    must be called for every offset whose values changed.
    """

    def __init__(
        self, source: dict[int, tuple[Any, ...]], dtype: type[np.generic], key: Callable[[Any], Any]
    ):
        self._source = source
        self._dtype = dtype
        self._key = key  # value -> the number stored in the array
        self._vals: npt.NDArray[Any] = np.empty(0, dtype=dtype)
        self._offs: I64 = _EMPTY
        self._dirty: set[int] = set()
        self._built = False
        self._single = True
        self._rank: I64 | None = None  # offset -> position in the sorted arrays (single-valued)

    def load(self, offsets: I64, values: list[Any]) -> None:
        """Sort every (offset, value) pair of the source at once (an empty index's bulk restore)."""
        key = self._key
        vals = np.fromiter((key(v) for v in values), dtype=self._dtype, count=len(values))
        order = np.argsort(vals, kind="stable")
        self._vals, self._offs = vals[order], offsets[order]
        self._single = len(values) == len(self._source)
        self._rank = None
        self._dirty.clear()
        self._built = True

    def touch(self, offset: int) -> None:
        if self._built:
            self._dirty.add(offset)

    def _rebuild(self) -> None:
        n = sum(len(v) for v in self._source.values())
        key = self._key
        vals = np.fromiter((key(x) for vs in self._source.values() for x in vs), dtype=self._dtype, count=n)
        offs = np.fromiter((o for o, vs in self._source.items() for _ in vs), dtype=np.int64, count=n)
        order = np.argsort(vals, kind="stable")
        self._vals, self._offs = vals[order], offs[order]
        self._single = n == len(self._source)  # one value per offset: slices hold distinct offsets
        self._rank = None
        self._dirty.clear()
        self._built = True

    def _fresh(self) -> None:
        if not self._built or len(self._dirty) > max(64, len(self._vals) // 16):
            self._rebuild()

    def prepare(self) -> None:
        """Sort now (and rank, when offsets hold one value each) rather than on first use."""
        self._fresh()
        if not self._dirty and self._single:
            self._ranks()

    def _ranks(self) -> I64:
        """Offset -> position in the sorted arrays (-1: no value), one slot longer than the
        largest offset (that last slot -1); single-valued indexes only."""
        rank = self._rank
        if rank is None:
            top = int(self._offs.max()) + 1 if len(self._offs) else 0
            rank = np.full(top + 1, -1, dtype=np.int64)
            rank[self._offs] = np.arange(len(self._offs), dtype=np.int64)
            self._rank = rank
        return rank

    def _bounds(self, gt: Any, gte: Any, lt: Any, lte: Any) -> tuple[int, int]:
        vals = self._vals  # (the array's own searchsorted: np.searchsorted adds a dispatch layer)
        lo, hi = 0, len(vals)
        if gte is not None:
            lo = max(lo, int(vals.searchsorted(gte, side="left")))
        if gt is not None:
            lo = max(lo, int(vals.searchsorted(gt, side="right")))
        if lt is not None:
            hi = min(hi, int(vals.searchsorted(lt, side="left")))
        if lte is not None:
            hi = min(hi, int(vals.searchsorted(lte, side="right")))
        return lo, hi

    def count(self, gt: Any = None, gte: Any = None, lt: Any = None, lte: Any = None) -> int:
        """(value, offset) pairs within the bounds, by binary search (offsets changed since the
        last rebuild may be miscounted: an estimate, exact when nothing changed)."""
        self._fresh()
        lo, hi = self._bounds(gt, gte, lt, lte)
        return max(0, hi - lo)

    def contains(
        self, offsets: I64, gt: Any = None, gte: Any = None, lt: Any = None, lte: Any = None
    ) -> Mask | None:
        """Which of ``offsets`` hold a value within the bounds, looked up per offset (no
        point-count mask); None when offsets hold several values or changed since the build."""
        self._fresh()
        if self._dirty or not self._single:
            return None
        if not len(self._vals):
            return np.zeros(len(offsets), dtype=np.bool_)
        rank = self._ranks()  # (its last slot is -1: ``clip`` sends larger offsets there)
        pos = rank.take(offsets, mode="clip")
        vals = self._vals.take(pos)  # (-1 reads the last value: masked by ``pos >= 0`` below)
        ok = pos >= 0
        if gt is not None:
            ok &= vals > gt
        if gte is not None:
            ok &= vals >= gte
        if lt is not None:
            ok &= vals < lt
        if lte is not None:
            ok &= vals <= lte
        return ok

    def select_offsets(
        self,
        size: int,
        gt: Any = None,
        gte: Any = None,
        lt: Any = None,
        lte: Any = None,
        budget: int | None = None,
    ) -> I64 | None:
        """Sorted distinct offsets (< ``size``) within the bounds; None while changed offsets wait
        for a rebuild (the caller then uses ``select``) or when more than ``budget`` pairs fall
        within the bounds."""
        self._fresh()
        if self._dirty:
            return None
        lo, hi = self._bounds(gt, gte, lt, lte)
        if hi <= lo:
            return _EMPTY
        if budget is not None and hi - lo > budget:
            return None
        if (hi - lo) * 32 > size:  # a wide range: marking a mask beats sorting the offsets
            out = np.zeros(size, dtype=np.bool_)
            offs = self._offs[lo:hi]
            out[offs[offs < size]] = True
            return np.flatnonzero(out)
        # sorted; a point with two values in range once
        offs = np.sort(self._offs[lo:hi])
        if not self._single:
            offs = sorted_union([offs, _EMPTY], size)
        return offs if offs[-1] < size else offs[: int(offs.searchsorted(size))]

    def select(
        self,
        size: int,
        gt: Any = None,
        gte: Any = None,
        lt: Any = None,
        lte: Any = None,
    ) -> Mask:
        """Offsets having a value within the bounds (None = unbounded)."""
        self._fresh()
        lo, hi = self._bounds(gt, gte, lt, lte)
        out = np.zeros(size, dtype=np.bool_)
        if hi > lo:
            offs = self._offs[lo:hi]
            out[offs[offs < size]] = True
        if self._dirty:
            key = self._key

            def ok(v: Any) -> bool:
                x = key(v)
                return (
                    (gt is None or x > gt)
                    and (gte is None or x >= gte)
                    and (lt is None or x < lt)
                    and (lte is None or x <= lte)
                )

            for off in self._dirty:
                if off < size:
                    out[off] = any(ok(v) for v in self._source.get(off, ()))
        return out
