"""What every payload index shares: value extraction, the shape of each point's field, the values
of other types, answering a condition exactly, and their columns on disk (``files.py``).

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
import threading
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from qcluster.errors import BadInputError
from qcluster.shards.filters.checks import raw_count, value_passes
from qcluster.shards.filters.conditions import (
    Check,
    FieldCondition,
    IsEmpty,
    IsNull,
    ValueCheck,
)
from qcluster.shards.filters.paths import parse_path, raw_values
from qcluster.shards.payload_index.field_shape import (
    SCALAR_BITS,
    FieldShape,
    holds_when_absent,
    shape_bits,
    value_check,
)
from qcluster.shards.payload_index.schema import FieldSchema

Mask = npt.NDArray[np.bool_]
I64 = npt.NDArray[np.int64]
SKIP: Any = object()  # _convert's answer for a value of another type


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
        self.shape = FieldShape()
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
            self.shape.set(offset, SCALAR_BITS, (1,))
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
        self.shape.set(offset, shape_bits(raw), counts)
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
        self.shape.clear(offset)

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

    def mask(self, condition: FieldCondition | IsEmpty | IsNull | Check, size: int) -> Mask | None:
        """bool[size]: the exact answer for a condition on this index's key, or None."""
        with self._lock:
            return self._mask(condition, size)

    def _mask(self, condition: FieldCondition | IsEmpty | IsNull | Check, size: int) -> Mask | None:
        check = value_check(condition)
        if check is None:
            return self.shape.mask(condition, size)
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
        check = value_check(condition)
        if check is None:
            return None
        with self._lock:
            return None if self._others else self._own_member(check, offsets)

    def estimate(self, condition: FieldCondition | IsEmpty | IsNull | Check) -> int | None:
        """How many indexed points pass ``condition``, from posting-list sizes or a sorted-value
        search: O(values asked), never O(points). None when this index cannot tell cheaply (the
        planner then evaluates the condition). Exact while the index holds no values of other
        types (``_others``), an upper bound otherwise."""
        check = value_check(condition)
        if check is None:
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
        check = value_check(condition)
        with self._lock:
            if check is not None and not self._others:
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
        if holds_when_absent(condition):
            return None  # would count points this index never saw: only the segment knows them
        with self._lock:
            m = self._mask(condition, self.shape.size)
        return None if m is None else int(np.count_nonzero(m))

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
            own = self._own
            flat = [x for vals in own.values() for x in self._own_to_json(vals)]
            arrays: dict[str, npt.NDArray[Any]] = {
                "own_offs": np.fromiter(own.keys(), dtype=np.int64, count=len(own)),
                "own_counts": np.fromiter((len(v) for v in own.values()), dtype=np.int32, count=len(own)),
            }
            meta: dict[str, Any] = {"others": [[off, vals] for off, vals in self._others.items()]}
            self.shape.export(arrays, meta)
            dtype = numeric_dtype(self.kind)
            if dtype is None:
                meta["values"] = flat
            else:
                arrays["values"] = np.asarray(flat, dtype=dtype)
        return meta, arrays

    def restore(self, meta: dict[str, Any], arrays: dict[str, npt.NDArray[Any]]) -> None:
        """Fill an empty index from ``export``'s output (structures rebuilt in bulk)."""
        with self._lock:
            self.shape.restore(meta, arrays)
            self._others = {int(off): list(vals) for off, vals in meta["others"]}
            offs = arrays["own_offs"].astype(np.int64)
            counts = arrays["own_counts"].astype(np.int64)
            flat = arrays["values"].tolist() if "values" in arrays else list(meta["values"])
            if len(flat) != int(counts.sum()) or len(offs) != len(counts):
                raise ValueError("payload index columns disagree")
            ends = np.cumsum(counts).tolist()
            starts = [0, *ends[:-1]] if ends else []  # an index with no own values has no rows
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
