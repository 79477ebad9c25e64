"""Read paths over a snapshot (tuple) of a shard's segments: scroll, count, retrieve, facet, info
(search is in ``shard_search``).

Run on the shard's search threads. A point is live in one segment, except for a moment while an
update moves it (copy-on-write): results are de-duplicated by point id, newest version first.

Every loop over segments or ids checks the request's deadline (``qcluster.deadline``).
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from qcluster import deadline
from qcluster.errors import BadInputError
from qcluster.shards.base import (
    CountRequest,
    FilterJson,
    PayloadSelector,
    Record,
    ScrollRequest,
    ScrollResult,
    ShardInfo,
    VectorSelector,
)
from qcluster.shards.payload_ops import select_payload
from qcluster.shards.segment import Segment
from qcluster.shards.shard_search import filter_masks, point_vectors
from qcluster.types import PointId, point_id_sort_key

if TYPE_CHECKING:
    from qcluster.shards.optimizer import Optimizer

Mask = npt.NDArray[np.bool_]


def _matching(segments: Sequence[Segment], raw: FilterJson | None) -> list[tuple[PointId, int, int]]:
    masks = filter_masks(segments, raw)
    found: list[tuple[PointId, int, int]] = []
    for si, seg in enumerate(segments):
        deadline.check()
        mask = masks[si]
        if mask is None:
            found.extend((pid, si, off) for pid, off in seg.iter_live())
        else:
            live = mask[: seg.size] & seg.live_mask()
            found.extend((seg.ids[int(o)], si, int(o)) for o in np.flatnonzero(live))
    return found


def scroll(segments: Sequence[Segment], req: ScrollRequest) -> ScrollResult:
    if req.limit < 0:
        raise BadInputError("limit must be non-negative", "limit")
    found = _matching(segments, req.filter)
    if req.order_by is not None:
        return _scroll_ordered(segments, req, found)
    found.sort(key=lambda f: point_id_sort_key(f[0]))
    start = 0
    if req.offset is not None:
        key = point_id_sort_key(req.offset)
        lo, hi = 0, len(found)
        while lo < hi:
            mid = (lo + hi) // 2
            if point_id_sort_key(found[mid][0]) < key:
                lo = mid + 1
            else:
                hi = mid
        start = lo
    page = found[start : start + req.limit]
    nxt = found[start + req.limit][0] if start + req.limit < len(found) else None
    points = [
        Record(
            id=pid,
            payload=select_payload(segments[si].payloads[off], req.with_payload),
            vector=point_vectors(segments[si], off, req.with_vector),
        )
        for pid, si, off in page
    ]
    return ScrollResult(points, nxt)


def _scroll_ordered(
    segments: Sequence[Segment], req: ScrollRequest, found: list[tuple[PointId, int, int]]
) -> ScrollResult:
    order = req.order_by
    assert order is not None
    for seg in segments:
        fidx = seg.field_index(order.key)
        if fidx is None or fidx.kind not in ("integer", "float", "datetime"):
            raise BadInputError(
                f"No range index for `order_by` key: `{order.key}`. Please create one to use `order_by`. "
                "Check https://qdrant.tech/documentation/concepts/indexing/#payload-index to see which "
                "payload schemas support Range conditions",
                "order_by.key",
            )
    rows: list[tuple[float, PointId, int, int]] = []
    for pid, si, off in found:
        for value in segments[si].field_index(order.key).order_values(off):  # type: ignore[union-attr]
            rows.append((float(value), pid, si, off))
    desc = order.direction == "desc"
    if order.start_from is not None:
        bound = float(order.start_from)
        rows = [r for r in rows if (r[0] <= bound if desc else r[0] >= bound)]
    pick = heapq.nlargest if desc else heapq.nsmallest
    top = pick(req.limit, rows, key=lambda r: (r[0], point_id_sort_key(r[1])))
    points = [
        Record(
            id=pid,
            payload=select_payload(segments[si].payloads[off], req.with_payload),
            vector=point_vectors(segments[si], off, req.with_vector),
            order_value=int(value) if float(value).is_integer() else value,
        )
        for value, pid, si, off in top
    ]
    return ScrollResult(points, None)


def count(segments: Sequence[Segment], req: CountRequest) -> int:
    if req.filter is None:
        return sum(seg.live_count for seg in segments)
    masks = filter_masks(segments, req.filter)
    total = 0
    for seg, mask in zip(segments, masks, strict=True):
        if mask is not None and seg.size:
            total += int(np.count_nonzero(mask[: seg.size] & seg.live_mask()))
    return total


def retrieve(
    segments: Sequence[Segment],
    ids: Sequence[PointId],
    with_payload: PayloadSelector,
    with_vector: VectorSelector,
) -> list[Record]:
    out: list[Record] = []
    seen: set[PointId] = set()
    for i, pid in enumerate(ids):
        if i % 4096 == 4095:
            deadline.check()
        if pid in seen:
            continue
        for seg in segments:
            off = seg.offsets.get(pid)
            if off is not None:
                seen.add(pid)
                out.append(
                    Record(
                        id=pid,
                        payload=select_payload(seg.payloads[off], with_payload),
                        vector=point_vectors(seg, off, with_vector),
                    )
                )
                break
    return out


def facet(segments: Sequence[Segment], key: str, raw: FilterJson | None, limit: int) -> list[tuple[Any, int]]:
    masks = filter_masks(segments, raw)
    totals: dict[Any, int] = {}
    for seg, mask in zip(segments, masks, strict=True):
        fidx = seg.field_index(key)
        if fidx is None:
            raise BadInputError(
                f'Index required but not found for "{key}" of one of the following types: '
                "[keyword, integer, bool, uuid]. Help: Create an index for this key or use a different filter.",
                "key",
            )
        if seg.size == 0:
            continue
        live = seg.live_mask() if mask is None else (mask[: seg.size] & seg.live_mask())
        for value, cnt in fidx.facet(live, 2**31):
            totals[value] = totals.get(value, 0) + cnt
    ranked = sorted(totals.items(), key=lambda kv: (-kv[1], str(kv[0])))
    return ranked[:limit]


def info(
    segments: Sequence[Segment], schemas: dict[str, Any], optimizer: Optimizer, version: int
) -> ShardInfo:
    payload_schema: dict[str, Any] = {}
    for key in schemas:
        points = 0
        schema_info: dict[str, Any] = {}
        for seg in segments:
            fidx = seg.field_index(key)
            if fidx is not None:
                schema_info = fidx.schema_info()
                points += fidx.points_count()
        schema_info["points"] = points
        payload_schema[key] = schema_info
    running = optimizer.progress()
    status: Literal["green", "yellow", "grey", "red"] = "green" if optimizer.idle else "yellow"
    if optimizer.error is not None:
        status = "red"
    return ShardInfo(
        status=status,
        points_count=sum(s.live_count for s in segments),
        indexed_vectors_count=sum(s.indexed_vectors() for s in segments),
        segments_count=len(segments),
        payload_schema=payload_schema,
        optimizations=running,
        optimizer_error=optimizer.error,
        last_applied_version=version,
        segments=[(s.id, s.live_count) for s in segments],
    )
