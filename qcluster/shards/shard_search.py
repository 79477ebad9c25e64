"""Search over a snapshot (tuple) of a shard's segments, for every kind of vector.

``using`` picks the kind: a dense name (ANN / exact per ``segment_search``), a multivector name
(exact MaxSim, ``multivector``) or a sparse name (inverted index, exact dot products, IDF when the
name has ``modifier: idf``; ``sparse/search``). Per-segment results are merged by score and
de-duplicated by point id (a point being moved between segments may show up twice for a moment).

Dense requests that share vector name, filter, parameters, threshold and depth run as one batch:
one planner decision and one FAISS call per segment (``segment_search.Query``).

Work follows the data, not the numbers in a request: ``limit + offset`` is clamped to the points
the shard holds before anything is allocated (a larger limit returns every match), and every loop
over segments checks the request's deadline (``qcluster.deadline``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from qcluster import deadline
from qcluster.errors import BadInputError
from qcluster.models.config import ShardConfig, SparseVectorParams, VectorParams
from qcluster.shards.base import FilterJson, ScoredPoint, SearchRequest, VectorSelector
from qcluster.shards.distance import UNIT_TOLERANCE, higher_is_better, preprocess
from qcluster.shards.filters import Filter, evaluate, parse_filter
from qcluster.shards.multivector import search_multi
from qcluster.shards.payload_ops import select_payload
from qcluster.shards.segment import Segment, StoredVector
from qcluster.shards.segment_search import Query, search_segment
from qcluster.shards.sparse.search import search_sparse, shard_idf
from qcluster.shards.sparse.vector import SparseVector
from qcluster.types import PointId

Mask = npt.NDArray[np.bool_]
F32 = npt.NDArray[np.float32]
SMALL_MERGE = 64  # hits per segment up to which one query's merge runs in plain Python
_NONE_GONE = [False] * SMALL_MERGE
Hits = list[tuple[float, int, int]]  # (sort key: smaller is better, segment index, offset)


def filter_masks(segments: Sequence[Segment], raw: FilterJson | None) -> list[Mask | None]:
    """The filter's mask per segment. A condition that a key's payload index cannot answer (a
    text match on a uuid index, ...) is checked on the payloads, as Qdrant does."""
    if raw is None:
        return [None] * len(segments)
    flt = parse_filter(raw)
    masks: list[Mask | None] = []
    for seg in segments:
        deadline.check()
        masks.append(evaluate(flt, seg) if seg.size else np.zeros(0, dtype=np.bool_))
    return masks


def parsed_filter(raw: FilterJson | None) -> Filter | None:
    """The parsed filter (parses are cached by their JSON in ``parse_filter``)."""
    return None if raw is None else parse_filter(raw)


def point_vectors(seg: Segment, off: int, sel: VectorSelector) -> dict[str, StoredVector] | None:
    if not sel.enabled:
        return None
    return seg.point_vectors(
        off, sel.names if sel.names is None else tuple(n for n in sel.names if n in seg.has_vec)
    )


def search(
    segments: Sequence[Segment],
    config: ShardConfig,
    requests: Sequence[SearchRequest],
    parsed: Sequence[Filter] | None = None,
) -> list[list[ScoredPoint]]:
    """Answer every request: plain dense ones grouped into batches (one planner decision and one
    FAISS call per segment per group), sparse, multivector and IDF requests one by one.
    ``parsed``: the parse of a single request's filter, when the caller has it at hand."""
    if len(requests) == 1:  # the common case, no grouping
        req = requests[0]
        sparse = config.sparse_vectors.get(req.using)
        if sparse is not None:
            return [_search_sparse(segments, sparse, req)]
        if _plain_dense(config, req):
            flt = parsed[0] if parsed else parsed_filter(req.filter)
            return [_search_dense(segments, config, req, flt)]
        return [_search_one(segments, config, req)]
    out: list[list[ScoredPoint]] = [[] for _ in requests]
    groups: dict[tuple[Any, ...], list[tuple[int, F32]]] = {}
    filters: dict[int, Filter | None] = {}
    live_total = sum(seg.live_count for seg in segments)
    for i, req in enumerate(requests):
        if not _plain_dense(config, req):
            out[i] = _search_one(segments, config, req)
            continue
        vec = _query_vector(config, req)
        k = min(req.limit + req.offset, live_total)
        if k == 0:
            continue
        flt = parsed_filter(req.filter)
        filters[id(flt)] = flt
        key = (req.using, id(flt), req.params, req.score_threshold, k)
        groups.setdefault(key, []).append((i, vec))
    live = [seg for seg in segments if seg.live_count]
    for (using, fid, params, threshold, k), members in groups.items():
        params_v = config.vectors[using]
        stacked = members[0][1] if len(members) == 1 else np.concatenate([v for _, v in members])
        query = Query(
            stacked, using, k, params_v.distance, config.hnsw_for(using), params, threshold, filters[fid]
        )
        per_segment = _per_segment(live, query)
        high = higher_is_better(params_v.distance)
        for row, (i, _) in enumerate(members):
            out[i] = _merge_dense(requests[i], per_segment, row, high)
    return out


