"""Keyword, uuid and bool indexes: value -> posting list.

Own values: keyword = strings; uuid = strings in canonical UUID form (lowercase, hyphenated; other
spellings stay "other" values, since filters compare strings exactly); bool = booleans.

They answer every match kind exactly: ``value`` / ``any`` by posting lookups; ``except``,
``prefix`` and (no-text-index) ``text`` by testing each distinct value once; conditions no own
value can pass (a numeric range on strings, geo on booleans) from the other values alone.
"""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np

from qcluster.shards.filters.checks import value_passes
from qcluster.shards.filters.conditions import (
    GeoBox,
    GeoPolygon,
    GeoRadius,
    MatchAny,
    MatchExcept,
    MatchPrefix,
    MatchText,
    MatchValue,
    Range,
    ValueCheck,
)
from qcluster.shards.filters.numbers import is_int
from qcluster.shards.payload_index.base import I64, SKIP, FieldIndex, Mask
from qcluster.shards.payload_index.postings import Postings
from qcluster.shards.payload_index.schema import FieldSchema


def own_type_can_pass(check: ValueCheck, own: str) -> bool:
    """Can a value of JSON type ``own`` ("str", "int", "bool") pass ``check`` at all?"""
    if isinstance(check, MatchValue):
        v = check.value
        return (
            (own == "bool" and isinstance(v, bool))
            or (own == "int" and is_int(v))
            or (own == "str" and isinstance(v, str))
        )
    if isinstance(check, MatchAny):
        if not check.any:
            return False
        return (own == "str" and isinstance(check.any[0], str)) or (own == "int" and is_int(check.any[0]))
    if isinstance(check, MatchExcept):
        return True
    if isinstance(check, MatchText | MatchPrefix):
        return own == "str"
    if isinstance(check, Range):
        return own == "str" if check.datetime else own == "int"
    assert isinstance(check, GeoRadius | GeoBox | GeoPolygon)
    return False


class InvertedIndex(FieldIndex):
    own_type = "str"

    def __init__(self, key: str, schema: FieldSchema):
        super().__init__(key, schema)
        self.postings = Postings()

    def _insert(self, offset: int, own: tuple[Any, ...]) -> None:
        for v in set(own):
            self.postings.add(v, offset)

    def _delete(self, offset: int, own: tuple[Any, ...]) -> None:
        for v in set(own):
            self.postings.discard(v, offset)

    def _restore(self, offsets: I64, values: list[Any]) -> None:
        self.postings.load(offsets, values)

    def _match_mask(self, check: ValueCheck, size: int) -> Mask:
        if not own_type_can_pass(check, self.own_type):
            return np.zeros(size, dtype=np.bool_)
        if isinstance(check, MatchValue):
            return self.postings.mask((check.value,), size)
        if isinstance(check, MatchAny):
            return self.postings.mask(check.any, size)
        passing = [v for v in self.postings.sets if value_passes(check, v)]
        return self.postings.mask(passing, size)

    def _own_mask(self, check: ValueCheck, size: int) -> Mask | None:
        return self._match_mask(check, size)

    def _own_estimate(self, check: ValueCheck) -> int | None:
        if not own_type_can_pass(check, self.own_type):
            return 0
        if isinstance(check, MatchValue):
            return self.postings.count((check.value,))
        if isinstance(check, MatchAny):
            return self.postings.count(check.any)
        return None

    def _own_member(self, check: ValueCheck, offsets: I64) -> Mask | None:
        if not own_type_can_pass(check, self.own_type):
            return np.zeros(len(offsets), dtype=np.bool_)
        if isinstance(check, MatchValue):
            return self.postings.member((check.value,), offsets)
        if isinstance(check, MatchAny):
            return self.postings.member(check.any, offsets)
        return None

    def _own_offsets(self, check: ValueCheck, size: int, budget: int | None) -> I64 | None:
        if not own_type_can_pass(check, self.own_type):
            return np.empty(0, dtype=np.int64)
        if isinstance(check, MatchValue):
            return self.postings.offsets((check.value,), size, budget)
        if isinstance(check, MatchAny):
            return self.postings.offsets(check.any, size, budget)
        return None

    def _facet(self, mask: Mask | None) -> list[tuple[Any, int]]:
        return self.postings.facet(mask)

    def value_blocks(self, min_size: int) -> dict[Any, I64] | None:
        with self._lock:
            return self.postings.blocks(min_size)


class KeywordIndex(InvertedIndex):
    kind = "keyword"

    def _convert(self, value: Any) -> Any:
        return value if isinstance(value, str) else SKIP


class UuidIndex(InvertedIndex):
    kind = "uuid"

    def _convert(self, value: Any) -> Any:
        if not isinstance(value, str) or len(value) != 36:
            return SKIP
        try:
            canonical = str(uuid.UUID(value))
        except ValueError:
            return SKIP
        return value if canonical == value else SKIP


class BoolIndex(InvertedIndex):
    kind = "bool"
    own_type = "bool"

    def _convert(self, value: Any) -> Any:
        return value if isinstance(value, bool) else SKIP
