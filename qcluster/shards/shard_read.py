"""Read paths over a snapshot (tuple) of a shard's segments: search, scroll, count, retrieve, facet.

Run on the shard's search threads. A point is live in one segment, except for a moment while an
update moves it (copy-on-write): results are de-duplicated by point id, newest version first.

Work follows the data, not the numbers in a request: a search's ``limit + offset`` is clamped to
the points the shard holds before anything is allocated (a larger limit returns every match), and
every loop over segments or queries checks the request's deadline (``qcluster.deadline``).
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from qcluster import deadline
from qcluster.errors import BadInputError
from qcluster.models.config import ShardConfig
from qcluster.shards.base import (
    CountRequest,
    FilterJson,
    PayloadSelector,
    Record,
    ScoredPoint,
    ScrollRequest,
    ScrollResult,
    SearchRequest,
    ShardInfo,
    VectorSelector,
)
from qcluster.shards.distance import higher_is_better, preprocess
from qcluster.shards.payload_ops import select_payload
from qcluster.shards.segment import Segment
from qcluster.shards.segment_search import search_segment
from qcluster.types import PointId, point_id_sort_key

if TYPE_CHECKING:
    from qcluster.shards.optimizer import Optimizer

Mask = npt.NDArray[np.bool_]


def _filter_masks(segments: Sequence[Segment], raw: FilterJson | None) -> list[Mask | None]:
    if raw is None:
        return [None] * len(segments)
    from qcluster.shards.filters import check_index_types, evaluate, parse_filter

    flt = parse_filter(raw)
    if segments:
        check_index_types(flt, {k: i.schema for k, i in segments[-1].field_indexes.items()})
    masks: list[Mask | None] = []
    for seg in segments:
        deadline.check()
        masks.append(evaluate(flt, seg) if seg.size else np.zeros(0, dtype=np.bool_))
    return masks


def _vectors(seg: Segment, off: int, sel: VectorSelector) -> dict[str, npt.NDArray[np.float32]] | None:
    if not sel.enabled:
        return None
    return seg.point_vectors(
        off, sel.names if sel.names is None else tuple(n for n in sel.names if n in seg.dims)
    )


def search(
    segments: Sequence[Segment], config: ShardConfig, requests: Sequence[SearchRequest]
) -> list[list[ScoredPoint]]:
    out = []
    for req in requests:
        deadline.check()
        out.append(_search_one(segments, config, req))
    return out


def _search_one(segments: Sequence[Segment], config: ShardConfig, req: SearchRequest) -> list[ScoredPoint]:
    params = config.vectors.get(req.using)
    if params is None:
        raise BadInputError(f"Not existing vector name error: {req.using}", "using")
    if req.limit < 0 or req.offset < 0:
        raise BadInputError("limit and offset must be non-negative", "limit")
    vec = np.asarray(req.vector, dtype=np.float32).reshape(1, -1)
    if vec.shape[1] != params.size:
        raise BadInputError(
            f"Vector dimension error: expected dim: {params.size}, got {vec.shape[1]}", "vector"
        )
    if not np.isfinite(vec).all():
        raise BadInputError("query vector values must be finite numbers", "vector")
    # Never more candidates than live points: a limit beyond them returns every match.
    k = min(req.limit + req.offset, sum(seg.live_count for seg in segments))
    if k == 0:
        return []
    query = preprocess(vec, params.distance)
    hnsw = config.hnsw_for(req.using)
    masks = _filter_masks(segments, req.filter)
    better_high = higher_is_better(params.distance)
    hits: list[tuple[float, int, int]] = []  # (sort key, segment index, offset)
    for si, seg in enumerate(segments):
        if seg.live_count == 0:
            continue
        deadline.check()
        scores, offs = search_segment(
            seg, query, req.using, k, params.distance, hnsw, req.params, req.score_threshold, masks[si]
        )
        valid = offs[0] >= 0
        sign = -1.0 if better_high else 1.0
        for s, off in zip((scores[0][valid] * sign).tolist(), offs[0][valid].tolist(), strict=True):
            hits.append((s, si, off))
    if len(segments) > 1:
        hits.sort(key=lambda h: h[0])
    out: list[ScoredPoint] = []
    seen: set[PointId] = set()
    skipped = 0
    for key, si, off in hits:
        seg = segments[si]
        pid = seg.ids[off]
        if pid in seen or seg.deleted[off]:
            continue
        seen.add(pid)
        if skipped < req.offset:
            skipped += 1
            continue
        score = -key if better_high else key
        out.append(
            ScoredPoint(
                id=pid,
                version=int(seg.versions[off]),
                score=score,
                payload=select_payload(seg.payloads[off], req.with_payload),
                vector=_vectors(seg, off, req.with_vector),
            )
        )
        if len(out) >= req.limit:
            break
    return out


def _matching(segments: Sequence[Segment], raw: FilterJson | None) -> list[tuple[PointId, int, int]]:
    masks = _filter_masks(segments, raw)
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
            vector=_vectors(segments[si], off, req.with_vector),
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
            vector=_vectors(segments[si], off, req.with_vector),
            order_value=int(value) if float(value).is_integer() else value,
        )
        for value, pid, si, off in top
    ]
    return ScrollResult(points, None)


def count(segments: Sequence[Segment], req: CountRequest) -> int:
    if req.filter is None:
        return sum(seg.live_count for seg in segments)
    masks = _filter_masks(segments, req.filter)
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
                        vector=_vectors(seg, off, with_vector),
                    )
                )
                break
    return out


def facet(segments: Sequence[Segment], key: str, raw: FilterJson | None, limit: int) -> list[tuple[Any, int]]:
    masks = _filter_masks(segments, raw)
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
    )