def _live(segments: Sequence[Segment]) -> tuple[list[Segment], int]:
    """The segments holding live points, and how many they hold (one pass)."""
    live = []
    total = 0
    for seg in segments:
        n = len(seg.offsets)  # live points
        if n:
            live.append(seg)
            total += n
    return live, total


def _search_dense(
    segments: Sequence[Segment], config: ShardConfig, req: SearchRequest, flt: Filter | None
) -> list[ScoredPoint]:
    """One plain dense request with its parsed filter (what ``search`` does for a group of one)."""
    vec = _query_vector(config, req)
    live, total = _live(segments)
    k = min(req.limit + req.offset, total)
    if k == 0:
        return []
    params_v = config.vectors[req.using]
    query = Query(
        vec,
        req.using,
        k,
        params_v.distance,
        config.hnsw_for(req.using),
        req.params,
        req.score_threshold,
        flt,
    )
    return _merge_dense(req, _per_segment(live, query), 0, higher_is_better(params_v.distance))


def _per_segment(
    segments: Sequence[Segment], query: Query
) -> list[tuple[Segment, F32, npt.NDArray[np.int64]]]:
    """``search_segment`` on each segment, checking the request's deadline before each."""
    out = []
    for seg in segments:
        deadline.check()
        out.append((seg, *search_segment(seg, query)))
    return out


def _plain_dense(config: ShardConfig, req: SearchRequest) -> bool:
    """A request for a single-vector dense name without IDF parameters (the batched path)."""
    params = config.vectors.get(req.using)
    return (
        params is not None
        and not params.multi
        and not isinstance(req.vector, SparseVector)
        and req.params.idf_corpus is None
        and req.limit >= 0
        and req.offset >= 0
    )


def _query_vector(config: ShardConfig, req: SearchRequest) -> F32:
    """The request's vector as a float32 row, validated (BadInputError naming the field) and
    preprocessed for its distance (Cosine: unit length)."""
    params = config.vectors[req.using]
    vec = np.asarray(req.vector, dtype=np.float32)
    if vec.ndim != 1:
        raise BadInputError(f"`{req.using or 'vector'}` is not a multivector: expected one vector", "vector")
    if len(vec) != params.size:
        raise BadInputError(f"Vector dimension error: expected dim: {params.size}, got {len(vec)}", "vector")
    dot32 = vec.dot(vec)
    dot = float(dot32)
    if not math.isfinite(dot) and not np.isfinite(vec).all():
        raise BadInputError("query vector values must be finite numbers", "vector")
    if params.distance == "Cosine" and 0 < dot < math.inf:  # unit length, as ``preprocess`` stores
        # the float32 square root (as ``preprocess``): sqrt of the float64 value, rounded once
        norm = float(np.float32(math.sqrt(dot)))
        if abs(norm - 1.0) <= UNIT_TOLERANCE:  # kept bit for bit, as ``preprocess`` does
            row = vec[None]
            return row if vec.flags.c_contiguous else np.ascontiguousarray(row)
        return (vec / np.float32(norm))[None]
    if params.distance == "Cosine":
        return preprocess(vec.reshape(1, -1), "Cosine")
    return np.ascontiguousarray(vec.reshape(1, -1))


