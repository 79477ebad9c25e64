"""The write side of a Collection: updates split per shard, Qdrant's conditional upserts.

An update is split per shard over the collection's routing and each part goes to its shard's
replica set, which writes every replica. Operations that name points which must exist (payload
and vector updates) are checked on every shard first when they span several, so a request is
rejected whole instead of being half-applied across shards. Every write passes the collection's
write gate (``gate.py``): a rebuild, or a shard snapshot being restored, holds it (``paused``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Literal

from qcluster.collection.gate import Gate
from qcluster.errors import NotFoundError
from qcluster.shards.base import NO_PAYLOAD, NO_VECTORS, ScrollRequest, UpdateResult
from qcluster.shards.operations import (
    SELECTOR_OPS,
    DeletePoints,
    PointsBatch,
    UpdateOperation,
    UpdateVectors,
    UpsertPoints,
    sub_batch,
)
from qcluster.shards.replica_env import DEFAULT_WRITE, WriteOptions
from qcluster.types import PointId

if TYPE_CHECKING:
    from qcluster.collection.collection import Collection

UpdateMode = Literal["upsert", "insert_only", "update_only"]


class CollectionWrites:
    def __init__(self, col: Collection):
        self.col = col
        self.gate = Gate()

    def paused(self) -> AbstractAsyncContextManager[None]:
        """Hold the collection's writes (in flight ones finish first) while the block runs."""
        return self.gate.exclusive()

    async def update(
        self, op: UpdateOperation, wait: bool = True, options: WriteOptions = DEFAULT_WRITE
    ) -> UpdateResult:
        await self.gate.enter()
        try:
            parts = self.col.holder.split(op, options.shard_keys)
            if len(parts) > 1:
                await self._require_existing(op)
            sets = self.col.holder.sets
            # a write spanning shards persists on each: one shard briefly unreachable (a replica
            # restarting) is waited out rather than leaving the other shards' parts applied alone
            persist = len(parts) > 1
            results = await asyncio.gather(
                *(
                    sets[sid].update(part, wait, options.ordering, persist=persist)
                    for sid, part in parts.items()
                )
            )
        finally:
            self.gate.leave()
        version = max((r.operation_id for r in results), default=0)
        return UpdateResult(version, "completed" if wait else "acknowledged")

    async def upsert(
        self,
        batch: PointsBatch,
        wait: bool = True,
        mode: UpdateMode = "upsert",
        update_filter: Mapping[str, Any] | None = None,
        options: WriteOptions = DEFAULT_WRITE,
    ) -> UpdateResult:
        """Upsert with Qdrant's conditions: ``insert_only`` skips existing points, ``update_only``
        skips new ones, ``update_filter`` updates only existing points matching it (new points are
        inserted regardless). The existence check and the write are two steps: a concurrent write
        of the same ids in between may be overwritten, as with any concurrent upserts."""
        if mode == "upsert" and update_filter is None:
            return await self.update(UpsertPoints(batch), wait, options)
        existing, allowed = await self._existing(batch.ids, update_filter)
        rows = [
            i
            for i, pid in enumerate(batch.ids)
            if (pid in allowed and mode != "insert_only") or (pid not in existing and mode != "update_only")
        ]
        if not rows:
            return UpdateResult(0, "completed" if wait else "acknowledged")
        return await self.update(UpsertPoints(sub_batch(batch, rows)), wait, options)

    async def update_vectors(
        self,
        batch: PointsBatch,
        wait: bool = True,
        update_filter: Mapping[str, Any] | None = None,
        options: WriteOptions = DEFAULT_WRITE,
    ) -> UpdateResult:
        if update_filter is None:
            return await self.update(UpdateVectors(batch), wait, options)
        existing, allowed = await self._existing(batch.ids, update_filter)
        missing = [pid for pid in batch.ids if pid not in existing]
        if missing:
            raise NotFoundError(f"No point with id {missing[0]} found")
        rows = [i for i, pid in enumerate(batch.ids) if pid in allowed]
        if not rows:
            return UpdateResult(0, "completed" if wait else "acknowledged")
        return await self.update(UpdateVectors(sub_batch(batch, rows)), wait, options)

    async def _existing(
        self, ids: Sequence[PointId], flt: Mapping[str, Any] | None
    ) -> tuple[set[PointId], set[PointId]]:
        """(ids that exist, the existing ids matching ``flt`` or all of them without one)."""
        existing = {r.id for r in await self.col.retrieve(ids, NO_PAYLOAD, NO_VECTORS)}
        if flt is None or not existing:
            return existing, existing
        page = await self.col.scroll(
            ScrollRequest(
                limit=len(existing),
                filter={"must": [flt, {"has_id": list(existing)}]},
                with_payload=NO_PAYLOAD,
            )
        )
        return existing, {r.id for r in page.points}

    async def _require_existing(self, op: UpdateOperation) -> None:
        ids: Sequence[PointId] = ()
        if isinstance(op, UpdateVectors):
            ids = op.batch.ids
        elif isinstance(op, SELECTOR_OPS) and not isinstance(op, DeletePoints) and op.selector.filter is None:
            ids = op.selector.ids or ()
        if not ids:
            return
        found = {r.id for r in await self.col.reads.retrieve(ids, NO_PAYLOAD, NO_VECTORS)}
        for pid in ids:
            if pid not in found:
                raise NotFoundError(f"No point with id {pid} found")
