"""The plain per-point evaluator: the definition of what a filter means.

Clauses: ``must`` all hold, ``must_not`` none holds, ``should`` (when non-empty) at least one
holds, ``min_should`` at least ``min_count`` of its conditions hold; an empty filter matches every
point. Field checks are in ``checks.py``.

``nested {key, filter}`` holds when some object element of the array at ``key`` (a trailing ``[]``
is implied) passes ``filter`` on its own, inner keys being relative to the element; elements that
are not objects are skipped, and a ``key`` holding a single object (not an array) matches nothing,
as in Qdrant. Full-text checks inside a nested filter use the text index of the full key
(``key[].inner``) when there is one.

``text_index(full_key)`` returns the text index of a key, if any: a full-text index changes what
``text`` / ``phrase`` / ``text_any`` mean (tokens instead of substrings), exactly as in Qdrant, so
the reference takes it into account to agree with the vectorised evaluator.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from qcluster.shards.filters.checks import TextMatcher, check_raw, is_empty_raw, is_null_raw
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
    Slice,
)
from qcluster.shards.filters.paths import raw_values
from qcluster.types import PointId

TextLookup = Callable[[str], TextMatcher | None]


def _no_text(key: str) -> TextMatcher | None:
    del key
    return None


def matches(
    flt: Filter,
    point_id: PointId | None,
    payload: dict[str, Any] | None,
    has_vector: Callable[[str], bool],
    text_index: TextLookup | None = None,
) -> bool:
    """Does the point (id, payload, which vectors it has) pass ``flt``?"""
    return condition_holds(flt, payload or {}, point_id, has_vector, text_index or _no_text)


def condition_holds(
    c: Condition,
    root: Any,
    point_id: PointId | None,
    has_vector: Callable[[str], bool],
    text_index: TextLookup,
    prefix: str = "",
) -> bool:
    """One condition against ``root`` (a payload, or an array element inside ``nested``)."""
    if isinstance(c, FieldCondition):
        text = text_index(prefix + c.key) if isinstance(c.check, MatchText) else None
        return check_raw(c.check, raw_values(root, c.path), text)
    if isinstance(c, Filter):
        return filter_holds(c, root, point_id, has_vector, text_index, prefix)
    if isinstance(c, IsEmpty):
        return is_empty_raw(raw_values(root, c.path))
    if isinstance(c, IsNull):
        return is_null_raw(raw_values(root, c.path))
    if isinstance(c, HasId):
        return point_id is not None and point_id in c.ids
    if isinstance(c, HasVector):
        return has_vector(c.name)
    if isinstance(c, Slice):
        return point_id is not None and c.holds(point_id)
    assert isinstance(c, Nested)
    inner_prefix = prefix + c.array_key + "."
    return any(
        isinstance(el, dict) and filter_holds(c.filter, el, point_id, has_vector, text_index, inner_prefix)
        for el in raw_values(root, c.path)
    )


def filter_holds(
    f: Filter,
    root: Any,
    point_id: PointId | None,
    has_vector: Callable[[str], bool],
    text_index: TextLookup,
    prefix: str = "",
) -> bool:
    def holds(c: Condition) -> bool:
        return condition_holds(c, root, point_id, has_vector, text_index, prefix)

    if not all(holds(c) for c in f.must):
        return False
    if any(holds(c) for c in f.must_not):
        return False
    if f.should and not any(holds(c) for c in f.should):
        return False
    if f.min_should is not None:
        hits = 0
        for c in f.min_should.conditions:
            if holds(c):
                hits += 1
                if hits >= f.min_should.min_count:
                    break
        if hits < f.min_should.min_count:
            return False
    return True