def _merge_dense(
    req: SearchRequest,
    per_segment: list[tuple[Segment, F32, npt.NDArray[np.int64]]],
    row: int,
    high: bool,
) -> list[ScoredPoint]:
    """One query's hits from every segment (row ``row`` of each segment's scores and offsets, -1
    offsets padding): best first, one per point id (a point moving between segments may show
    twice for a moment: the first, live copy wins), offset skipped. Only the returned hits get
    their payload and vectors. Dense and sparse searches end here."""
    payload_sel, vector_sel = req.with_payload, req.with_vector
    if len(per_segment) != 1:
        picked = _merge_segments(req, per_segment, row, high)
    else:
        seg, scores, offs = per_segment[0]
        o, s = offs[row], scores[row]
        end = req.offset + req.limit
        if len(o) <= SMALL_MERGE:  # a few hits: plain Python beats a chain of tiny numpy calls
            # (an empty slot, -1, reads the last flag: skipped anyway; no flag to read while every
            # offset of a sealed segment is live: a delete unlists its point before flagging it)
            whole = not seg.appendable and len(seg.offsets) == seg.size
            gone = _NONE_GONE[: len(o)] if whole else seg.deleted[o].tolist()
            if not payload_sel.enabled and not vector_sel.enabled:  # ids, versions and scores only
                ids = seg.ids
                at = o.tolist()
                if -1 not in at and not any(gone):  # every slot a live hit (the common case)
                    if req.offset or end < len(at):
                        o, s, at = o[req.offset : end], s[req.offset : end], at[req.offset : end]
                    return list(map(ScoredPoint, [ids[x] for x in at], seg.versions[o].tolist(), s.tolist()))
                return [
                    ScoredPoint(ids[off], version, sc)
                    for sc, off, version, dead in zip(
                        s.tolist(), o.tolist(), seg.versions[o].tolist(), gone, strict=True
                    )
                    if off >= 0 and not dead
                ][req.offset : end]
            live = [
                (sc, off)
                for sc, off, dead in zip(s.tolist(), o.tolist(), gone, strict=True)
                if off >= 0 and not dead
            ]
            picked = [(sc, off, seg) for sc, off in live[req.offset : end]]
        else:
            keep = (o >= 0) & ~seg.deleted[np.maximum(o, 0)]
            if not keep.all():
                o, s = o[keep], s[keep]
            o, s = o[req.offset : end], s[req.offset : end]
            picked = list(zip(s.tolist(), o.tolist(), (seg,) * len(o), strict=True))
    return [
        ScoredPoint(
            seg.ids[off],
            int(seg.versions[off]),
            score,
            select_payload(seg.payloads[off], payload_sel) if payload_sel.enabled else None,
            point_vectors(seg, off, vector_sel) if vector_sel.enabled else None,
        )
        for score, off, seg in picked
    ]


