"""The shape of one payload field per point, kept by every payload index whatever its type:
present or not, null, empty, and how many values it holds. It answers ``is_empty``, ``is_null``,
``values_count`` and the empty / null flags exactly, for every index type."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from qcluster.shards.filters.conditions import (
    Check,
    EmptyFlag,
    FieldCondition,
    IsEmpty,
    IsNull,
    NullFlag,
    ValueCheck,
    ValuesCount,
)

Mask = npt.NDArray[np.bool_]

# shape bits per point (see checks.py for the meaning of each check)
B_PRESENT = 1  # at least one raw value
B_EMPTY = 2  # every raw value is null or []           -> is_empty
B_NULL = 4  # some raw value is null                   -> is_null
B_EF_TRUE = 8  # some raw value is null or []          -> {"is_empty": true}
B_EF_FALSE = 16  # some raw value is not null nor []   -> {"is_empty": false}
B_NF_TRUE = 32  # some raw value is null or has a null -> {"is_null": true}
B_NF_FALSE = 64  # some raw value is not like that     -> {"is_null": false}

SCALAR_BITS = B_PRESENT | B_EF_FALSE | B_NF_FALSE  # one non-null, non-array value
SHAPE_CHECKS = (ValuesCount, EmptyFlag, NullFlag)
Condition = FieldCondition | IsEmpty | IsNull | Check


def shape_bits(raw: list[Any]) -> int:
    """The shape bits of a point whose field holds the raw values ``raw``."""
    if not raw:
        return 0
    bits = B_PRESENT
    empties = [v is None or (isinstance(v, list) and not v) for v in raw]
    nullish = [v is None or (isinstance(v, list) and any(x is None for x in v)) for v in raw]
    if all(empties):
        bits |= B_EMPTY
    if any(v is None for v in raw):
        bits |= B_NULL
    if any(empties):
        bits |= B_EF_TRUE
    if not all(empties):
        bits |= B_EF_FALSE
    if any(nullish):
        bits |= B_NF_TRUE
    if not all(nullish):
        bits |= B_NF_FALSE
    return bits


def value_check(condition: Condition) -> ValueCheck | None:
    """The check on the field's values ``condition`` makes; None when it is about the field's
    shape (answered by :class:`FieldShape`)."""
    if isinstance(condition, IsEmpty | IsNull):
        return None
    check = condition.check if isinstance(condition, FieldCondition) else condition
    return None if isinstance(check, SHAPE_CHECKS) else check


def holds_when_absent(condition: Condition) -> bool:
    """Whether a point without the field passes ``condition``."""
    if isinstance(condition, IsEmpty):
        return True
    if isinstance(condition, IsNull):
        return False
    check = condition.check if isinstance(condition, FieldCondition) else condition
    if isinstance(check, ValuesCount):
        return check.test(0)
    if isinstance(check, EmptyFlag):
        return check.flag
    if isinstance(check, NullFlag):
        return not check.flag
    return False


class FieldShape:
    """Shape bits and value counts per offset (several raw values: their counts, kept apart).
    Not locked: the payload index owning it holds its own lock around every call."""

    def __init__(self) -> None:
        self.bits = np.zeros(64, dtype=np.uint8)
        self.count = np.zeros(64, dtype=np.int32)  # values_count of the single raw value
        self.multi: dict[int, tuple[int, ...]] = {}  # counts when a point has several raw values

    @property
    def size(self) -> int:
        return len(self.bits)

    def set(self, offset: int, bits: int, counts: tuple[int, ...]) -> None:
        if offset >= len(self.bits):
            cap = max(offset + 1, 2 * len(self.bits))
            self.bits = np.concatenate([self.bits, np.zeros(cap - len(self.bits), dtype=np.uint8)])
            self.count = np.concatenate([self.count, np.zeros(cap - len(self.count), dtype=np.int32)])
        self.bits[offset] = bits
        if len(counts) == 1:
            self.count[offset] = min(counts[0], 2**31 - 1)
        elif counts:
            self.multi[offset] = counts

    def clear(self, offset: int) -> None:
        self.multi.pop(offset, None)
        if offset < len(self.bits):
            self.bits[offset] = 0
            self.count[offset] = 0

    def mask(self, condition: Condition, size: int) -> Mask:
        """bool[size] for a condition about the field's shape (``value_check`` gives None)."""
        if isinstance(condition, IsEmpty):
            return self._bit_mask(B_EMPTY, size, absent=True)
        if isinstance(condition, IsNull):
            return self._bit_mask(B_NULL, size, absent=False)
        check = condition.check if isinstance(condition, FieldCondition) else condition
        if isinstance(check, ValuesCount):
            return self._values_count_mask(check, size)
        if isinstance(check, EmptyFlag):
            return self._bit_mask(B_EF_TRUE if check.flag else B_EF_FALSE, size, absent=check.flag)
        if isinstance(check, NullFlag):
            return self._bit_mask(B_NF_TRUE if check.flag else B_NF_FALSE, size, absent=not check.flag)
        raise TypeError(f"not a condition on the field's shape: {condition!r}")

    def _bit_mask(self, bit: int, size: int, absent: bool) -> Mask:
        bits = self.bits[:size]
        out = np.full(size, absent, dtype=np.bool_)
        n = len(bits)
        present = (bits & B_PRESENT) != 0
        out[:n] = np.where(present, (bits & bit) != 0, absent)
        return out

    def _values_count_mask(self, check: ValuesCount, size: int) -> Mask:
        out = np.full(size, check.test(0), dtype=np.bool_)
        n = min(size, len(self.bits))
        counts = self.count[:n]
        ok = np.ones(n, dtype=np.bool_)
        if check.gt is not None:
            ok &= counts > check.gt
        if check.gte is not None:
            ok &= counts >= check.gte
        if check.lt is not None:
            ok &= counts < check.lt
        if check.lte is not None:
            ok &= counts <= check.lte
        present = (self.bits[:n] & B_PRESENT) != 0
        out[:n] = np.where(present, ok, out[:n])
        for off, counts_multi in self.multi.items():
            if off < size:
                out[off] = any(check.test(c) for c in counts_multi)
        return out

    # ------------------------------------------------------------------ columns (``files.py``)
    def export(self, arrays: dict[str, npt.NDArray[Any]], meta: dict[str, Any]) -> None:
        offs = np.flatnonzero(self.bits)
        arrays["shape_offs"] = offs.astype(np.int64)
        arrays["bits"] = self.bits[offs]
        arrays["count"] = self.count[offs]
        meta["multi"] = [[off, list(c)] for off, c in self.multi.items()]

    def restore(self, meta: dict[str, Any], arrays: dict[str, npt.NDArray[Any]]) -> None:
        offs = arrays["shape_offs"].astype(np.int64)
        cap = max(64, int(offs[-1]) + 1 if len(offs) else 0)
        self.bits = np.zeros(cap, dtype=np.uint8)
        self.count = np.zeros(cap, dtype=np.int32)
        self.bits[offs] = arrays["bits"]
        self.count[offs] = arrays["count"]
        self.multi = {int(off): tuple(int(c) for c in counts) for off, counts in meta["multi"]}
