"""One payload index over one key of one segment.

An index keeps the values of its own type found at its key (other types are left out) and
answers a check with a numpy mask only when that answer is exact: when no value it left out
could satisfy the check. Otherwise ``mask`` returns None and the evaluator scans payloads, so
indexed and unindexed evaluation always agree.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from qcluster.shards.filters.checks import geo_of, in_geo, is_number, text_matches
from qcluster.shards.filters.conditions import (
    Check,
    GeoBox,
    GeoPolygon,
    GeoRadius,
    MatchAny,
    MatchText,
    MatchValue,
    Range,
)
from qcluster.shards.filters.parse import try_datetime
from qcluster.shards.filters.paths import values
from qcluster.shards.payload_index.schema import FieldSchema

Mask = npt.NDArray[np.bool_]
_WS = re.compile(r"\S+")
_WORD = re.compile(r"\w+", re.UNICODE)


def _canonical_uuid(x: Any) -> str | None:
    if not isinstance(x, str):
        return None
    try:
        return str(uuid.UUID(x))
    except ValueError:
        return None


class FieldIndex:
    def __init__(self, key: str, schema: FieldSchema):
        self.key = key
        self.schema = schema
        self.kind = schema.type
        self._by_offset: dict[int, list[Any]] = {}
        self._inverted: dict[Any, set[int]] = {}
        self._sorted: tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]] | None = None
        self._floats_seen = 0  # integer index: non-integer numbers left out (ranges then need a scan)
        self._arrays: dict[Any, npt.NDArray[np.int64]] = {}
        # The update thread writes while search threads read: every method that touches the
        # structures holds this lock (an RLock: readers call helpers that lock again).
        self._lock = threading.RLock()

    def copy(self) -> FieldIndex:
        with self._lock:
            return self._copy_unlocked()

    def _copy_unlocked(self) -> FieldIndex:
        """An independent copy (a merged segment starts from its base segment's index)."""
        out = FieldIndex(self.key, self.schema)
        out._by_offset = dict(self._by_offset)
        out._inverted = {k: set(v) for k, v in self._inverted.items()}
        out._floats_seen = self._floats_seen
        return out

    # ------------------------------------------------------------------ values of this index's type
    def tokenizer(self) -> Callable[[str], list[str]]:
        lower = self.schema.lowercase
        tok = self.schema.params.get("tokenizer", "word")
        lo, hi = self.schema.min_token_len, self.schema.max_token_len
        pattern = _WS if tok == "whitespace" else _WORD

        def split(text: str) -> list[str]:
            out = pattern.findall(text.lower() if lower else text)
            if lo is not None:
                out = [t for t in out if len(t) >= lo]
            if hi is not None:
                out = [t for t in out if len(t) <= hi]
            return out

        return split

    def _convert(self, raw: list[Any]) -> list[Any]:
        k = self.kind
        if k == "keyword":
            return [x for x in raw if isinstance(x, str)]
        if k == "integer":
            ints = [x for x in raw if isinstance(x, int) and not isinstance(x, bool)]
            self._floats_seen += sum(1 for x in raw if isinstance(x, float))
            return ints
        if k == "float":
            return [float(x) for x in raw if is_number(x)]
        if k == "bool":
            return [x for x in raw if isinstance(x, bool)]
        if k == "datetime":
            return [t for t in (try_datetime(x) for x in raw if isinstance(x, str)) if t is not None]
        if k == "uuid":
            return [u for u in (_canonical_uuid(x) for x in raw) if u is not None]
        if k == "text":
            return [x for x in raw if isinstance(x, str)]
        return [g for g in (geo_of(x) for x in raw) if g is not None]

    # ------------------------------------------------------------------ maintenance
    def add(self, offset: int, payload: dict[str, Any] | None) -> None:
        with self._lock:
            return self._add_unlocked(offset, payload)

    def _add_unlocked(self, offset: int, payload: dict[str, Any] | None) -> None:
        if payload is None:
            return
        vals = self._convert(values(payload, self.key))
        if not vals:
            return
        self._by_offset[offset] = vals
        if self.kind in ("keyword", "integer", "bool", "uuid"):
            for v in vals:
                self._inverted.setdefault(v, set()).add(offset)
                self._arrays.pop(v, None)
        elif self.kind == "text":
            split = self.tokenizer()
            for v in vals:
                for t in split(v):
                    self._inverted.setdefault(t, set()).add(offset)
        self._sorted = None

    def remove(self, offset: int) -> None:
        with self._lock:
            return self._remove_unlocked(offset)

    def _remove_unlocked(self, offset: int) -> None:
        vals = self._by_offset.pop(offset, None)
        if vals is None:
            return
        keys: list[Any] = vals
        if self.kind == "text":
            split = self.tokenizer()
            keys = [t for v in vals for t in split(v)]
        if self.kind in ("keyword", "integer", "bool", "uuid", "text"):
            for v in keys:
                self._arrays.pop(v, None)
                bucket = self._inverted.get(v)
                if bucket is not None:
                    bucket.discard(offset)
                    if not bucket:
                        del self._inverted[v]
        self._sorted = None

    def points_count(self) -> int:
        with self._lock:
            return self._points_count_unlocked()

    def _points_count_unlocked(self) -> int:
        return len(self._by_offset)

    # ------------------------------------------------------------------ answering checks
    def _mask_of(self, offsets: Any, size: int) -> Mask:
        mask = np.zeros(size, dtype=np.bool_)
        if isinstance(offsets, np.ndarray):
            idx = offsets
        else:
            idx = np.fromiter(offsets, dtype=np.int64)
        mask[idx[idx < size]] = True
        return mask

    def _array(self, value: Any) -> npt.NDArray[np.int64]:
        """Offsets holding ``value``, as a cached numpy array (dropped when the value changes)."""
        arr = self._arrays.get(value)
        if arr is None:
            bucket = self._inverted.get(value, ())
            arr = np.fromiter(bucket, dtype=np.int64, count=len(bucket))
            self._arrays[value] = arr
        return arr

    def _numeric(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
        if self._sorted is None:
            pairs = [(float(v), off) for off, vals in self._by_offset.items() for v in vals]
            vals_arr = np.array([p[0] for p in pairs], dtype=np.float64)
            offs = np.array([p[1] for p in pairs], dtype=np.int64)
            order = np.argsort(vals_arr, kind="stable")
            self._sorted = (vals_arr[order], offs[order])
        return self._sorted

    def mask(self, check: Check, size: int) -> Mask | None:
        with self._lock:
            return self._mask_unlocked(check, size)

    def _mask_unlocked(self, check: Check, size: int) -> Mask | None:
        k = self.kind
        if isinstance(check, MatchValue):
            v = check.value
            if (
                (k == "keyword" and isinstance(v, str))
                or (k == "bool" and isinstance(v, bool))
                or (k == "integer" and isinstance(v, int) and not isinstance(v, bool))
            ):
                return self._mask_of(self._array(v), size)
            return None
        if isinstance(check, MatchAny):
            if (k == "keyword" and all(isinstance(a, str) for a in check.any)) or (
                k == "integer" and all(isinstance(a, int) for a in check.any)
            ):
                parts = [self._array(a) for a in check.any]
                return self._mask_of(np.concatenate(parts) if parts else np.zeros(0, np.int64), size)
            return None
        if isinstance(check, Range):
            exact = (
                (k == "float" and not check.datetime)
                or (k == "datetime" and check.datetime)
                or (k == "integer" and not check.datetime and self._floats_seen == 0)
            )
            if not exact:
                return None
            vals, offs = self._numeric()
            lo, hi = 0, len(vals)
            if check.gte is not None:
                lo = max(lo, int(np.searchsorted(vals, check.gte, side="left")))
            if check.gt is not None:
                lo = max(lo, int(np.searchsorted(vals, check.gt, side="right")))
            if check.lt is not None:
                hi = min(hi, int(np.searchsorted(vals, check.lt, side="left")))
            if check.lte is not None:
                hi = min(hi, int(np.searchsorted(vals, check.lte, side="right")))
            return self._mask_of(offs[lo:hi] if hi > lo else (), size)
        if isinstance(check, MatchText) and k == "text":
            split = self.tokenizer()
            tokens = split(check.text)
            if not tokens:
                return self._mask_of(self._by_offset.keys(), size)
            cand: set[int] | None = None
            for t in tokens:
                bucket = self._inverted.get(t, set())
                cand = set(bucket) if cand is None else cand & bucket
            if check.phrase:
                cand = {
                    o for o in cand or () if any(text_matches(check, v, split) for v in self._by_offset[o])
                }
            return self._mask_of(cand or (), size)
        if isinstance(check, GeoRadius | GeoBox | GeoPolygon) and k == "geo":
            hits = [
                o for o, pts in self._by_offset.items() if any(in_geo(check, lat, lon) for lat, lon in pts)
            ]
            return self._mask_of(hits, size)
        return None

    # ------------------------------------------------------------------ facet, order_by, info
    def facet(self, mask: Mask | None, limit: int) -> list[tuple[Any, int]]:
        with self._lock:
            return self._facet_unlocked(mask, limit)

    def _facet_unlocked(self, mask: Mask | None, limit: int) -> list[tuple[Any, int]]:
        counts: list[tuple[Any, int]] = []
        for value, offs in self._inverted.items():
            if mask is None:
                n = len(offs)
            else:
                idx = np.fromiter(offs, dtype=np.int64)
                idx = idx[idx < len(mask)]
                n = int(np.count_nonzero(mask[idx]))
            if n:
                counts.append((value, n))
        counts.sort(key=lambda kv: (-kv[1], str(kv[0])))
        return counts[:limit]

    def order_values(self, offset: int) -> list[float]:
        with self._lock:
            return self._order_values_unlocked(offset)

    def _order_values_unlocked(self, offset: int) -> list[float]:
        if self.kind not in ("integer", "float", "datetime"):
            return []
        return [float(v) for v in self._by_offset.get(offset, [])]

    def schema_info(self) -> dict[str, Any]:
        info: dict[str, Any] = {"data_type": self.kind, "points": self.points_count()}
        if self.schema.params:
            info["params"] = {"type": self.kind, **self.schema.params}
        return info
