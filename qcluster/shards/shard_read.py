"""Read paths over a snapshot (tuple) of a shard's segments: search, scroll, count, retrieve, facet.

Run on the shard's search threads. A point is live in one segment, except for a moment while an
update moves it (copy-on-write): results are de-duplicated by point id, newest version first.

Work follows the data, not the numbers in a request: a search's ``limit + offset`` is clamped to
the points the shard holds before anything is allocated (a larger limit returns every match), and
every loop over segments or queries checks the request's deadline (``qcluster.deadline``).
"""

from __future__ import annotations

import heapq
import math
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
from qcluster.shards.distance import UNIT_TOLERANCE, higher_is_better, preprocess
from qcluster.shards.filters import Filter, check_index_types, evaluate, parse_filter
from qcluster.shards.payload_ops import select_payload
from qcluster.shards.segment import Segment
from qcluster.shards.segment_search import Query, search_segment
from qcluster.types import PointId, point_id_sort_key

if TYPE_CHECKING:
    from qcluster.shards.optimizer import Optimizer

Mask = npt.NDArray[np.bool_]


def _filter_masks(segments: Sequence[Segment], raw: FilterJson | None) -> list[Mask | None]:
    if raw is None:
        return [None] * len(segments)
    flt = _parsed_filter(segments, raw)
    assert flt is not None
    masks: list[Mask | None] = []
    for seg in segments:
        deadline.check()
        masks.append(evaluate(flt, seg) if seg.size else np.zeros(0, dtype=np.bool_))
    return masks


_checked: dict[tuple[int, tuple[int, ...]], tuple[Filter, BadInputError | None]] = {}


def _parsed_filter(segments: Sequence[Segment], raw: FilterJson | None) -> Filter | None:
    """The parsed filter, checked against the indexed types (a range on a keyword index is a
    400). Parses are cached by their JSON (``parse_filter``) and the check by the parsed object
    and the index schemas, so a repeated filter costs a dictionary lookup."""
    if raw is None:
        return None
    flt = parse_filter(raw)
    if not segments:
        return flt
    indexes = segments[-1].field_indexes
    key = (id(flt), tuple(map(id, indexes.values())))  # index objects change with their schema
    hit = _checked.get(key)
    if hit is None or hit[0] is not flt:
        error: BadInputError | None = None
        try:
            check_index_types(flt, {k: i.schema for k, i in indexes.items()})
        except BadInputError as exc:
            error = exc
        if len(_checked) > 4096:
            _checked.clear()
        hit = _checked[key] = (flt, error)
    if hit[1] is not None:
        raise hit[1]
    return flt


def _vectors(seg: Segment, off: int, sel: VectorSelector) -> dict[str, npt.NDArray[np.float32]] | None:
    if not sel.enabled:
        return None
    return seg.point_vectors(
        off, sel.names if sel.names is None else tuple(n for n in sel.names if n in seg.dims)
    )


def search(
    segments: Sequence[Segment], config: ShardConfig, requests: Sequence[SearchRequest]
) -> list[list[ScoredPoint]]:
    """Answer every request. Requests that share vector name, filter, parameters, threshold and
    depth run as one batch: one planner decision and one FAISS call per segment."""
    if len(requests) == 1:
        req = requests[0]
        vec = _query_vector(config, req)
        params_v = config.vectors[req.using]
        # Never more candidates than live points: a limit beyond them returns every match.
        k = min(req.limit + req.offset, sum(seg.live_count for seg in segments))
        if k == 0:
            return [[]]
        query = Query(
            vec,
            req.using,
            k,
            params_v.distance,
            config.hnsw_for(req.using),
            req.params,
            req.score_threshold,
            _parsed_filter(segments, req.filter),
        )
        per_segment = _per_segment([seg for seg in segments if seg.live_count], query)
        return [_merge(req, per_segment, 0, higher_is_better(params_v.distance))]
    out: list[list[ScoredPoint]] = [[] for _ in requests]
    groups: dict[tuple[Any, ...], list[tuple[int, npt.NDArray[np.float32]]]] = {}
    filters: dict[int, Filter | None] = {}
    live_points = sum(seg.live_count for seg in segments)
    for i, req in enumerate(requests):
        vec = _query_vector(config, req)
        k = min(req.limit + req.offset, live_points)  # a limit beyond the live points returns all
        if k == 0:
            continue
        flt = _parsed_filter(segments, req.filter)
        filters[id(flt)] = flt
        key = (req.using, id(flt), req.params, req.score_threshold, k)
        groups.setdefault(key, []).append((i, vec))
    live = [seg for seg in segments if seg.live_count]
    for (using, fid, params, threshold, k), members in groups.items():
        params_v = config.vectors[using]
        stacked = members[0][1] if len(members) == 1 else np.concatenate([v for _, v in members])
        query = Query(
            stacked,
            using,
            k,
            params_v.distance,
            config.hnsw_for(using),
            params,
            threshold,
            filters[fid],
        )
        per_segment = _per_segment(live, query)
        high = higher_is_better(params_v.distance)
        for row, (i, _) in enumerate(members):
            out[i] = _merge(requests[i], per_segment, row, high)
    return out


