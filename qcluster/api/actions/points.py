"""Point operations shared by the REST and gRPC surfaces: writes (upsert, payload, vectors, batch),
retrieval, scroll, count, facet, payload indexes. Each takes the validated request model.

``wait``: True answers once the change is applied (``completed``); False once it is in the WAL
(``acknowledged``). ``ordering`` (weak / medium / strong) chooses which peer coordinates a
replicated write (``shards/replica_set.py``); a request's ``shard_key`` selects the shards of a
collection with custom sharding, for writes and reads alike. Reads take the request's
``service.limits`` (``bounds``): one whose estimated result memory is above ``max_response_mb`` is
refused before it runs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from qcluster.api.actions.batches import batch_from_columns, points_batch
from qcluster.collection import Collection
from qcluster.collection.query.budget import check_budget, records_want
from qcluster.collection.query.context import order_by_spec
from qcluster.collection.read_scope import parse_shard_keys, with_shard_keys
from qcluster.collection.strict import StrictMode, conditions
from qcluster.errors import BadInputError, BadRequestError, NotFoundError, UnprocessableInputError
from qcluster.models.collections import CollectionConfig
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
from qcluster.settings import LimitsSettings
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
from qcluster.shards.replica_env import Ordering, WriteOptions
from qcluster.types import PointId

UpsertBody = PointsListIn | PointsBatchIn
Timeout = str | float | None  # a request's timeout (seconds): ``?timeout=`` or gRPC's field
Step = Callable[[bool], Awaitable[UpdateResult]]
ORDERINGS: dict[str, Ordering] = {"weak": "weak", "medium": "medium", "strong": "strong"}


def write_options(ordering: str | None, shard_key: object) -> WriteOptions:
    """A write's ordering (``weak`` when absent) and shard key selector."""
    chosen = ORDERINGS.get(ordering or "weak")
    if chosen is None:
        raise BadInputError(f"ordering: expected weak, medium or strong, got {ordering!r}", "ordering")
    return WriteOptions(chosen, parse_shard_keys(shard_key))


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
    for i, p in enumerate(req.points):
        if p.vector is None or (isinstance(p.vector, dict) and not p.vector):
            raise UnprocessableInputError(
                f"[points[{i}].vector: must specify vectors to update for point]", f"points[{i}].vector"
            )
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


def check_vector_names(sel: VectorSelector, config: CollectionConfig) -> VectorSelector:
    """A ``with_vector`` list may only name vectors the collection has (400 otherwise)."""
    known = {*config.params.vectors, *(config.params.sparse_vectors or {})}
    for name in sel.names or ():
        if name not in known:
            raise BadInputError(f"Not existing vector name error: {name}", "with_vector")
    return sel


async def check_write(col: Collection, op: UpdateOperation, timeout: Timeout = None) -> None:
    """A write by selector before it applies: the vector names it removes exist; strict mode on its
    filter (indexed keys, sizes) and its cost (the points it names, or 1 + the filter's
    conditions)."""
    if isinstance(op, DeleteVectors):
        known = {*col.config.params.vectors, *(col.config.params.sparse_vectors or {})}
        for name in op.names:
            if name not in known:
                raise BadInputError(f"Not existing vector name error: {name}", "vector")
    sm = StrictMode(col)
    if not sm.on:
        return
    sm.timeout(timeout)
    sel = getattr(op, "selector", None)
    if sel is None:
        await sm.write_cost(1)
        return
    await sm.filter(sel.filter, write=True)
    cost = len(sel.ids) if sel.ids is not None else 0
    await sm.write_cost(cost + (1 + len(conditions(sel.filter)) if sel.filter is not None else 0))


def _strict_read(col: Collection, timeout: Timeout) -> StrictMode | None:
    """The collection's strict mode when it is on (with the request's timeout checked)."""
    sm = StrictMode(col)
    if not sm.on:
        return None
    sm.timeout(timeout)
    return sm


# ------------------------------------------------------------------------------ writes
SelectorBody = SelectorIn | SetPayloadIn | DeletePayloadIn | DeleteVectorsIn


async def upsert(col: Collection, req: UpsertBody, wait: bool, ordering: str | None) -> UpdateResult:
    options = write_options(ordering, req.shard_key)
    batch = upsert_batch(req, col)
    await StrictMode(col).upsert(batch)
    return await col.upsert(batch, wait, req.update_mode or "upsert", req.update_filter, options)


async def update_vectors(
    col: Collection, req: UpdateVectorsIn, wait: bool, ordering: str | None
) -> UpdateResult:
    options = write_options(ordering, req.shard_key)
    batch = vectors_batch(req, col)
    await StrictMode(col).upsert(batch, "update")
    return await col.update_vectors(batch, wait, req.update_filter, options)


async def apply(
    col: Collection,
    op: UpdateOperation,
    req: SelectorBody,
    wait: bool,
    ordering: str | None,
    timeout: Timeout = None,
) -> UpdateResult:
    """A selector operation (delete, payload, vector removal) built from ``req``."""
    await check_write(col, op, timeout)
    return await col.update(op, wait, write_options(ordering, req.shard_key))


