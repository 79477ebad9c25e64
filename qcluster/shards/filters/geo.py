"""Geo tests on arrays of points: the one implementation both the reference evaluator and the geo
index use, so indexed and unindexed answers agree to the last bit.

Semantics (Qdrant's):

- ``geo_radius``: haversine distance on a sphere of radius 6371008.8 m, strictly less than
  ``radius``;
- ``geo_bounding_box``: strictly inside (``bottom < lat < top``, ``left < lon < right``); a box whose
  ``top_left.lon`` is greater than ``bottom_right.lon`` crosses the antimeridian;
- ``geo_polygon``: planar lon/lat; a point inside or on the boundary of the exterior ring and not
  strictly inside any interior ring (the documented rule).

A payload geo point is an object with numeric ``lat`` and ``lon`` (other keys ignored); range
checks are not applied to stored points, as in Qdrant (only non-finite numbers are refused).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from qcluster.shards.filters.conditions import GeoBox, GeoCheck, GeoPolygon, GeoRadius
from qcluster.shards.filters.numbers import as_number

EARTH_RADIUS_M = 6371008.8
F64 = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]


def geo_point(value: Any) -> tuple[float, float] | None:
    """(lat, lon) of a payload value that is a geo point, else None."""
    if not isinstance(value, dict):
        return None
    lat, lon = as_number(value.get("lat")), as_number(value.get("lon"))
    if lat is None or lon is None or not (math.isfinite(lat) and math.isfinite(lon)):
        return None
    return lat, lon


def haversine_m(lat: F64, lon: F64, clat: float, clon: float) -> F64:
    lat_r = np.radians(lat)
    clat_r = math.radians(clat)
    dlat = np.radians(lat - clat)
    dlon = np.radians(lon - clon)
    a = np.sin(dlat / 2.0) ** 2 + math.cos(clat_r) * np.cos(lat_r) * np.sin(dlon / 2.0) ** 2
    c = 2.0 * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
    out: F64 = EARTH_RADIUS_M * c
    return out


def _on_segment(x: F64, y: F64, x1: float, y1: float, x2: float, y2: float) -> Mask:
    cross = (x2 - x1) * (y - y1) - (y2 - y1) * (x - x1)
    within = (x >= min(x1, x2)) & (x <= max(x1, x2)) & (y >= min(y1, y2)) & (y <= max(y1, y2))
    out: Mask = (cross == 0.0) & within
    return out


def _ring_test(lon: F64, lat: F64, ring: Sequence[tuple[float, float]]) -> tuple[Mask, Mask]:
    """(strictly inside by ray casting, on the boundary) for every point."""
    inside = np.zeros(lon.shape, dtype=np.bool_)
    boundary = np.zeros(lon.shape, dtype=np.bool_)
    n = len(ring)
    for i in range(n - 1):
        x1, y1 = ring[i]
        x2, y2 = ring[i + 1]
        boundary |= _on_segment(lon, lat, x1, y1, x2, y2)
        if y1 == y2:
            continue
        crosses = (y1 > lat) != (y2 > lat)
        x_at = (x2 - x1) * (lat - y1) / (y2 - y1) + x1
        inside ^= crosses & (lon < x_at)
    return inside & ~boundary, boundary


def geo_mask(check: GeoCheck, lat: F64, lon: F64) -> Mask:
    """Which of the points (parallel lat / lon arrays) pass ``check``."""
    if isinstance(check, GeoRadius):
        out: Mask = haversine_m(lat, lon, check.lat, check.lon) < check.radius
        return out
    if isinstance(check, GeoBox):
        lat_ok = (lat > check.bottom) & (lat < check.top)
        if check.left > check.right:
            lon_ok = (lon > check.left) | (lon < check.right)
        else:
            lon_ok = (lon > check.left) & (lon < check.right)
        res: Mask = lat_ok & lon_ok
        return res
    assert isinstance(check, GeoPolygon)
    inside, boundary = _ring_test(lon, lat, check.exterior)
    result: Mask = inside | boundary
    for ring in check.interiors:
        hole, _ = _ring_test(lon, lat, ring)
        result &= ~hole
    return result


def lat_band(check: GeoCheck) -> tuple[float, float]:
    """A latitude interval that contains every point that can pass ``check`` (for prefiltering)."""
    if isinstance(check, GeoRadius):
        deg = math.degrees(check.radius / EARTH_RADIUS_M) + 1e-9
        if deg >= 180:
            return -math.inf, math.inf
        return check.lat - deg, check.lat + deg
    if isinstance(check, GeoBox):
        return check.bottom, check.top
    lats = [p[1] for p in check.exterior]
    return min(lats), max(lats)


def values_pass(check: GeoCheck, points: Sequence[tuple[float, float]]) -> bool:
    """Reference use: does any of the (lat, lon) points pass?"""
    if not points:
        return False
    lat = np.array([p[0] for p in points], dtype=np.float64)
    lon = np.array([p[1] for p in points], dtype=np.float64)
    return bool(geo_mask(check, lat, lon).any())
