"""Search over a snapshot (tuple) of a shard's segments, for every kind of vector.

``using`` picks the kind: a dense name (ANN / exact per ``segment_search``), a multivector name
(exact MaxSim, ``multivector``) or a sparse name (inverted index, exact dot products, IDF when the
name has ``modifier: idf``; ``sparse/search``). Per-segment results are merged by score and
de-duplicated by point id (a point being moved between segments may show up twice for a moment).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from qcluster.errors import BadInputError
from qcluster.models.config import ShardConfig, VectorParams
from qcluster.shards.base import FilterJson, ScoredPoint, SearchRequest, VectorSelector
from qcluster.shards.distance import higher_is_better, preprocess
from qcluster.shards.multivector import search_multi
from qcluster.shards.payload_ops import select_payload
from qcluster.shards.segment import Segment, StoredVector
from qcluster.shards.segment_search import search_segment
from qcluster.shards.sparse.search import search_sparse, shard_idf
from qcluster.shards.sparse.vector import SparseVector
from qcluster.types import PointId

Mask = npt.NDArray[np.bool_]
F32 = npt.NDArray[np.float32]
Hits = list[tuple[float, int, int]]  # (sort key: smaller is better, segment index, offset)


def filter_masks(segments: Sequence[Segment], raw: FilterJson | None) -> list[Mask | None]:
    """The filter's mask per segment. A condition that a key's payload index cannot answer (a
    text match on a uuid index, ...) is checked on the payloads, as Qdrant does."""
    if raw is None:
        return [None] * len(segments)
    from qcluster.shards.filters import evaluate, parse_filter

    flt = parse_filter(raw)
    return [evaluate(flt, seg) if seg.size else np.zeros(0, dtype=np.bool_) for seg in segments]


def point_vectors(seg: Segment, off: int, sel: VectorSelector) -> dict[str, StoredVector] | None:
    if not sel.enabled:
        return None
    return seg.point_vectors(
        off, sel.names if sel.names is None else tuple(n for n in sel.names if n in seg.has_vec)
    )


def search(
    segments: Sequence[Segment], config: ShardConfig, requests: Sequence[SearchRequest]
) -> list[list[ScoredPoint]]:
    return [_search_one(segments, config, req) for req in requests]


def _search_one(segments: Sequence[Segment], config: ShardConfig, req: SearchRequest) -> list[ScoredPoint]:
    if req.limit < 0 or req.offset < 0:
        raise BadInputError("limit and offset must be non-negative", "limit")
    # never more than there are points (a limit of u64::MAX must not allocate u64::MAX slots)
    k = min(req.limit + req.offset, sum(seg.live_count for seg in segments))
    sparse = config.sparse_vectors.get(req.using)
    if req.params.idf_corpus is not None and (sparse is None or not sparse.idf):
        raise BadInputError(
            f"params.idf: `{req.using}` is not a sparse vector with the `idf` modifier, so IDF parameters "
            "do not apply",
            "params.idf",
        )
    if req.using in config.sparse_vectors:
        if not isinstance(req.vector, SparseVector):
            raise BadInputError(
                f"Conversion between sparse and regular vectors failed: `{req.using}` is a sparse vector",
                "vector",
            )
        return [] if k == 0 else _merge(segments, _sparse_hits(segments, config, req, k), req, high=True)
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
    return _merge(segments, _dense_hits(segments, config, req, query, k), req, high)


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


def _dense_hits(
    segments: Sequence[Segment], config: ShardConfig, req: SearchRequest, query: F32, k: int
) -> Hits:
    params = config.vectors[req.using]
    hnsw = config.hnsw_for(req.using)
    masks = filter_masks(segments, req.filter)
    sign = -1.0 if higher_is_better(params.distance) else 1.0
    hits: Hits = []
    for si, seg in enumerate(segments):
        if seg.live_count == 0:
            continue
        scores, offs = search_segment(
            seg, query, req.using, k, params.distance, hnsw, req.params, req.score_threshold, masks[si]
        )
        valid = offs[0] >= 0
        for s, off in zip((scores[0][valid] * sign).tolist(), offs[0][valid].tolist(), strict=True):
            hits.append((s, si, off))
    return hits


def _multi_hits(
    segments: Sequence[Segment], params: VectorParams, req: SearchRequest, query: F32, k: int
) -> Hits:
    masks = filter_masks(segments, req.filter)
    hits: Hits = []
    for si, seg in enumerate(segments):
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


def _sparse_hits(segments: Sequence[Segment], config: ShardConfig, req: SearchRequest, k: int) -> Hits:
    query = req.vector
    assert isinstance(query, SparseVector)
    corpus_raw = req.params.idf_corpus
    if config.sparse_vectors[req.using].idf:
        corpus = None if corpus_raw is None else filter_masks(segments, corpus_raw)
        query = shard_idf(segments, req.using, query, corpus)
    masks = filter_masks(segments, req.filter)
    hits: Hits = []
    for si, seg in enumerate(segments):
        if seg.live_count == 0:
            continue
        scores, offs = search_sparse(seg, req.using, query, k, masks[si], req.score_threshold)
        valid = offs >= 0
        hits.extend(
            (-s, si, off) for s, off in zip(scores[valid].tolist(), offs[valid].tolist(), strict=True)
        )
    return hits


def _merge(segments: Sequence[Segment], hits: Hits, req: SearchRequest, high: bool) -> list[ScoredPoint]:
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
        out.append(
            ScoredPoint(
                id=pid,
                version=int(seg.versions[off]),
                score=-key if high else key,
                payload=select_payload(seg.payloads[off], req.with_payload),
                vector=point_vectors(seg, off, req.with_vector),
            )
        )
        if len(out) >= req.limit:
            break
    return out
