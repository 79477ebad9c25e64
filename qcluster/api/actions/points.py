"""Point operations shared by the REST and gRPC surfaces: writes (upsert, payload, vectors, batch),
retrieval, scroll, count, facet, payload indexes. Each takes the validated request model.

``wait``: True answers once the change is applied (``completed``); False once it is in the WAL
(``acknowledged``). ``ordering``, ``timeout`` and shard key selectors are accepted and ignored by
both surfaces alike (a collection on one peer has one ordering).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from qcluster.api.actions.batches import batch_from_columns, points_batch
from qcluster.collection import Collection
from qcluster.collection.query.context import order_by_spec
from qcluster.errors import BadInputError, NotFoundError
from qcluster.models.points import (
    BatchOpIn,
    DeleteOp,
    DeletePayloadIn,
    DeletePayloadOp,
    DeleteVectorsIn,
    DeleteVectorsOp,
    OverwritePayloadOp,
    PointRequestIn,
    PointsBatchIn,
    PointsListIn,
    SelectorIn,
    SetPayloadIn,
    SetPayloadOp,
    UpdateVectorsIn,
    UpdateVectorsOp,
    UpsertOp,
)
from qcluster.models.query import CountIn, FacetIn, ScrollIn
from qcluster.shards.base import (
    CountRequest,
    PayloadSelector,
    Record,
    ScrollRequest,
    ScrollResult,
    UpdateResult,
    VectorSelector,
)
from qcluster.shards.operations import (
    ClearPayload,
    CreateFieldIndex,
    DeleteFieldIndex,
    DeletePayload,
    DeletePoints,
    DeleteVectors,
    OverwritePayload,
    PointsBatch,
    PointSelector,
    SetPayload,
    UpdateOperation,
)
from qcluster.types import PointId

UpsertBody = PointsListIn | PointsBatchIn
Step = Callable[[bool], Awaitable[UpdateResult]]


# ------------------------------------------------------------------------------ operations
def selector(
    points: Sequence[PointId] | None, flt: Mapping[str, Any] | None, field: str = "points"
) -> PointSelector:
    """Qdrant's PointsSelector: ids, a filter, or (payload operations) both."""
    if points is None and flt is None:
        raise BadInputError("Either list of point ids or filter must be provided", field)
    return PointSelector(ids=None if points is None else tuple(points), filter=flt)


def upsert_batch(req: UpsertBody, col: Collection) -> PointsBatch:
    if isinstance(req, PointsBatchIn):
        return batch_from_columns(req.batch, col.config)
    return points_batch(
        [p.id for p in req.points],
        [p.vector for p in req.points],
        [p.payload for p in req.points],
        col.config,
    )


def vectors_batch(req: UpdateVectorsIn, col: Collection) -> PointsBatch:
    return points_batch([p.id for p in req.points], [p.vector for p in req.points], None, col.config)


def delete_op(req: SelectorIn) -> DeletePoints:
    return DeletePoints(selector(req.points, req.filter))


def set_payload_op(req: SetPayloadIn) -> SetPayload:
    return SetPayload(selector(req.points, req.filter), req.payload, req.key)


def overwrite_payload_op(req: SetPayloadIn) -> OverwritePayload:
    return OverwritePayload(selector(req.points, req.filter), req.payload)


def delete_payload_op(req: DeletePayloadIn) -> DeletePayload:
    return DeletePayload(selector(req.points, req.filter), tuple(req.keys))


def clear_payload_op(req: SelectorIn) -> ClearPayload:
    return ClearPayload(selector(req.points, req.filter))


def delete_vectors_op(req: DeleteVectorsIn) -> DeleteVectors:
    return DeleteVectors(selector(req.points, req.filter), tuple(req.vector))


# ------------------------------------------------------------------------------ writes
async def upsert(col: Collection, req: UpsertBody, wait: bool) -> UpdateResult:
    return await col.upsert(upsert_batch(req, col), wait, req.update_mode or "upsert", req.update_filter)


