"""Vectorised filter evaluation over one segment: a bool mask over its offsets.

Leaves are answered, cheapest first:

- ``has_id``: one ``offset_of`` per id; ``has_vector``: the segment's vector mask;
- a field condition / ``is_empty`` / ``is_null`` whose key has a payload index that answers it:
  the index's numpy mask (exact, O(matching points));
- anything else: the reference check on the payloads of the offsets still possible only (``must``
  narrows the candidate set as it goes, so an unindexed condition after an indexed one only scans
  what the indexed one let through);
- ``nested``: the inner ``must`` conditions that have an index on the full key (``key[].inner``)
  narrow the candidates (a point can only pass if its values over all elements pass), then the
  candidates are checked per element by the reference evaluator.

Results equal the reference evaluator's (``matches`` given the view's text indexes) by
construction: indexes are exact (see ``payload_index/base.py``) and scans call the same checks.
Deleted offsets are not known here: callers AND the result with their live mask.

Scans check the request's deadline (``qcluster.deadline``) every ``SCAN_CHUNK`` payloads and
every condition, so an expensive filter stops when its request has run out of time.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt

from qcluster import deadline
from qcluster.shards.filters.checks import TextMatcher, check_raw, is_empty_raw, is_null_raw
from qcluster.shards.filters.conditions import (
    Condition,
    EmptyFlag,
    FieldCondition,
    Filter,
    HasId,
    HasVector,
    IsEmpty,
    IsNull,
    MatchText,
    Nested,
    NullFlag,
    Slice,
    ValuesCount,
)
from qcluster.shards.filters.paths import raw_values
from qcluster.shards.filters.reference import condition_holds
from qcluster.types import PointId

if TYPE_CHECKING:
    from qcluster.shards.payload_index import FieldIndex

Mask = npt.NDArray[np.bool_]
SCAN_CHUNK = 256  # a check costs ~0.1 us, a payload check 1 us or more


def _offsets(restrict: Mask) -> Iterator[int]:
    """The offsets set in ``restrict``, checking the deadline every ``SCAN_CHUNK`` of them."""
    offsets = np.flatnonzero(restrict)
    for start in range(0, len(offsets), SCAN_CHUNK):
        deadline.check()
        yield from offsets[start : start + SCAN_CHUNK].tolist()


class SegmentView(Protocol):
    """What the evaluator needs from a segment (offsets 0..size-1; some may be deleted)."""

    size: int

    def point_id(self, offset: int) -> PointId: ...

    def offset_of(self, point_id: PointId) -> int | None: ...

    def payload(self, offset: int) -> dict[str, Any] | None: ...

    def vector_mask(self, name: str) -> Mask: ...

    def field_index(self, key: str) -> FieldIndex | None: ...


def _no_vector(name: str) -> bool:
    del name
    return False


class Evaluator:
    """One evaluation pass over a view; caches index lookups and index-answered leaf masks."""

    def __init__(self, view: SegmentView):
        self.view = view
        self.size = int(view.size)
        self._indexes: dict[str, FieldIndex | None] = {}
        self._leaves: dict[int, Mask | None] = {}

    # ------------------------------------------------------------------ indexes
    def index(self, key: str) -> FieldIndex | None:
        if key not in self._indexes:
            self._indexes[key] = self.view.field_index(key)
        return self._indexes[key]

    def text_index(self, key: str) -> TextMatcher | None:
        idx = self.index(key)
        if idx is not None and idx.kind == "text":
            matcher: TextMatcher = idx  # type: ignore[assignment]
            return matcher
        return None

    def leaf_mask(self, c: Condition) -> Mask | None:
        """The exact mask of a leaf answered without payloads (ids, vectors, indexes), else None."""
        key = id(c)
        if key in self._leaves:
            return self._leaves[key]
        out: Mask | None = None
        if isinstance(c, HasId):
            out = np.zeros(self.size, dtype=np.bool_)
            for pid in c.ids:
                off = self.view.offset_of(pid)
                if off is not None and 0 <= off < self.size:
                    out[off] = True
        elif isinstance(c, HasVector):
            vm = np.asarray(self.view.vector_mask(c.name), dtype=np.bool_)[: self.size]
            out = np.zeros(self.size, dtype=np.bool_)
            out[: len(vm)] = vm
        elif isinstance(c, Slice):
            point_id = self.view.point_id
            out = np.fromiter(
                (c.holds(point_id(o)) for o in range(self.size)), dtype=np.bool_, count=self.size
            )
        elif isinstance(c, FieldCondition | IsEmpty | IsNull):
            idx = self.index(c.key)
            if idx is not None:
                out = idx.mask(c, self.size)
        self._leaves[key] = out
        return out

    def cost(self, c: Condition) -> int:
        if isinstance(c, HasId):
            return 0
        if isinstance(c, HasVector | Slice):
            return 1
        if isinstance(c, Filter):
            return 3
        if isinstance(c, Nested):
            return 4
        return 2 if self.leaf_mask(c) is not None else 5

    # ------------------------------------------------------------------ conditions
    def condition(self, c: Condition, restrict: Mask) -> Mask:
        """Mask of ``c``: exact on ``restrict``; entries outside it are unspecified."""
        if isinstance(c, Filter):
            return self.filter(c, restrict)
        leaf = self.leaf_mask(c)
        if leaf is not None:
            return leaf
        if isinstance(c, Nested):
            return self._nested(c, restrict)
        return self._scan(c, restrict)

    def _scan(self, c: Condition, restrict: Mask) -> Mask:
        out = np.zeros(self.size, dtype=np.bool_)
        payload = self.view.payload
        offsets = _offsets(restrict)
        if isinstance(c, FieldCondition):
            text = self.text_index(c.key) if isinstance(c.check, MatchText) else None
            path, check = c.path, c.check
            for o in offsets:
                if check_raw(check, raw_values(payload(o) or {}, path), text):
                    out[o] = True
        elif isinstance(c, IsEmpty | IsNull):
            test = is_empty_raw if isinstance(c, IsEmpty) else is_null_raw
            for o in offsets:
                if test(raw_values(payload(o) or {}, c.path)):
                    out[o] = True
        else:
            point_id = self.view.point_id
            for o in offsets:
                if condition_holds(c, payload(o) or {}, point_id(o), _no_vector, self.text_index):
                    out[o] = True
        return out

    def _nested(self, c: Nested, restrict: Mask) -> Mask:
        candidates = restrict.copy()
        prefix = c.array_key + "."
        for inner in c.filter.must:
            if not isinstance(inner, FieldCondition) or isinstance(
                inner.check, ValuesCount | EmptyFlag | NullFlag
            ):
                continue  # only "some value passes" checks are necessary at the point level
            idx = self.index(prefix + inner.key)
            if idx is None:
                continue
            m = idx.mask(inner.check, self.size)
            if m is not None:
                candidates &= m
        return self._scan(c, candidates)

    def filter(self, f: Filter, restrict: Mask) -> Mask:
        """Exact mask of ``f`` within ``restrict``, False outside it."""
        deadline.check()
        result = restrict.copy()
        for c in sorted(f.must, key=self.cost):
            if not result.any():
                return result
            result &= self.condition(c, result)
        for c in sorted(f.must_not, key=self.cost):
            if not result.any():
                return result
            result &= ~self.condition(c, result)
        if f.should:
            hit = np.zeros(self.size, dtype=np.bool_)
            for c in sorted(f.should, key=self.cost):
                todo = result & ~hit
                if not todo.any():
                    break
                hit |= self.condition(c, todo) & todo
            result &= hit
        if f.min_should is not None and result.any():
            counts = np.zeros(self.size, dtype=np.int32)
            for c in sorted(f.min_should.conditions, key=self.cost):
                counts += self.condition(c, result) & result
            result &= counts >= f.min_should.min_count
        return result

    def exact_without_payloads(self, c: Condition) -> Mask | None:
        """The full mask of ``c`` when every leaf is answered by ids / vectors / indexes."""
        if not isinstance(c, Filter):
            return None if isinstance(c, Nested) else self.leaf_mask(c)
        out = np.ones(self.size, dtype=np.bool_)
        for m in c.must:
            mm = self.exact_without_payloads(m)
            if mm is None:
                return None
            out &= mm
        for m in c.must_not:
            mm = self.exact_without_payloads(m)
            if mm is None:
                return None
            out &= ~mm
        if c.should:
            hit = np.zeros(self.size, dtype=np.bool_)
            for m in c.should:
                mm = self.exact_without_payloads(m)
                if mm is None:
                    return None
                hit |= mm
            out &= hit
        if c.min_should is not None:
            counts = np.zeros(self.size, dtype=np.int32)
            for m in c.min_should.conditions:
                mm = self.exact_without_payloads(m)
                if mm is None:
                    return None
                counts += mm
            out &= counts >= c.min_should.min_count
        return out


def evaluate(flt: Filter, view: SegmentView, restrict: Mask | None = None) -> Mask:
    """bool[view.size]: offsets whose point passes ``flt`` (within ``restrict`` when given).

    Deleted offsets are the caller's business (AND with the live mask, or pass it as
    ``restrict`` so that unindexed conditions do not scan deleted points).
    """
    ev = Evaluator(view)
    if restrict is None:
        base = np.ones(ev.size, dtype=np.bool_)
    else:
        base = np.zeros(ev.size, dtype=np.bool_)
        r = np.asarray(restrict, dtype=np.bool_)[: ev.size]
        base[: len(r)] = r
    return ev.filter(flt, base)