def _query_vector(config: ShardConfig, req: SearchRequest) -> npt.NDArray[np.float32]:
    """The request's vector as a float32 row, validated (BadInputError naming the field) and
    preprocessed for its distance (Cosine: unit length)."""
    params = config.vectors.get(req.using)
    if params is None:
        raise BadInputError(f"Not existing vector name error: {req.using}", "using")
    if req.limit < 0 or req.offset < 0:
        raise BadInputError("limit and offset must be non-negative", "limit")
    vec = np.asarray(req.vector, dtype=np.float32)
    if vec.ndim != 1:
        vec = vec.reshape(-1)
    if len(vec) != params.size:
        raise BadInputError(f"Vector dimension error: expected dim: {params.size}, got {len(vec)}", "vector")
    dot = np.dot(vec, vec)
    if not math.isfinite(dot) and not np.isfinite(vec).all():
        raise BadInputError("query vector values must be finite numbers", "vector")
    if params.distance == "Cosine" and 0 < dot < math.inf:  # unit length, as ``preprocess`` stores
        norm = float(np.sqrt(dot))
        if abs(norm - 1.0) <= UNIT_TOLERANCE:  # kept bit for bit, as ``preprocess`` does
            return np.ascontiguousarray(vec.reshape(1, -1))
        return (vec / np.float32(norm)).reshape(1, -1)
    if params.distance == "Cosine":
        return preprocess(vec.reshape(1, -1), "Cosine")
    return np.ascontiguousarray(vec.reshape(1, -1))


def _per_segment(
    segments: Sequence[Segment], query: Query
) -> list[tuple[Segment, npt.NDArray[np.float32], npt.NDArray[np.int64]]]:
    """``search_segment`` on each segment, checking the request's deadline before each."""
    out = []
    for seg in segments:
        deadline.check()
        out.append((seg, *search_segment(seg, query)))
    return out


def _merge(
    req: SearchRequest,
    per_segment: list[tuple[Segment, npt.NDArray[np.float32], npt.NDArray[np.int64]]],
    row: int,
    high: bool,
) -> list[ScoredPoint]:
    """One query's hits from every segment: best first, one per point id (a point moving between
    segments may show twice for a moment: the first, live copy wins), offset skipped. Only the
    returned hits get their payload and vectors."""
    payload_sel, vector_sel = req.with_payload, req.with_vector
    if len(per_segment) != 1:
        picked = _merge_segments(req, per_segment, row, high)
    elif req.limit + req.offset > 64:  # many hits: numpy selects them
        seg, scores, offs = per_segment[0]
        o = offs[row]
        keep = o >= 0
        keep[keep] = ~seg.deleted[o[keep]]
        o = o[keep][req.offset : req.offset + req.limit]
        s = scores[row][keep][req.offset : req.offset + req.limit]
        picked = list(zip(s.tolist(), o.tolist(), (seg,) * len(o), strict=True))
    else:  # offsets are distinct within a segment: no de-duplication, a plain loop is cheapest
        seg, scores, offs = per_segment[0]
        o, s = offs[row], scores[row]
        if o[-1] < 0:
            keep = o >= 0
            o, s = o[keep], s[keep]
        gone = seg.deleted[o]
        if gone.any():
            o, s = o[~gone], s[~gone]
        o, s = o[req.offset : req.offset + req.limit], s[req.offset : req.offset + req.limit]
        ids, payloads = seg.ids, seg.payloads
        return [
            ScoredPoint(
                ids[off],
                version,
                score,
                select_payload(payloads[off], payload_sel) if payload_sel.enabled else None,
                _vectors(seg, off, vector_sel) if vector_sel.enabled else None,
            )
            for off, version, score in zip(o.tolist(), seg.versions[o].tolist(), s.tolist(), strict=True)
        ]
    return [
        ScoredPoint(
            seg.ids[off],
            int(seg.versions[off]),
            score,
            select_payload(seg.payloads[off], payload_sel) if payload_sel.enabled else None,
            _vectors(seg, off, vector_sel) if vector_sel.enabled else None,
        )
        for score, off, seg in picked
    ]


def _merge_segments(
    req: SearchRequest,
    per_segment: list[tuple[Segment, npt.NDArray[np.float32], npt.NDArray[np.int64]]],
    row: int,
    high: bool,
) -> list[tuple[float, int, Segment]]:
    hits: list[tuple[float, int, Segment]] = []
    for seg, scores, offs in per_segment:
        o = offs[row]
        keep = o >= 0
        o, s = o[keep], scores[row][keep]
        if len(o):
            hits.extend(zip(s.tolist(), o.tolist(), (seg,) * len(o), strict=True))
    hits.sort(key=(lambda h: -h[0]) if high else (lambda h: h[0]))
    picked: list[tuple[float, int, Segment]] = []
    seen: set[PointId] = set()
    skipped = 0
    for hit in hits:
        seg, off = hit[2], hit[1]
        pid = seg.ids[off]
        if pid in seen or seg.deleted[off]:
            continue
        seen.add(pid)
        if skipped < req.offset:
            skipped += 1
            continue
        picked.append(hit)
        if len(picked) >= req.limit:
            break
    return picked


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