def _merge_segments(
    req: SearchRequest,
    per_segment: list[tuple[Segment, F32, npt.NDArray[np.int64]]],
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


def _search_one(segments: Sequence[Segment], config: ShardConfig, req: SearchRequest) -> list[ScoredPoint]:
    sparse = config.sparse_vectors.get(req.using)
    if sparse is not None:
        return _search_sparse(segments, sparse, req)
    if req.limit < 0 or req.offset < 0:
        raise BadInputError("limit and offset must be non-negative", "limit")
    # never more than there are points (a limit of u64::MAX must not allocate u64::MAX slots)
    k = min(req.limit + req.offset, sum(seg.live_count for seg in segments))
    if req.params.idf_corpus is not None:
        raise _not_idf(req.using)
    params = config.vectors.get(req.using)
    if params is None:
        raise BadInputError(f"Not existing vector name error: {req.using}", "using")
    if isinstance(req.vector, SparseVector):
        raise BadInputError(
            f"Conversion between sparse and regular vectors failed: `{req.using}` is a dense vector", "vector"
        )
    query = _dense_query(req.using, params, req.vector)
    if k == 0:
        return []
    high = higher_is_better(params.distance)
    if params.multi:
        return _merge(segments, _multi_hits(segments, params, req, query, k), req, high)
    return search(segments, config, [req])[0]  # the batched dense path


def _dense_query(name: str, params: VectorParams, raw: F32) -> F32:
    vec = np.asarray(raw, dtype=np.float32)
    if params.multi:
        if vec.ndim == 1:
            vec = vec.reshape(1, -1)  # a single dense vector queries a multivector as one row
        if vec.ndim != 2 or len(vec) == 0:
            raise BadInputError("multivector query: expected a non-empty list of vectors", "vector")
    else:
        if vec.ndim != 1:
            raise BadInputError(f"`{name or 'vector'}` is not a multivector: expected one vector", "vector")
        vec = vec.reshape(1, -1)
    if vec.shape[1] != params.size:
        raise BadInputError(
            f"Vector dimension error: expected dim: {params.size}, got {vec.shape[1]}", "vector"
        )
    if not np.isfinite(vec).all():
        raise BadInputError("query vector values must be finite numbers", "vector")
    return preprocess(vec, params.distance)


def _multi_hits(
    segments: Sequence[Segment], params: VectorParams, req: SearchRequest, query: F32, k: int
) -> Hits:
    masks = filter_masks(segments, req.filter)
    hits: Hits = []
    for si, seg in enumerate(segments):
        deadline.check()
        if seg.live_count == 0 or req.using not in seg.multi:
            continue
        allowed = seg.live_mask() & seg.vector_mask(req.using)
        mask = masks[si]
        if mask is not None:
            allowed &= mask[: seg.size]
        csr = seg.multi[req.using].as_csr(seg.size)
        scores, offs = search_multi(csr, query, k, params.distance, allowed, req.score_threshold)
        valid = offs >= 0
        sign = -1.0 if higher_is_better(params.distance) else 1.0
        hits.extend(
            (sign * s, si, off) for s, off in zip(scores[valid].tolist(), offs[valid].tolist(), strict=True)
        )
    return hits


def _not_idf(name: str) -> BadInputError:
    return BadInputError(
        f"params.idf: `{name}` is not a sparse vector with the `idf` modifier, so IDF parameters do not apply",
        "params.idf",
    )


def _search_sparse(
    segments: Sequence[Segment], params: SparseVectorParams, req: SearchRequest
) -> list[ScoredPoint]:
    """One request for a sparse name: each segment's best ``k`` (exact dot products, IDF-weighted
    query when the name has ``modifier: idf``), merged. Only segments with live points are read,
    for the IDF statistics too (a segment without live points adds nothing to them)."""
    if req.limit < 0 or req.offset < 0:
        raise BadInputError("limit and offset must be non-negative", "limit")
    corpus_raw = req.params.idf_corpus
    if corpus_raw is not None and not params.idf:
        raise _not_idf(req.using)
    query = req.vector
    if not isinstance(query, SparseVector):
        raise BadInputError(
            f"Conversion between sparse and regular vectors failed: `{req.using}` is a sparse vector",
            "vector",
        )
    live, points = _live(segments)
    # never more than there are points (a limit of u64::MAX must not allocate u64::MAX slots)
    k = min(req.limit + req.offset, points)
    return [] if k == 0 else _merge_sparse(req, _sparse_per_segment(live, params, req, k))


def _sparse_per_segment(
    live: Sequence[Segment], params: SparseVectorParams, req: SearchRequest, k: int
) -> list[tuple[Segment, F32, npt.NDArray[np.int64]]]:
    """Each segment's best ``k`` (one row of scores and offsets), for the segments with hits;
    ``live``: the segments with live points."""
    query = req.vector
    assert isinstance(query, SparseVector)
    name, corpus_raw = req.using, req.params.idf_corpus
    if params.idf:
        corpus = None if corpus_raw is None else filter_masks(live, corpus_raw)
        query = shard_idf(live, name, query, corpus)
    masks = None if req.filter is None else filter_masks(live, req.filter)
    threshold = req.score_threshold
    per_segment = []
    for i, seg in enumerate(live):
        deadline.check()
        scores, offs = search_sparse(seg, name, query, k, None if masks is None else masks[i], threshold)
        if len(offs):
            per_segment.append((seg, scores, offs))
    return per_segment


def _merge_sparse(
    req: SearchRequest, per_segment: list[tuple[Segment, F32, npt.NDArray[np.int64]]]
) -> list[ScoredPoint]:
    """``_merge_dense`` for the sparse hits of ``_search_sparse``; the hits of one segment alone
    (no payload or vectors asked) are turned into points directly."""
    if len(per_segment) != 1 or req.with_payload.enabled or req.with_vector.enabled:
        if not per_segment:
            return []
        rows = [(seg, scores.reshape(1, -1), offs.reshape(1, -1)) for seg, scores, offs in per_segment]
        return _merge_dense(req, rows, 0, high=True)
    seg, scores, offs = per_segment[0]
    if any(seg.deleted[offs].tolist()):  # deleted while this search ran
        return _merge_dense(req, [(seg, scores.reshape(1, -1), offs.reshape(1, -1))], 0, high=True)
    if req.offset or len(offs) > req.limit:
        end = req.offset + req.limit
        scores, offs = scores[req.offset : end], offs[req.offset : end]
    return list(
        map(
            ScoredPoint, map(seg.ids.__getitem__, offs.tolist()), seg.versions[offs].tolist(), scores.tolist()
        )
    )


def _merge(segments: Sequence[Segment], hits: Hits, req: SearchRequest, high: bool) -> list[ScoredPoint]:
    if len(segments) > 1:
        hits.sort()  # by key; ties keep segment order, then offset order (as appended)
    out: list[ScoredPoint] = []
    seen: set[PointId] = set()
    skipped = 0
    payload_sel, vector_sel = req.with_payload, req.with_vector
    for key, si, off in hits:
        seg = segments[si]
        pid = seg.ids[off]
        if pid in seen or seg.deleted[off]:
            continue
        seen.add(pid)
        if skipped < req.offset:
            skipped += 1
            continue
        out.append(
            ScoredPoint(
                pid,
                int(seg.versions[off]),
                -key if high else key,
                select_payload(seg.payloads[off], payload_sel) if payload_sel.enabled else None,
                point_vectors(seg, off, vector_sel) if vector_sel.enabled else None,
            )
        )
        if len(out) >= req.limit:
            break
    return out
