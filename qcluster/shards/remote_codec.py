"""Shard requests and results <-> ``points_internal.proto`` messages (both directions, pure).

Used by :mod:`remote_shard` (client) and the p2p servicer (server), so both sides share one
definition of every mapping. Vectors cross as raw float32 blobs, one per name and list of points
(multivectors and sparse vectors as CSR: an int64 row pointer, float32 rows / values and, for
sparse, uint32 indices); filters and payloads as JSON; update operations in the WAL record
encoding. Nothing is pickled.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import orjson

from qcluster.errors import BadInputError
from qcluster.proto_gen.v1 import points_internal_pb2 as pb
from qcluster.shards.base import (
    AnyVector,
    OrderBy,
    PayloadSelector,
    QuantizationSearchParams,
    Record,
    ScoredPoint,
    ScrollRequest,
    ScrollResult,
    SearchParams,
    SearchRequest,
    ShardInfo,
    VectorSelector,
)
from qcluster.shards.clock import ClockMap, ClockTag
from qcluster.shards.sparse.vector import SparseVector
from qcluster.types import PointId

F32 = npt.NDArray[np.float32]


# ------------------------------------------------------------------ small values
U32_MAX = 2**32 - 1
I64_MIN, I64_MAX = -(2**63), 2**63 - 1


def point_id_out(pid: PointId) -> pb.PointId:
    return pb.PointId(num=pid) if isinstance(pid, int) else pb.PointId(uuid=pid)


def point_id_in(msg: pb.PointId) -> PointId:
    kind = msg.WhichOneof("kind")
    if kind == "num":
        return int(msg.num)
    if kind == "uuid":
        return str(msg.uuid)
    raise BadInputError("point id: neither a number nor a uuid", "id")


def tag_out(tag: ClockTag | None) -> pb.ClockTag | None:
    return None if tag is None else pb.ClockTag(peer_id=tag.peer_id, clock_id=tag.clock_id, tick=tag.tick)


def tag_in(msg: pb.UpdateShardRequest) -> ClockTag | None:
    if not msg.HasField("clock"):
        return None
    return ClockTag(int(msg.clock.peer_id), int(msg.clock.clock_id), int(msg.clock.tick))


def clocks_out(clocks: ClockMap) -> pb.ClockMapResponse:
    return pb.ClockMapResponse(
        clocks=[pb.ClockTag(peer_id=t.peer_id, clock_id=t.clock_id, tick=t.tick) for t in clocks]
    )


def clocks_in(msg: pb.ClockMapResponse) -> ClockMap:
    return ClockMap.from_json([[c.peer_id, c.clock_id, c.tick] for c in msg.clocks])


def filter_out(raw: Mapping[str, Any] | None) -> str:
    return "" if raw is None else orjson.dumps(raw).decode()


def filter_in(text: str) -> Any:
    return orjson.loads(text) if text else None


def payload_selector_out(sel: PayloadSelector) -> pb.PayloadSelector:
    return pb.PayloadSelector(
        enabled=sel.enabled,
        has_include=sel.include is not None,
        include=list(sel.include or ()),
        exclude=list(sel.exclude),
    )


def payload_selector_in(msg: pb.PayloadSelector) -> PayloadSelector:
    return PayloadSelector(msg.enabled, tuple(msg.include) if msg.has_include else None, tuple(msg.exclude))


def vector_selector_out(sel: VectorSelector) -> pb.VectorSelector:
    return pb.VectorSelector(
        enabled=sel.enabled, has_names=sel.names is not None, names=list(sel.names or ())
    )


def vector_selector_in(msg: pb.VectorSelector) -> VectorSelector:
    return VectorSelector(msg.enabled, tuple(msg.names) if msg.has_names else None)


def _u32(value: int) -> int:
    """Sizes (limit, offset, hnsw_ef) as the wire carries them: past 2^32 - 1 a shard has nothing
    more to return, so larger values are clamped, not refused."""
    return min(max(value, 0), U32_MAX)


def _number_out(value: int | float | None) -> tuple[bool, float, bool, int]:
    if value is None:
        return False, 0.0, False, 0
    if isinstance(value, int) and I64_MIN <= value <= I64_MAX:
        return True, 0.0, True, value
    return True, float(value), False, 0


def _number_in(has: bool, as_float: float, is_int: bool, as_int: int) -> int | float | None:
    if not has:
        return None
    return int(as_int) if is_int else float(as_float)


# ------------------------------------------------------------------ vectors of a list of points
def _ragged_out(name: str, values: list[AnyVector | None], present: list[bool]) -> pb.VectorBlock:
    """Multivectors or sparse vectors of one name as a CSR block."""
    lengths = [0 if v is None else len(v) for v in values]
    indptr = np.zeros(len(values) + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    kept = [v for v in values if v is not None and len(v)]
    block = pb.VectorBlock(
        name=name,
        rows=len(values),
        indptr=indptr.tobytes(),
        present=b"" if all(present) else np.asarray(present, dtype=np.bool_).tobytes(),
    )
    if any(isinstance(v, SparseVector) for v in kept):
        sparse = [v for v in kept if isinstance(v, SparseVector)]
        block.sparse = True
        block.indices = b"".join(np.ascontiguousarray(v.indices, np.uint32).tobytes() for v in sparse)
        block.data = b"".join(np.ascontiguousarray(v.values, np.float32).tobytes() for v in sparse)
        return block
    mats = [np.asarray(v, dtype=np.float32) for v in kept if not isinstance(v, SparseVector)]
    block.dim = int(mats[0].shape[1]) if mats else 0
    block.data = b"".join(np.ascontiguousarray(m).tobytes() for m in mats)
    return block


def _ragged_in(b: pb.VectorBlock, count: int) -> list[AnyVector | None]:
    indptr = np.frombuffer(b.indptr, dtype=np.int64)
    total = int(indptr[-1]) if len(indptr) else 0
    if (
        b.rows != count
        or len(indptr) != count + 1
        or indptr[0] != 0
        or bool((np.diff(indptr) < 0).any())
        or len(b.data) != total * max(int(b.dim), 1) * 4
        or (b.sparse and len(b.indices) != total * 4)
    ):
        raise BadInputError(f"vector block {b.name!r}: size does not match its rows", "vectors")
    present = np.frombuffer(b.present, dtype=np.bool_) if b.present else None
    out: list[AnyVector | None] = []
    if b.sparse:
        idx = np.frombuffer(b.indices, dtype=np.uint32)
        vals = np.frombuffer(b.data, dtype=np.float32)
    else:
        rows = np.frombuffer(b.data, dtype=np.float32).reshape(total, int(b.dim))
    for i in range(count):
        if present is not None and not present[i]:
            out.append(None)
            continue
        lo, hi = int(indptr[i]), int(indptr[i + 1])
        if b.sparse:
            out.append(SparseVector(idx[lo:hi].copy(), vals[lo:hi].copy()))
        else:
            out.append(rows[lo:hi].copy())
    return out


def vectors_out(rows: Sequence[Mapping[str, AnyVector] | None]) -> list[pb.VectorBlock]:
    """The vectors of each point (by name) as one block per name."""
    names = sorted({n for r in rows if r for n in r})
    blocks = []
    for name in names:
        present = [r is not None and name in r for r in rows]
        first = next(r[name] for r in rows if r is not None and name in r)
        if isinstance(first, SparseVector) or np.asarray(first).ndim == 2:
            values = [r.get(name) if r is not None else None for r in rows]
            blocks.append(_ragged_out(name, values, present))
            continue
        dim = int(np.asarray(first).shape[-1])
        data = np.zeros((len(rows), dim), dtype=np.float32)
        for i, r in enumerate(rows):
            value = None if r is None else r.get(name)
            if value is not None and not isinstance(value, SparseVector):
                data[i] = value
        blocks.append(
            pb.VectorBlock(
                name=name,
                rows=len(rows),
                dim=dim,
                data=data.tobytes(),
                present=b"" if all(present) else np.asarray(present, dtype=np.bool_).tobytes(),
            )
        )
    return blocks


def vectors_in(blocks: Sequence[pb.VectorBlock], count: int) -> list[dict[str, AnyVector] | None]:
    out: list[dict[str, AnyVector] | None] = [None] * count
    for b in blocks:
        if b.indptr:
            for i, value in enumerate(_ragged_in(b, count)):
                if value is not None:
                    row = out[i]
                    if row is None:
                        row = out[i] = {}
                    row[b.name] = value
            continue
        if b.rows != count or len(b.data) != b.rows * b.dim * 4:
            raise BadInputError(f"vector block {b.name!r}: size does not match its rows", "vectors")
        data = np.frombuffer(b.data, dtype=np.float32).reshape(b.rows, b.dim)
        present = np.frombuffer(b.present, dtype=np.bool_) if b.present else None
        for i in range(count):
            if present is None or present[i]:
                row = out[i]
                if row is None:
                    row = out[i] = {}
                row[b.name] = data[i].copy()
    return out


# ------------------------------------------------------------------ points
def _payload_out(payload: Any) -> tuple[bytes, bool]:
    return (b"", False) if payload is None else (orjson.dumps(payload), True)


def _payload_in(raw: bytes, has: bool) -> Any:
    return orjson.loads(raw) if has else None


def scored_out(points: Sequence[ScoredPoint]) -> pb.SearchResult:
    msgs = []
    for p in points:
        payload, has = _payload_out(p.payload)
        msgs.append(
            pb.ScoredPoint(
                id=point_id_out(p.id), version=p.version, score=p.score, payload_json=payload, has_payload=has
            )
        )
    blocks = vectors_out([p.vector for p in points]) if any(p.vector for p in points) else []
    # Vectors of a result travel on its first point (one block per name for the whole list).
    if msgs and blocks:
        msgs[0].vectors.extend(blocks)
    return pb.SearchResult(points=msgs)


def scored_in(msg: pb.SearchResult) -> list[ScoredPoint]:
    points = list(msg.points)
    vectors = vectors_in(points[0].vectors, len(points)) if points and points[0].vectors else None
    return [
        ScoredPoint(
            point_id_in(p.id),
            int(p.version),
            float(p.score),
            _payload_in(p.payload_json, p.has_payload),
            None if vectors is None else vectors[i],
        )
        for i, p in enumerate(points)
    ]


def records_out(records: Sequence[Record]) -> list[pb.Record]:
    msgs = []
    for r in records:
        payload, has = _payload_out(r.payload)
        has_ov, ov, ov_int, ov_i = _number_out(r.order_value)
        msgs.append(
            pb.Record(
                id=point_id_out(r.id),
                payload_json=payload,
                has_payload=has,
                has_order_value=has_ov,
                order_value=ov,
                order_value_is_int=ov_int,
                order_value_int=ov_i,
            )
        )
    if msgs and any(r.vector for r in records):
        msgs[0].vectors.extend(vectors_out([r.vector for r in records]))
    return msgs


def records_in(msgs: Sequence[pb.Record]) -> list[Record]:
    msgs = list(msgs)
    vectors = vectors_in(msgs[0].vectors, len(msgs)) if msgs and msgs[0].vectors else None
    return [
        Record(
            point_id_in(m.id),
            _payload_in(m.payload_json, m.has_payload),
            None if vectors is None else vectors[i],
            _number_in(m.has_order_value, m.order_value, m.order_value_is_int, m.order_value_int),
        )
        for i, m in enumerate(msgs)
    ]


# ------------------------------------------------------------------ requests
def search_out(req: SearchRequest) -> pb.SearchQuery:
    p = req.params
    q = p.quantization
    params = pb.SearchParams(
        hnsw_ef=_u32(p.hnsw_ef or 0),
        exact=p.exact,
        has_quantization=q is not None,
        quantization_ignore=bool(q and q.ignore),
        quantization_rescore=0 if q is None or q.rescore is None else (2 if q.rescore else 1),
        quantization_oversampling=(q.oversampling or 0.0) if q is not None else 0.0,
        indexed_only=p.indexed_only,
        idf_corpus_json=filter_out(p.idf_corpus),
    )
    vec = req.vector
    sparse = isinstance(vec, SparseVector)
    values = vec.values if isinstance(vec, SparseVector) else vec
    rows = int(values.shape[0]) if not sparse and np.asarray(values).ndim == 2 else 0
    return pb.SearchQuery(
        using=req.using,
        vector=np.ascontiguousarray(values, dtype=np.float32).tobytes(),
        vector_rows=rows,
        sparse=sparse,
        sparse_indices=np.ascontiguousarray(vec.indices, np.uint32).tobytes()
        if isinstance(vec, SparseVector)
        else b"",
        limit=_u32(req.limit),
        offset=_u32(req.offset),
        filter_json=filter_out(req.filter),
        has_score_threshold=req.score_threshold is not None,
        score_threshold=req.score_threshold or 0.0,
        params=params,
        with_payload=payload_selector_out(req.with_payload),
        with_vector=vector_selector_out(req.with_vector),
    )


def search_in(q: pb.SearchQuery) -> SearchRequest:
    p = q.params
    quant = None
    if p.has_quantization:
        quant = QuantizationSearchParams(
            ignore=p.quantization_ignore,
            rescore=None if p.quantization_rescore == 0 else p.quantization_rescore == 2,
            oversampling=p.quantization_oversampling or None,
        )
    values = np.frombuffer(q.vector, dtype=np.float32).copy()
    vector: AnyVector = values
    if q.sparse:
        indices = np.frombuffer(q.sparse_indices, dtype=np.uint32).copy()
        if len(indices) != len(values):
            raise BadInputError("sparse query: indices and values differ in length", "vector")
        vector = SparseVector(indices, values)
    elif q.vector_rows:
        if len(values) % q.vector_rows:
            raise BadInputError("multivector query: size does not match its rows", "vector")
        vector = values.reshape(int(q.vector_rows), -1)
    return SearchRequest(
        vector=vector,
        using=q.using,
        limit=int(q.limit),
        offset=int(q.offset),
        filter=filter_in(q.filter_json),
        score_threshold=float(q.score_threshold) if q.has_score_threshold else None,
        params=SearchParams(
            hnsw_ef=int(p.hnsw_ef) or None,
            exact=p.exact,
            quantization=quant,
            indexed_only=p.indexed_only,
            idf_corpus=filter_in(p.idf_corpus_json),
        ),
        with_payload=payload_selector_in(q.with_payload),
        with_vector=vector_selector_in(q.with_vector),
    )


def scroll_out(shard: pb.ShardRef, req: ScrollRequest) -> pb.ScrollShardRequest:
    msg = pb.ScrollShardRequest(
        shard=shard,
        has_offset=req.offset is not None,
        limit=_u32(req.limit),
        filter_json=filter_out(req.filter),
        with_payload=payload_selector_out(req.with_payload),
        with_vector=vector_selector_out(req.with_vector),
        has_order_by=req.order_by is not None,
    )
    if req.offset is not None:
        msg.offset.CopyFrom(point_id_out(req.offset))
    if req.order_by is not None:
        has, as_float, is_int, as_int = _number_out(req.order_by.start_from)
        msg.order_by.CopyFrom(
            pb.OrderBy(
                key=req.order_by.key,
                direction=req.order_by.direction,
                has_start_from=has,
                start_from=as_float,
                start_from_is_int=is_int,
                start_from_int=as_int,
            )
        )
    return msg


def scroll_in(msg: pb.ScrollShardRequest) -> ScrollRequest:
    order_by = None
    if msg.has_order_by:
        o = msg.order_by
        direction: Literal["asc", "desc"] = "desc" if o.direction == "desc" else "asc"
        order_by = OrderBy(
            o.key,
            direction,
            _number_in(o.has_start_from, o.start_from, o.start_from_is_int, o.start_from_int),
        )
    return ScrollRequest(
        offset=point_id_in(msg.offset) if msg.has_offset else None,
        limit=int(msg.limit),
        filter=filter_in(msg.filter_json),
        with_payload=payload_selector_in(msg.with_payload),
        with_vector=vector_selector_in(msg.with_vector),
        order_by=order_by,
    )


def scroll_result_out(result: ScrollResult) -> pb.ScrollShardResponse:
    msg = pb.ScrollShardResponse(
        points=records_out(result.points), has_next_page_offset=result.next_page_offset is not None
    )
    if result.next_page_offset is not None:
        msg.next_page_offset.CopyFrom(point_id_out(result.next_page_offset))
    return msg


def scroll_result_in(msg: pb.ScrollShardResponse) -> ScrollResult:
    nxt = point_id_in(msg.next_page_offset) if msg.has_next_page_offset else None
    return ScrollResult(records_in(msg.points), nxt)


def info_out(info: ShardInfo) -> pb.ShardInfoResponse:
    body = {
        "status": info.status,
        "points_count": info.points_count,
        "indexed_vectors_count": info.indexed_vectors_count,
        "segments_count": info.segments_count,
        "payload_schema": info.payload_schema,
        "optimizer_error": info.optimizer_error,
        "last_applied_version": info.last_applied_version,
        "segments": info.segments,
    }
    return pb.ShardInfoResponse(info_json=orjson.dumps(body))


def info_in(msg: pb.ShardInfoResponse) -> ShardInfo:
    raw = orjson.loads(msg.info_json)
    return ShardInfo(
        status=raw["status"],
        points_count=int(raw["points_count"]),
        indexed_vectors_count=int(raw["indexed_vectors_count"]),
        segments_count=int(raw["segments_count"]),
        payload_schema=dict(raw["payload_schema"]),
        optimizer_error=raw.get("optimizer_error"),
        last_applied_version=int(raw.get("last_applied_version", 0)),
        segments=[(str(sid), int(n)) for sid, n in raw.get("segments", ())],  # (absent: older peers)
    )
