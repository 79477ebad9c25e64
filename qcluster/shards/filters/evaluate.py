"""Vectorised filter evaluation over a segment: a bool mask over its offsets.

Conditions that a payload index answers exactly cost O(matches) with numpy; the rest scan the
payloads, but only of offsets still possible (``must`` narrows as it goes, indexed conditions
first). Results equal the reference evaluator's by construction: scans call the same checks.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from qcluster.shards.filters.checks import Tokenizer
from qcluster.shards.filters.conditions import (
    Condition,
    FieldCondition,
    Filter,
    HasId,
    HasVector,
    MatchText,
)
from qcluster.shards.filters.reference import condition_matches
from qcluster.types import PointId

Mask = npt.NDArray[np.bool_]


class SegmentView(Protocol):
    size: int

    def point_id(self, offset: int) -> PointId: ...

    def offset_of(self, point_id: PointId) -> int | None: ...

    def payload(self, offset: int) -> dict[str, Any] | None: ...

    def vector_mask(self, name: str) -> Mask: ...

    def field_index(self, key: str) -> Any: ...


def _tokenizer_for(view: SegmentView) -> Any:
    def get(key: str) -> Tokenizer | None:
        idx = view.field_index(key)
        if idx is not None and getattr(idx, "kind", None) == "text":
            tok: Tokenizer = idx.tokenizer()
            return tok
        return None

    return get


def _indexed(c: Condition, view: SegmentView) -> bool:
    return isinstance(c, HasId | HasVector) or (
        isinstance(c, FieldCondition) and view.field_index(c.key) is not None
    )


def _cond(c: Condition, view: SegmentView, restrict: Mask) -> Mask:
    """Mask of ``c``; entries outside ``restrict`` may be anything (callers AND with it)."""
    size = view.size
    if isinstance(c, Filter):
        return _filter(c, view, restrict)
    if isinstance(c, HasId):
        mask = np.zeros(size, dtype=np.bool_)
        for pid in c.ids:
            off = view.offset_of(pid)
            if off is not None and off < size:
                mask[off] = True
        return mask
    if isinstance(c, HasVector):
        return np.asarray(view.vector_mask(c.name)[:size], dtype=np.bool_)
    if isinstance(c, FieldCondition):
        idx = view.field_index(c.key)
        if idx is not None and (not isinstance(c.check, MatchText) or idx.kind == "text"):
            answer = idx.mask(c.check, size)
            if answer is not None:
                return np.asarray(answer, dtype=np.bool_)
    tok = _tokenizer_for(view)
    out = np.zeros(size, dtype=np.bool_)
    for raw_off in np.flatnonzero(restrict):
        o = int(raw_off)

        def has_vector(name: str, o: int = o) -> bool:
            return bool(view.vector_mask(name)[o])

        if condition_matches(c, view.point_id(o), view.payload(o), has_vector, tok):
            out[o] = True
    return out


def _filter(f: Filter, view: SegmentView, restrict: Mask) -> Mask:
    result = restrict.copy()
    for c in sorted(f.must, key=lambda c: not _indexed(c, view)):
        if not result.any():
            return result
        result &= _cond(c, view, result)
    for c in f.must_not:
        if not result.any():
            return result
        result &= ~_cond(c, view, result)
    if f.should:
        hit = np.zeros(view.size, dtype=np.bool_)
        for c in sorted(f.should, key=lambda c: not _indexed(c, view)):
            todo = result & ~hit
            if not todo.any():
                break
            hit |= _cond(c, view, todo) & todo
        result &= hit
    if f.min_should is not None:
        counts = np.zeros(view.size, dtype=np.int32)
        for c in f.min_should.conditions:
            counts += (_cond(c, view, result) & result).astype(np.int32)
        result &= counts >= f.min_should.min_count
    return result


def evaluate(flt: Filter, view: SegmentView, restrict: Mask | None = None) -> Mask:
    """bool[view.size]: offsets whose point matches ``flt`` (deleted offsets are the caller's)."""
    base = np.ones(view.size, dtype=np.bool_) if restrict is None else restrict[: view.size].copy()
    return _filter(flt, view, base)
