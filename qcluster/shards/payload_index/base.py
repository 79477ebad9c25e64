"""What every payload index shares: value extraction, the shape of each point's field, the values
of other types, answering a condition exactly, and persistence.

An index over key ``k`` reads a payload the way filters do (``paths.raw_values`` then one level of
flattening) and splits the values it finds:

- *own* values, of the index's type, converted (keyword: strings, integer: 64-bit integers, ...),
  kept in the subclass's structures (posting lists, sorted arrays, coordinates, tokens);
- *other* non-null values (a float in an integer index, a nested array, an object ...), kept per
  point as they are. They are rare, and they let the index stay exact: a value condition passes
  when any value passes, so its answer is the subclass's answer on own values OR the plain
  per-value check on the other values.

It also records the *shape* of the field per point (present or not, null, empty, how many values),
which answers ``is_empty``, ``is_null`` and ``values_count`` for every index type.

``mask(condition, size)`` is therefore either None (the subclass cannot answer that kind of check;
the evaluator scans payloads) or the exact answer, equal to the reference evaluator's.
"""

from __future__ import annotations

import copy
import json
import threading
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import orjson

from qcluster.errors import BadInputError, CorruptedStorageError
from qcluster.shards.filters.checks import raw_count, value_passes
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
from qcluster.shards.filters.paths import parse_path, raw_values
from qcluster.shards.payload_index.schema import FieldSchema, parse_field_schema

Mask = npt.NDArray[np.bool_]
I64 = npt.NDArray[np.int64]
SKIP: Any = object()  # _convert's answer for a value of another type

# shape bits per point (see checks.py for the meaning of each check)
B_PRESENT = 1  # at least one raw value
B_EMPTY = 2  # every raw value is null or []           -> is_empty
B_NULL = 4  # some raw value is null                   -> is_null
B_EF_TRUE = 8  # some raw value is null or []          -> {"is_empty": true}
B_EF_FALSE = 16  # some raw value is not null nor []   -> {"is_empty": false}
B_NF_TRUE = 32  # some raw value is null or has a null -> {"is_null": true}
B_NF_FALSE = 64  # some raw value is not like that     -> {"is_null": false}


_SCALAR_BITS = B_PRESENT | B_EF_FALSE | B_NF_FALSE  # one non-null, non-array value


def _shape_bits(raw: list[Any]) -> int:
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


def _dumps(obj: Any) -> bytes:
    try:
        return orjson.dumps(obj)
    except TypeError:  # integers beyond 64 bits in stored values
        return json.dumps(obj).encode()


