"""Geo index: coordinates sorted by latitude.

A geo check first cuts the latitude band that can contain matches (searchsorted), then runs the
vectorised test of ``filters/geo.py`` on that band only, so results are bit-identical to the
reference evaluator's. Own values: objects with numeric ``lat`` and ``lon``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from qcluster.shards.filters.conditions import GeoBox, GeoPolygon, GeoRadius, MatchExcept, ValueCheck
from qcluster.shards.filters.geo import geo_mask, geo_point, lat_band
from qcluster.shards.payload_index.base import SKIP, FieldIndex, Mask
from qcluster.shards.payload_index.schema import FieldSchema

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


class GeoIndex(FieldIndex):
    kind = "geo"

    def __init__(self, key: str, schema: FieldSchema):
        super().__init__(key, schema)
        self._lat: F64 = np.empty(0, dtype=np.float64)
        self._lon: F64 = np.empty(0, dtype=np.float64)
        self._offs: I64 = np.empty(0, dtype=np.int64)
        self._dirty: set[int] = set()
        self._built = False

    def _convert(self, value: Any) -> Any:
        p = geo_point(value)
        return SKIP if p is None else p

    def _own_to_json(self, own: tuple[Any, ...]) -> list[Any]:
        return [list(p) for p in own]

    def _own_from_json(self, data: list[Any]) -> tuple[Any, ...]:
        return tuple((float(p[0]), float(p[1])) for p in data)

    def _insert(self, offset: int, own: tuple[Any, ...]) -> None:
        if self._built:
            self._dirty.add(offset)

    def _delete(self, offset: int, own: tuple[Any, ...]) -> None:
        if self._built:
            self._dirty.add(offset)

    def _rebuild(self) -> None:
        pts = [(lat, lon, off) for off, ps in self._own.items() for lat, lon in ps]
        lat = np.array([p[0] for p in pts], dtype=np.float64)
        lon = np.array([p[1] for p in pts], dtype=np.float64)
        offs = np.array([p[2] for p in pts], dtype=np.int64)
        order = np.argsort(lat, kind="stable")
        self._lat, self._lon, self._offs = lat[order], lon[order], offs[order]
        self._dirty.clear()
        self._built = True

    def _geo(self, check: GeoRadius | GeoBox | GeoPolygon, size: int) -> Mask:
        if not self._built or len(self._dirty) > max(64, len(self._lat) // 16):
            self._rebuild()
        lo, hi = lat_band(check)
        i = int(np.searchsorted(self._lat, lo, side="left"))
        j = int(np.searchsorted(self._lat, hi, side="right"))
        out = np.zeros(size, dtype=np.bool_)
        if j > i:
            hit = self._offs[i:j][geo_mask(check, self._lat[i:j], self._lon[i:j])]
            out[hit[hit < size]] = True
        for off in self._dirty:
            if off < size:
                pts = self._own.get(off, ())
                if not pts:
                    out[off] = False
                    continue
                lat = np.array([p[0] for p in pts], dtype=np.float64)
                lon = np.array([p[1] for p in pts], dtype=np.float64)
                out[off] = bool(geo_mask(check, lat, lon).any())
        return out

    def _own_mask(self, check: ValueCheck, size: int) -> Mask | None:
        if isinstance(check, GeoRadius | GeoBox | GeoPolygon):
            return self._geo(check, size)
        if isinstance(check, MatchExcept):
            # an object is never in the except list: every point with a geo value passes
            out = np.zeros(size, dtype=np.bool_)
            offs = self.own_offsets()
            out[offs[offs < size]] = True
            return out
        return np.zeros(size, dtype=np.bool_)  # match / range never pass on an object
