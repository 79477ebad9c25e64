"""The plain per-point evaluator: the definition of what a filter means (``checks.py``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from qcluster.shards.filters.checks import Tokenizer, check_values
from qcluster.shards.filters.conditions import (
    Condition,
    FieldCondition,
    Filter,
    HasId,
    HasVector,
    IsEmpty,
    IsNull,
    MatchText,
    Nested,
)
from qcluster.shards.filters.paths import raw_values, values
from qcluster.types import PointId


def matches(
    flt: Filter,
    point_id: PointId | None,
    payload: dict[str, Any] | None,
    has_vector: Callable[[str], bool],
    tokenizer_for: Callable[[str], Tokenizer | None] | None = None,
) -> bool:
    return condition_matches(flt, point_id, payload, has_vector, tokenizer_for)


def condition_matches(
    top: Condition,
    point_id: PointId | None,
    payload: dict[str, Any] | None,
    has_vector: Callable[[str], bool],
    tokenizer_for: Callable[[str], Tokenizer | None] | None = None,
) -> bool:
    def cond(c: Condition, root: Any) -> bool:
        if isinstance(c, Filter):
            return filt(c, root)
        if isinstance(c, FieldCondition):
            tok = tokenizer_for(c.key) if (tokenizer_for and isinstance(c.check, MatchText)) else None
            return check_values(c.check, values(root, c.key), tok)
        if isinstance(c, IsEmpty):
            return not any(v is not None for v in values(root, c.key))
        if isinstance(c, IsNull):
            return any(v is None for v in raw_values(root, c.key))
        if isinstance(c, HasId):
            return point_id in c.ids
        if isinstance(c, HasVector):
            return has_vector(c.name)
        assert isinstance(c, Nested)
        return any(isinstance(el, dict) and filt(c.filter, el) for el in values(root, c.key))

    def filt(f: Filter, root: Any) -> bool:
        if not all(cond(c, root) for c in f.must):
            return False
        if any(cond(c, root) for c in f.must_not):
            return False
        if f.should and not any(cond(c, root) for c in f.should):
            return False
        if f.min_should is not None:
            hits = sum(1 for c in f.min_should.conditions if cond(c, root))
            if hits < f.min_should.min_count:
                return False
        return True

    return cond(top, payload or {})
