"""Applying update operations to a shard's segments (the update thread's work), and resolving
selectors and checking existence before an operation is written to the WAL.

Everything here runs on the shard's single update thread, so segment mutations never race each
other; searches read concurrently.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from qcluster.errors import BadInputError, NotFoundError
from qcluster.models.config import ShardConfig, VectorParams
from qcluster.shards import payload_ops, segment_store
from qcluster.shards.base import AnyVector
from qcluster.shards.distance import preprocess
from qcluster.shards.operations import (
    SELECTOR_OPS,
    ClearPayload,
    Column,
    CreateFieldIndex,
    DeleteFieldIndex,
    DeletePayload,
    DeletePoints,
    DeleteVectors,
    MultiColumn,
    NamedVectors,
    OverwritePayload,
    PointsBatch,
    SetPayload,
    UpdateOperation,
    UpdateVectors,
    UpsertPoints,
    with_ids,
)
from qcluster.shards.segment import Segment
from qcluster.types import PointId

F32 = npt.NDArray[np.float32]


class SegmentSet:
    """The ordered segments of one shard; the appendable one is always last."""

    def __init__(self, segments: Sequence[Segment], config: ShardConfig):
        self.segments: list[Segment] = list(segments)
        self.config = config
        self.field_schemas: dict[str, Any] = {}

    @property
    def appendable(self) -> Segment:
        return self.segments[-1]

    def locate(self, pid: PointId) -> tuple[Segment, int] | None:
        for seg in self.segments:
            off = seg.offsets.get(pid)
            if off is not None:
                return seg, off
        return None

    # ------------------------------------------------------------------ before the WAL
    def resolve(self, op: UpdateOperation) -> UpdateOperation:
        """Turn a filter selector into explicit ids; reject ids that don't exist where Qdrant does."""
        if isinstance(op, SELECTOR_OPS):
            sel = op.selector
            if sel.filter is not None:
                from qcluster.shards.filters import evaluate, parse_filter

                flt = parse_filter(sel.filter)
                ids: list[PointId] = []
                for seg in self.segments:
                    if seg.size == 0:
                        continue
                    mask = evaluate(flt, seg)[: seg.size] & seg.live_mask()
                    ids.extend(seg.ids[int(o)] for o in np.flatnonzero(mask))
                if sel.ids is not None:
                    wanted = set(sel.ids)
                    ids = [i for i in ids if i in wanted]
                return with_ids(op, tuple(ids))
            if not isinstance(op, DeletePoints):
                self._require_existing(sel.ids or ())
        elif isinstance(op, UpdateVectors):
            self._require_existing(op.batch.ids)
        return op

    def _require_existing(self, ids: Sequence[PointId]) -> None:
        for pid in ids:
            if self.locate(pid) is None:
                raise NotFoundError(f"No point with id {pid} found")

    # ------------------------------------------------------------------ apply
    def apply(self, op: UpdateOperation, version: int) -> None:
        if isinstance(op, UpsertPoints):
            self._upsert(op.batch, version)
        elif isinstance(op, DeletePoints):
            for pid in op.selector.ids or ():
                self._delete(pid, version)
        elif isinstance(op, SetPayload):
            self._map_payload(
                op.selector.ids, lambda p: payload_ops.set_payload(p, op.payload, op.key), version
            )
        elif isinstance(op, OverwritePayload):
            self._map_payload(op.selector.ids, lambda p: dict(op.payload), version)
        elif isinstance(op, DeletePayload):
            self._map_payload(op.selector.ids, lambda p: payload_ops.delete_keys(p, op.keys), version)
        elif isinstance(op, ClearPayload):
            self._map_payload(op.selector.ids, lambda p: None, version)
        elif isinstance(op, UpdateVectors):
            self._update_vectors(op.batch, version)
        elif isinstance(op, DeleteVectors):
            for pid in op.selector.ids or ():
                found = self.locate(pid)
                if found is not None:
                    found[0].delete_vectors_at(found[1], op.names, version)
        elif isinstance(op, CreateFieldIndex):
            self.create_field_index(op.field_name, op.field_schema)
        elif isinstance(op, DeleteFieldIndex):
            self.field_schemas.pop(op.field_name, None)
            for seg in self.segments:
                seg.drop_field_index(op.field_name)

    def create_field_index(self, key: str, raw_schema: Any) -> None:
        from qcluster.shards.payload_index import build_index, parse_field_schema

        schema = parse_field_schema(raw_schema)
        self.field_schemas[key] = raw_schema
        for seg in self.segments:
            if not segment_store.restore_field_index(seg, key, schema):  # sealed segments keep theirs on disk
                seg.set_field_index(key, build_index(key, schema, _live_payloads(seg)))

    def new_field_indexes(self, seg: Segment) -> None:
        """Give a new segment the shard's payload indexes."""
        if not self.field_schemas:
            return
        from qcluster.shards.payload_index import build_index, parse_field_schema

        for key, raw in self.field_schemas.items():
            seg.set_field_index(key, build_index(key, parse_field_schema(raw), _live_payloads(seg)))

    def preprocess_batch(self, batch: PointsBatch) -> dict[str, Column]:
        """Columns as stored: datatype applied (uint8 / float16), Cosine rows unit length."""
        out: dict[str, Column] = {}
        for name, col in batch.vectors.items():
            if name in self.config.sparse_vectors:
                out[name] = col
                continue
            params = self.config.vectors.get(name)
            if params is None:
                raise BadInputError(f"Not existing vector name error: {name}", f"vectors.{name}")
            if isinstance(col, MultiColumn):
                out[name] = MultiColumn(col.indptr, _stored(col.data, params), col.present)
            elif isinstance(col, NamedVectors):
                out[name] = NamedVectors(_stored(col.data, params), col.present)
        return out

    def _upsert(self, batch: PointsBatch, version: int) -> None:
        vectors = self.preprocess_batch(batch)
        last: dict[PointId, int] = {}
        for i, pid in enumerate(batch.ids):
            last[pid] = i
        app = self.appendable
        fresh: list[int] = []
        for pid, i in last.items():
            if pid in app.offsets:
                app.put_point(pid, {n: c.row(i) for n, c in vectors.items()}, _payload_at(batch, i), version)
                continue
            for seg in self.segments[:-1]:
                if seg.delete(pid, version):
                    break
            fresh.append(i)
        if not fresh:
            return
        rows = np.asarray(fresh, dtype=np.int64)
        whole = len(fresh) == len(batch.ids)
        dense: dict[str, tuple[F32, npt.NDArray[np.bool_] | None]] = {}
        ragged: dict[str, list[Any]] = {}
        for n, c in vectors.items():
            if isinstance(c, NamedVectors):
                d, p = c.data, c.present
                dense[n] = (d if whole else d[rows], None if p is None else (p if whole else p[rows]))
            else:
                ragged[n] = [c.row(i) for i in fresh]
        pids = [batch.ids[i] for i in fresh]
        payloads = [_payload_at(batch, i) for i in fresh]
        app.put_many(pids, dense, payloads, version, ragged)

    def _delete(self, pid: PointId, version: int) -> None:
        for seg in self.segments:
            if seg.delete(pid, version):
                return

    def _map_payload(self, ids: Sequence[PointId] | None, fn: Any, version: int) -> None:
        for pid in ids or ():
            found = self.locate(pid)
            if found is None:
                continue
            seg, off = found
            seg.set_payload_at(off, fn(seg.payloads[off]), version)

    def _update_vectors(self, batch: PointsBatch, version: int) -> None:
        vectors = self.preprocess_batch(batch)
        app = self.appendable
        for i, pid in enumerate(batch.ids):
            new = {n: v for n, c in vectors.items() if (v := c.row(i)) is not None}
            found = self.locate(pid)
            if found is None:
                continue
            seg, off = found
            if seg is app:
                seg.set_vectors_at(off, new, version)
                continue
            # Sealed vectors never change: move the point to the appendable segment.
            merged: dict[str, AnyVector | None] = dict(seg.point_vectors(off))
            merged.update(new)
            payload = seg.payloads[off]
            seg.delete(pid, version)
            app.put_point(pid, merged, payload, version)


def _live_payloads(seg: Segment) -> Iterator[tuple[int, dict[str, Any] | None]]:
    return ((offset, seg.payloads[offset]) for _, offset in seg.iter_live())


def _stored(data: F32, params: VectorParams) -> F32:
    """Vectors as the datatype stores them (uint8: truncated into 0..255, float16: rounded),
    then preprocessed for the distance."""
    if params.datatype == "uint8":
        data = np.clip(np.trunc(data), 0, 255).astype(np.float32)
    elif params.datatype == "float16":
        data = data.astype(np.float16).astype(np.float32)
    return preprocess(data, params.distance)


def _payload_at(batch: PointsBatch, i: int) -> dict[str, Any] | None:
    if batch.payloads is None:
        return None
    p = batch.payloads[i]
    return dict(p) if isinstance(p, Mapping) else None