async def update_vectors(col: Collection, req: UpdateVectorsIn, wait: bool) -> UpdateResult:
    return await col.update_vectors(vectors_batch(req, col), wait, req.update_filter)


def step(col: Collection, item: BatchOpIn) -> Step:
    """One batch operation, parsed and checked now, applied when called with ``wait``."""
    if isinstance(item, UpsertOp):
        up, batch = item.upsert, upsert_batch(item.upsert, col)
        return lambda wait: col.upsert(batch, wait, up.update_mode or "upsert", up.update_filter)
    if isinstance(item, UpdateVectorsOp):
        uv, vbatch = item.update_vectors, vectors_batch(item.update_vectors, col)
        return lambda wait: col.update_vectors(vbatch, wait, uv.update_filter)
    op: UpdateOperation
    if isinstance(item, DeleteOp):
        op = delete_op(item.delete)
    elif isinstance(item, SetPayloadOp):
        op = set_payload_op(item.set_payload)
    elif isinstance(item, OverwritePayloadOp):
        op = overwrite_payload_op(item.overwrite_payload)
    elif isinstance(item, DeletePayloadOp):
        op = delete_payload_op(item.delete_payload)
    elif isinstance(item, DeleteVectorsOp):
        op = delete_vectors_op(item.delete_vectors)
    else:
        op = clear_payload_op(item.clear_payload)
    return lambda wait: col.update(op, wait)


async def batch_update(col: Collection, items: Sequence[BatchOpIn], wait: bool) -> list[UpdateResult]:
    """Every operation is parsed (and its vectors checked) before the first one applies, so a bad
    one rejects the whole request. They apply in order; all but the last complete before the
    next starts (later operations may read what earlier ones wrote)."""
    steps = [step(col, item) for item in items]
    results = []
    for i, run in enumerate(steps):
        result = await run(wait or i < len(steps) - 1)
        results.append(UpdateResult(result.operation_id, "completed" if wait else "acknowledged"))
    return results


async def create_index(col: Collection, field_name: str, field_schema: Any, wait: bool) -> UpdateResult:
    if field_schema is None:
        raise BadInputError(
            f"field_schema: a payload index on `{field_name}` needs a schema (keyword, integer, ...)",
            "field_schema",
        )
    return await col.update(CreateFieldIndex(field_name, field_schema), wait)


async def delete_index(col: Collection, field_name: str, wait: bool) -> UpdateResult:
    return await col.update(DeleteFieldIndex(field_name), wait)


# ------------------------------------------------------------------------------ reads
async def retrieve_one(col: Collection, pid: PointId) -> Record:
    recs = await col.retrieve([pid], PayloadSelector.parse(True), VectorSelector.parse(True))
    if not recs:
        raise NotFoundError(f"Point with id {pid} does not exists!")
    return recs[0]


async def retrieve(col: Collection, req: PointRequestIn) -> list[Record]:
    return await col.retrieve(
        req.ids,
        PayloadSelector.parse(True if req.with_payload is None else req.with_payload),
        VectorSelector.parse(req.with_vector),
    )


async def scroll(col: Collection, req: ScrollIn) -> ScrollResult:
    """Pages in id order with ``next_page_offset``; or ordered by a payload field (``order_by``,
    which needs a range index on it), where paging goes by ``start_from`` instead."""
    return await col.scroll(
        ScrollRequest(
            offset=req.offset,
            limit=10 if req.limit is None else req.limit,
            filter=req.filter,
            with_payload=PayloadSelector.parse(True if req.with_payload is None else req.with_payload),
            with_vector=VectorSelector.parse(req.with_vector),
            order_by=None if req.order_by is None else order_by_spec(req.order_by, "order_by"),
        )
    )


async def count(col: Collection, req: CountIn) -> int:
    return await col.count(CountRequest(filter=req.filter, exact=req.exact))


async def facet(col: Collection, req: FacetIn) -> list[tuple[Any, int]]:
    """Counts of the values of ``key`` (which needs a keyword / integer / bool / uuid index)."""
    return await col.facet(req.key, req.filter, 10 if req.limit is None else req.limit, bool(req.exact))
