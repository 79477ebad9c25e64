"""Integer, float and datetime indexes: sorted values for ranges (searchsorted), plus value ->
posting lists for integer lookups.

Own values: integer = 64-bit integers (not bools, not floats: ``1.5`` or ``2.0`` in an integer
field are "other" values, so ranges stay exact); float = every finite number, as a double;
datetime = strings that parse as datetimes, as UTC microseconds. ``order_values`` gives these
(datetimes as microseconds since the epoch, which is what Qdrant returns as ``order_value``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from qcluster.shards.filters.checks import value_passes
from qcluster.shards.filters.conditions import (
    GeoBox,
    GeoPolygon,
    GeoRadius,
    MatchAny,
    MatchText,
    MatchValue,
    Range,
    ValueCheck,
)
from qcluster.shards.filters.datetimes import datetime_micros
from qcluster.shards.filters.numbers import is_int
from qcluster.shards.payload_index.base import I64, SKIP, FieldIndex, Mask
from qcluster.shards.payload_index.inverted import own_type_can_pass
from qcluster.shards.payload_index.postings import Postings, SortedValues
from qcluster.shards.payload_index.schema import FieldSchema

I64_MIN, I64_MAX = -(2**63), 2**63 - 1


class _RangeIndex(FieldIndex):
    def __init__(self, key: str, schema: FieldSchema, dtype: type[np.generic]):
        super().__init__(key, schema)
        self.sorted = SortedValues(self._own, dtype, float if dtype is np.float64 else int)

    def _insert(self, offset: int, own: tuple[Any, ...]) -> None:
        self.sorted.touch(offset)

    def _delete(self, offset: int, own: tuple[Any, ...]) -> None:
        self.sorted.touch(offset)

    def _restore(self, offsets: I64, values: list[Any]) -> None:
        self.sorted.load(offsets, values)

    def prepare(self) -> None:
        with self._lock:
            self.sorted.prepare()

    def _range_mask(self, check: Range, size: int) -> Mask:
        return self.sorted.select(size, gt=check.gt, gte=check.gte, lt=check.lt, lte=check.lte)

    def _range_ok(self, check: ValueCheck) -> bool:
        """A range this index answers from its sorted values (its own kind: datetime or not)."""
        return isinstance(check, Range) and check.datetime == (self.kind == "datetime")

    def _own_member(self, check: ValueCheck, offsets: I64) -> Mask | None:
        if self._range_ok(check) and self.schema.flag("range", True):
            assert isinstance(check, Range)
            return self.sorted.contains(offsets, gt=check.gt, gte=check.gte, lt=check.lt, lte=check.lte)
        return None

    def _own_estimate(self, check: ValueCheck) -> int | None:
        if self._range_ok(check) and self.schema.flag("range", True):
            assert isinstance(check, Range)
            return self.sorted.count(gt=check.gt, gte=check.gte, lt=check.lt, lte=check.lte)
        return None

    def _own_offsets(self, check: ValueCheck, size: int, budget: int | None) -> I64 | None:
        if self._range_ok(check) and self.schema.flag("range", True):
            assert isinstance(check, Range)
            return self.sorted.select_offsets(
                size, gt=check.gt, gte=check.gte, lt=check.lt, lte=check.lte, budget=budget
            )
        return None

    def _order_values(self, offset: int) -> list[float]:
        return list(self._own.get(offset, ()))


class IntegerIndex(_RangeIndex):
    kind = "integer"

    def __init__(self, key: str, schema: FieldSchema):
        super().__init__(key, schema, np.float64)
        self.lookup = schema.flag("lookup", True)
        self.range = schema.flag("range", True)
        self.postings = Postings()

    def _convert(self, value: Any) -> Any:
        return value if is_int(value) and I64_MIN <= value <= I64_MAX else SKIP

    def _insert(self, offset: int, own: tuple[Any, ...]) -> None:
        super()._insert(offset, own)
        if self.lookup:
            for v in set(own):
                self.postings.add(v, offset)

    def _delete(self, offset: int, own: tuple[Any, ...]) -> None:
        super()._delete(offset, own)
        if self.lookup:
            for v in set(own):
                self.postings.discard(v, offset)

    def _restore(self, offsets: I64, values: list[Any]) -> None:
        super()._restore(offsets, values)
        if self.lookup:
            self.postings.load(offsets, values)

    def _own_mask(self, check: ValueCheck, size: int) -> Mask | None:
        if isinstance(check, Range) and not check.datetime:
            return self._range_mask(check, size) if self.range else None
        if not own_type_can_pass(check, "int"):
            return np.zeros(size, dtype=np.bool_)
        if not self.lookup:
            return None
        if isinstance(check, MatchValue):
            return self.postings.mask((check.value,), size)
        if isinstance(check, MatchAny):
            return self.postings.mask(check.any, size)
        return self.postings.mask([v for v in self.postings.sets if value_passes(check, v)], size)

    def _own_estimate(self, check: ValueCheck) -> int | None:
        if isinstance(check, MatchValue | MatchAny) and self.lookup:
            if not own_type_can_pass(check, "int"):
                return 0
            return self.postings.count((check.value,) if isinstance(check, MatchValue) else check.any)
        return super()._own_estimate(check)

    def _own_member(self, check: ValueCheck, offsets: I64) -> Mask | None:
        if isinstance(check, MatchValue | MatchAny) and self.lookup:
            if not own_type_can_pass(check, "int"):
                return np.zeros(len(offsets), dtype=np.bool_)
            return self.postings.member(
                (check.value,) if isinstance(check, MatchValue) else check.any, offsets
            )
        return super()._own_member(check, offsets)

    def _own_offsets(self, check: ValueCheck, size: int, budget: int | None) -> I64 | None:
        if isinstance(check, MatchValue | MatchAny) and self.lookup:
            if not own_type_can_pass(check, "int"):
                return np.empty(0, dtype=np.int64)
            values = (check.value,) if isinstance(check, MatchValue) else check.any
            return self.postings.offsets(values, size, budget)
        return super()._own_offsets(check, size, budget)

    def value_blocks(self, min_size: int) -> dict[Any, I64] | None:
        if not self.lookup:
            return None
        with self._lock:
            return self.postings.blocks(min_size)

    def _facet(self, mask: Mask | None) -> list[tuple[Any, int]]:
        if not self.lookup:
            return super()._facet(mask)
        return self.postings.facet(mask)


class FloatIndex(_RangeIndex):
    kind = "float"

    def __init__(self, key: str, schema: FieldSchema):
        super().__init__(key, schema, np.float64)

    def _convert(self, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return SKIP
        try:
            f = float(value)
        except OverflowError:
            return SKIP
        return f if math.isfinite(f) else SKIP

    def _own_mask(self, check: ValueCheck, size: int) -> Mask | None:
        if isinstance(check, Range):
            if check.datetime:
                return np.zeros(size, dtype=np.bool_)
            return self._range_mask(check, size)
        if isinstance(check, GeoRadius | GeoBox | GeoPolygon | MatchText):
            return np.zeros(size, dtype=np.bool_)
        return None  # match value / any / except need to tell 5 from 5.0: scan


class DatetimeIndex(_RangeIndex):
    kind = "datetime"

    def __init__(self, key: str, schema: FieldSchema):
        super().__init__(key, schema, np.int64)

    def _convert(self, value: Any) -> Any:
        micros = datetime_micros(value)
        return SKIP if micros is None else micros

    def _own_mask(self, check: ValueCheck, size: int) -> Mask | None:
        if isinstance(check, Range):
            if not check.datetime:
                return np.zeros(size, dtype=np.bool_)
            return self._range_mask(check, size)
        if isinstance(check, GeoRadius | GeoBox | GeoPolygon):
            return np.zeros(size, dtype=np.bool_)
        return None  # string matches on the original text: scan