def _loads(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


class FieldIndex:
    """Base of all payload indexes (one key, one segment).

    One writer (the segment's update thread) and any number of readers: every public method
    holds the index's lock, so a search never sees a structure half-way through a change.
    """

    kind: ClassVar[str] = ""

    def __init__(self, key: str, schema: FieldSchema):
        self.key = key
        self.schema = schema
        self.path = parse_path(key, "field_name")
        self._own: dict[int, tuple[Any, ...]] = {}
        self._others: dict[int, list[Any]] = {}
        self._bits = np.zeros(64, dtype=np.uint8)
        self._count = np.zeros(64, dtype=np.int32)  # values_count of the single raw value
        self._multi: dict[int, tuple[int, ...]] = {}  # counts when a point has several raw values
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ subclass hooks
    def _convert(self, value: Any) -> Any:
        """The own-typed form of a flat non-null value, or SKIP."""
        raise NotImplementedError

    def _insert(self, offset: int, own: tuple[Any, ...]) -> None:
        raise NotImplementedError

    def _delete(self, offset: int, own: tuple[Any, ...]) -> None:
        raise NotImplementedError

    def _own_mask(self, check: ValueCheck, size: int) -> Mask | None:
        """Offsets whose own values pass ``check``; None when this index cannot tell."""
        del check, size
        return None

    def _own_to_json(self, own: tuple[Any, ...]) -> list[Any]:
        return list(own)

    def _own_from_json(self, data: list[Any]) -> tuple[Any, ...]:
        return tuple(data)

    # ------------------------------------------------------------------ maintenance
    def add(self, offset: int, payload: dict[str, Any] | None) -> None:
        """Index the values at ``key`` in ``payload`` for ``offset`` (replacing what it had)."""
        with self._lock:
            self._add(offset, payload)

    def _add(self, offset: int, payload: dict[str, Any] | None) -> None:
        self._remove(offset)
        path = self.path
        if len(path) == 1 and isinstance(payload, dict):  # the common case: a top-level key
            if path[0] not in payload:
                return
            raw = [payload[path[0]]]
        else:
            raw = raw_values(payload or {}, path)
        if not raw:
            return
        if len(raw) == 1 and raw[0] is not None and not isinstance(raw[0], list | dict):
            c = self._convert(raw[0])  # one scalar: shape and count are known
            self._set_shape(offset, _SCALAR_BITS, (1,))
            if c is SKIP:
                self._others[offset] = [raw[0]]
            else:
                own_one = (c,)
                self._own[offset] = own_one
                self._insert(offset, own_one)
            return
        own: list[Any] = []
        others: list[Any] = []
        for v in raw:
            for x in v if isinstance(v, list) else (v,):
                if x is None:
                    continue
                c = self._convert(x)
                if c is SKIP:
                    others.append(copy.deepcopy(x) if isinstance(x, dict | list) else x)
                else:
                    own.append(c)
        counts = tuple(raw_count(v) for v in raw)
        self._set_shape(offset, _shape_bits(raw), counts)
        if own:
            self._own[offset] = tuple(own)
            self._insert(offset, self._own[offset])
        if others:
            self._others[offset] = others

    def remove(self, offset: int) -> None:
        with self._lock:
            self._remove(offset)

    def _remove(self, offset: int) -> None:
        own = self._own.pop(offset, None)
        if own is not None:
            self._delete(offset, own)
        self._others.pop(offset, None)
        self._multi.pop(offset, None)
        if offset < len(self._bits):
            self._bits[offset] = 0
            self._count[offset] = 0

    def _set_shape(self, offset: int, bits: int, counts: tuple[int, ...]) -> None:
        if offset >= len(self._bits):
            cap = max(offset + 1, 2 * len(self._bits))
            self._bits = np.concatenate([self._bits, np.zeros(cap - len(self._bits), dtype=np.uint8)])
            self._count = np.concatenate([self._count, np.zeros(cap - len(self._count), dtype=np.int32)])
        self._bits[offset] = bits
        if len(counts) == 1:
            self._count[offset] = min(counts[0], 2**31 - 1)
        elif counts:
            self._multi[offset] = counts

    def prepare(self) -> None:
        """Build now, off the query path, what answering conditions builds on first use."""

    # ------------------------------------------------------------------ answering conditions
    def points_count(self) -> int:
        """Points with at least one value of this index's type."""
        return len(self._own)

    def own_offsets(self) -> I64:
        """Offsets with at least one value of this index's type."""
        with self._lock:
            return np.fromiter(self._own.keys(), dtype=np.int64, count=len(self._own))

    def _bit_mask(self, bit: int, size: int, absent: bool) -> Mask:
        bits = self._bits[:size]
        out = np.full(size, absent, dtype=np.bool_)
        n = len(bits)
        present = (bits & B_PRESENT) != 0
        out[:n] = np.where(present, (bits & bit) != 0, absent)
        return out

    def _values_count_mask(self, check: ValuesCount, size: int) -> Mask:
        out = np.full(size, check.test(0), dtype=np.bool_)
        n = min(size, len(self._bits))
        counts = self._count[:n]
        ok = np.ones(n, dtype=np.bool_)
        if check.gt is not None:
            ok &= counts > check.gt
        if check.gte is not None:
            ok &= counts >= check.gte
        if check.lt is not None:
            ok &= counts < check.lt
        if check.lte is not None:
            ok &= counts <= check.lte
        present = (self._bits[:n] & B_PRESENT) != 0
        out[:n] = np.where(present, ok, out[:n])
        for off, counts_multi in self._multi.items():
            if off < size:
                out[off] = any(check.test(c) for c in counts_multi)
        return out

    def mask(self, condition: FieldCondition | IsEmpty | IsNull | Check, size: int) -> Mask | None:
        """bool[size]: the exact answer for a condition on this index's key, or None."""
        with self._lock:
            return self._mask(condition, size)

    def _mask(self, condition: FieldCondition | IsEmpty | IsNull | Check, size: int) -> Mask | None:
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
        own = self._own_mask(check, size)
        if own is None:
            return None
        for off, vals in self._others.items():
            if off < size and not own[off] and any(value_passes(check, v) for v in vals):
                own[off] = True
        return own

    # ------------------------------------------------------------------ planner hooks (cheap)
    def _own_estimate(self, check: ValueCheck) -> int | None:
        """Offsets whose own values pass ``check``, counted from the structures' sizes (no mask),
        or None when that is not cheap. Subclasses override for lookups and ranges."""
        del check
        return None

    def _own_offsets(self, check: ValueCheck, size: int, budget: int | None) -> I64 | None:
        """Sorted offsets (< ``size``) whose own values pass ``check``, without a point-count
        mask; None when this index cannot list them directly or they number more than
        ``budget`` (checked before any is gathered)."""
        del check, size, budget
        return None

    def _own_member(self, check: ValueCheck, offsets: I64) -> Mask | None:
        """Which of ``offsets`` have an own value passing ``check``, looked up per offset; None
        when this index cannot (the caller builds a mask)."""
        del check, offsets
        return None

    def member(self, condition: FieldCondition | IsEmpty | IsNull | Check, offsets: I64) -> Mask | None:
        """Which of ``offsets`` pass ``condition``, exactly, in O(len(offsets)) lookups (posting
        searches, per-offset values); None when only a mask can tell."""
        if isinstance(condition, IsEmpty | IsNull):
            return None
        check = condition.check if isinstance(condition, FieldCondition) else condition
        if isinstance(check, ValuesCount | EmptyFlag | NullFlag):
            return None
        with self._lock:
            return None if self._others else self._own_member(check, offsets)

    def estimate(self, condition: FieldCondition | IsEmpty | IsNull | Check) -> int | None:
        """How many indexed points pass ``condition``, from posting-list sizes or a sorted-value
        search: O(values asked), never O(points). None when this index cannot tell cheaply (the
        planner then evaluates the condition). Exact while the index holds no values of other
        types (``_others``), an upper bound otherwise."""
        if isinstance(condition, IsEmpty | IsNull):
            return None
        check = condition.check if isinstance(condition, FieldCondition) else condition
        if isinstance(check, ValuesCount | EmptyFlag | NullFlag):
            return None
        with self._lock:
            own = self._own_estimate(check)
            return None if own is None else own + len(self._others)

    def offsets(
        self, condition: FieldCondition | IsEmpty | IsNull | Check, size: int, budget: int | None = None
    ) -> I64 | None:
        """Sorted offsets (< ``size``) passing ``condition``, exactly as ``mask`` would mark them.

        With a ``budget``: None when more than ``budget`` points may pass (counted from the
        structures before anything is gathered, so an unselective condition costs O(1)).
        Without: built from posting lists / sorted values when possible, else from the mask;
        None only when this index cannot answer the condition at all."""
        check = None
        if not isinstance(condition, IsEmpty | IsNull):
            check = condition.check if isinstance(condition, FieldCondition) else condition
        direct = check is not None and not isinstance(check, ValuesCount | EmptyFlag | NullFlag)
        with self._lock:
            if direct and not self._others:
                assert check is not None and not isinstance(check, ValuesCount | EmptyFlag | NullFlag)
                fast = self._own_offsets(check, size, budget)
                if fast is not None or budget is not None:
                    return fast
            elif budget is not None:
                return None
            m = self._mask(condition, size)
        return None if m is None else np.flatnonzero(m)

    def value_blocks(self, min_size: int) -> dict[Any, I64] | None:
        """Value -> sorted offsets holding it, for values held by at least ``min_size`` points
        (payload graphs are built per block); None for index types without posting lists."""
        del min_size
        return None

    def count(self, condition: FieldCondition | IsEmpty | IsNull | Check) -> int | None:
        """Exact number of indexed offsets passing ``condition``, None when not answerable."""
        if self._holds_when_absent(condition):
            return None  # would count points this index never saw: only the segment knows them
        with self._lock:
            m = self._mask(condition, len(self._bits))
        return None if m is None else int(np.count_nonzero(m))

    @staticmethod
    def _holds_when_absent(condition: FieldCondition | IsEmpty | IsNull | Check) -> bool:
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

    # ------------------------------------------------------------------ facet, order_by, info
    def facet(self, mask: Mask | None, limit: int) -> list[tuple[Any, int]]:
        """keyword / integer / bool / uuid: (value, points among ``mask``), most frequent first,
        ties by value; BadInputError for other index types."""
        with self._lock:
            return self._facet(mask)[:limit]

    def _facet(self, mask: Mask | None) -> list[tuple[Any, int]]:
        raise BadInputError(
            f"facet on {self.key!r} needs a keyword, integer, bool or uuid index, not {self.kind}", "key"
        )

    def order_values(self, offset: int) -> list[float]:
        """integer / float / datetime: the values ``order_by`` sorts on (others: [])."""
        with self._lock:
            return self._order_values(offset)

    def _order_values(self, offset: int) -> list[float]:
        return []

    def schema_info(self) -> dict[str, Any]:
        """Qdrant's PayloadIndexInfo."""
        info: dict[str, Any] = {"data_type": self.kind}
        if self.schema.params:
            info["params"] = {"type": self.kind, **self.schema.params}
        info["points"] = self.points_count()
        return info

    # ------------------------------------------------------------------ columns (``files.py``)
    def export(self) -> tuple[dict[str, Any], dict[str, npt.NDArray[Any]]]:
        """(JSON-able metadata, numpy columns) of the whole index, for ``files.save``."""
        from qcluster.shards.payload_index.files import numeric_dtype

        with self._lock:
            shape_offs = np.flatnonzero(self._bits)
            own = self._own
            flat = [x for vals in own.values() for x in self._own_to_json(vals)]
            arrays: dict[str, npt.NDArray[Any]] = {
                "shape_offs": shape_offs.astype(np.int64),
                "bits": self._bits[shape_offs],
                "count": self._count[shape_offs],
                "own_offs": np.fromiter(own.keys(), dtype=np.int64, count=len(own)),
                "own_counts": np.fromiter((len(v) for v in own.values()), dtype=np.int32, count=len(own)),
            }
            meta: dict[str, Any] = {
                "multi": [[off, list(c)] for off, c in self._multi.items()],
                "others": [[off, vals] for off, vals in self._others.items()],
            }
            dtype = numeric_dtype(self.kind)
            if dtype is None:
                meta["values"] = flat
            else:
                arrays["values"] = np.asarray(flat, dtype=dtype)
        return meta, arrays

    def restore(self, meta: dict[str, Any], arrays: dict[str, npt.NDArray[Any]]) -> None:
        """Fill an empty index from ``export``'s output (structures rebuilt in bulk)."""
        with self._lock:
            shape_offs = arrays["shape_offs"].astype(np.int64)
            cap = max(64, int(shape_offs[-1]) + 1 if len(shape_offs) else 0)
            self._bits = np.zeros(cap, dtype=np.uint8)
            self._count = np.zeros(cap, dtype=np.int32)
            self._bits[shape_offs] = arrays["bits"]
            self._count[shape_offs] = arrays["count"]
            self._multi = {int(off): tuple(int(c) for c in counts) for off, counts in meta["multi"]}
            self._others = {int(off): list(vals) for off, vals in meta["others"]}
            offs = arrays["own_offs"].astype(np.int64)
            counts = arrays["own_counts"].astype(np.int64)
            flat = arrays["values"].tolist() if "values" in arrays else list(meta["values"])
            if len(flat) != int(counts.sum()) or len(offs) != len(counts):
                raise ValueError("payload index columns disagree")
            ends = np.cumsum(counts).tolist()
            starts = [0, *ends[:-1]]
            convert = self._own_from_json
            self._own.clear()  # in place: sorted values keep a reference to this map
            self._own.update(
                (off, convert(flat[a:b])) for off, a, b in zip(offs.tolist(), starts, ends, strict=True)
            )
            self._restore(np.repeat(offs, counts), flat)

    def _restore(self, offsets: I64, values: list[Any]) -> None:
        """Rebuild the subclass structures from every (offset, own value) pair (``offsets`` and
        ``values`` aligned); the default inserts point by point."""
        del offsets, values
        for off, own in self._own.items():
            self._insert(off, own)

    # ------------------------------------------------------------------ persistence (JSON, never pickle)
    def to_bytes(self) -> bytes:
        with self._lock:
            return self._to_bytes()

    def _to_bytes(self) -> bytes:
        shape = []
        for off in np.flatnonzero(self._bits).tolist():
            shape.append([off, int(self._bits[off]), list(self._multi.get(off, (int(self._count[off]),)))])
        return _dumps(
            {
                "format": 1,
                "key": self.key,
                "schema": self.schema.to_json(),
                "own": [[off, self._own_to_json(vals)] for off, vals in self._own.items()],
                "others": [[off, vals] for off, vals in self._others.items()],
                "shape": shape,
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> FieldIndex:
        from qcluster.shards.payload_index import build_index

        try:
            doc = _loads(data)
            if doc.get("format") != 1:
                raise ValueError(f"unknown format {doc.get('format')!r}")
            index = build_index(doc["key"], parse_field_schema(doc["schema"]))
            for off, bits, counts in doc["shape"]:
                index._set_shape(int(off), int(bits), tuple(int(c) for c in counts))
            for off, vals in doc["own"]:
                own = index._own_from_json(vals)
                index._own[int(off)] = own
                index._insert(int(off), own)
            for off, vals in doc["others"]:
                index._others[int(off)] = list(vals)
        except (ValueError, KeyError, TypeError, AttributeError, BadInputError) as exc:
            raise CorruptedStorageError(f"payload index data is damaged: {exc}") from exc
        return index