async def step(col: Collection, item: BatchOpIn, ordering: str | None, timeout: Timeout = None) -> Step:
    """One batch operation, parsed and checked now, applied when called with ``wait``."""
    if isinstance(item, UpsertOp):
        up, batch = item.upsert, upsert_batch(item.upsert, col)
        await StrictMode(col).upsert(batch)
        up_options = write_options(ordering, up.shard_key)
        return lambda wait: col.upsert(batch, wait, up.update_mode or "upsert", up.update_filter, up_options)
    if isinstance(item, UpdateVectorsOp):
        uv, vbatch = item.update_vectors, vectors_batch(item.update_vectors, col)
        await StrictMode(col).upsert(vbatch, "update")
        uv_options = write_options(ordering, uv.shard_key)
        return lambda wait: col.update_vectors(vbatch, wait, uv.update_filter, uv_options)
    op: UpdateOperation
    part: SelectorBody
    if isinstance(item, DeleteOp):
        part = item.delete
        op = delete_op(part)
    elif isinstance(item, SetPayloadOp):
        part = item.set_payload
        op = set_payload_op(part)
    elif isinstance(item, OverwritePayloadOp):
        part = item.overwrite_payload
        op = overwrite_payload_op(part)
    elif isinstance(item, DeletePayloadOp):
        part = item.delete_payload
        op = delete_payload_op(part)
    elif isinstance(item, DeleteVectorsOp):
        part = item.delete_vectors
        op = delete_vectors_op(part)
    else:
        part = item.clear_payload
        op = clear_payload_op(part)
    await check_write(col, op, timeout)
    options = write_options(ordering, part.shard_key)
    return lambda wait: col.update(op, wait, options)


async def batch_update(
    col: Collection, items: Sequence[BatchOpIn], wait: bool, ordering: str | None, timeout: Timeout = None
) -> list[UpdateResult]:
    """Every operation is parsed (and its vectors checked) before the first one applies, so a bad
    one rejects the whole request. They apply in order; all but the last complete before the
    next starts (later operations may read what earlier ones wrote)."""
    steps = [await step(col, item, ordering, timeout) for item in items]
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
    await StrictMode(col).payload_index(field_name)
    return await col.update(CreateFieldIndex(field_name, field_schema), wait)


async def delete_index(col: Collection, field_name: str, wait: bool) -> UpdateResult:
    return await col.update(DeleteFieldIndex(field_name), wait)


# ------------------------------------------------------------------------------ reads
async def retrieve_one(col: Collection, pid: PointId) -> Record:
    recs = await col.retrieve([pid], PayloadSelector.parse(True), VectorSelector.parse(True))
    if not recs:
        raise NotFoundError(f"Point with id {pid} does not exists!")
    return recs[0]


async def retrieve(
    col: Collection, req: PointRequestIn, bounds: LimitsSettings, timeout: Timeout = None
) -> list[Record]:
    sm = _strict_read(col, timeout)
    if sm is not None:
        sm.read_cost(len(req.ids))
    with_payload = True if req.with_payload is None else req.with_payload
    want = records_want(col, len(req.ids), with_payload, req.with_vector, "ids")
    await check_budget(col, [want], bounds)
    work = col.retrieve(
        req.ids,
        PayloadSelector.parse(with_payload),
        check_vector_names(VectorSelector.parse(req.with_vector), col.config),
    )
    return await with_shard_keys(req.shard_key, work)


async def scroll(
    col: Collection, req: ScrollIn, bounds: LimitsSettings, timeout: Timeout = None
) -> ScrollResult:
    """Pages in id order with ``next_page_offset``; or ordered by a payload field (``order_by``,
    which needs a range index on it), where paging goes by ``start_from`` instead."""
    sm = _strict_read(col, timeout)
    if sm is not None:
        sm.query_limit(req.limit)
        await sm.filter(req.filter, write=False)
        sm.read_cost(1 + len(conditions(req.filter)))
    if req.order_by is not None and req.offset is not None:
        raise BadRequestError(
            "Cannot use an `offset` when using `order_by`. The alternative for paging is to use "
            "`order_by.start_from` and a filter to exclude the IDs that you've already seen for the "
            "`order_by.start_from` value",
            "offset",
        )
    limit = 10 if req.limit is None else req.limit
    with_payload = True if req.with_payload is None else req.with_payload
    want = records_want(col, limit, with_payload, req.with_vector, "limit")
    await check_budget(col, [want], bounds)
    scroll_req = ScrollRequest(
        offset=req.offset,
        limit=limit,
        filter=req.filter,
        with_payload=PayloadSelector.parse(with_payload),
        with_vector=check_vector_names(VectorSelector.parse(req.with_vector), col.config),
        order_by=None if req.order_by is None else order_by_spec(req.order_by, "order_by"),
    )
    return await with_shard_keys(req.shard_key, col.scroll(scroll_req))


async def count(col: Collection, req: CountIn, timeout: Timeout = None) -> int:
    sm = _strict_read(col, timeout)
    if sm is not None:
        sm.exact(req.exact)
        await sm.filter(req.filter, write=False)
        sm.read_cost(1 + len(conditions(req.filter)))
    return await with_shard_keys(req.shard_key, col.count(CountRequest(filter=req.filter, exact=req.exact)))


async def facet(col: Collection, req: FacetIn, timeout: Timeout = None) -> list[tuple[Any, int]]:
    """Counts of the values of ``key`` (which needs a keyword / integer / bool / uuid index)."""
    sm = _strict_read(col, timeout)
    if sm is not None:
        sm.query_limit(req.limit)
        sm.exact(req.exact)
        await sm.filter(req.filter, write=False)
        sm.read_cost(1 + len(conditions(req.filter)))
    limit = 10 if req.limit is None else req.limit
    return await with_shard_keys(req.shard_key, col.facet(req.key, req.filter, limit, bool(req.exact)))
