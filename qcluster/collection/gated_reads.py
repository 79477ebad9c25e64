"""The read side of a Collection as callers see it: reads under the read gate.

Every read passes the collection's read gate (``gate.py``; a rebuild closes it for the instant of
its swap) and fans out over the shards (:mod:`reads`). A shard every replica says it does not know
was dropped from the agreed state on those peers first: once this peer applied that too, the read
runs again. ``Collection`` hands these methods out as its own (``col.search`` is
``GatedReads.search``: the one-query path is hot, so no call is added in between).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from qcluster.collection.gate import Gate
from qcluster.collection.reads import CollectionReads
from qcluster.errors import StaleShardViewError
from qcluster.shards.base import (
    CountRequest,
    PayloadSelector,
    Record,
    ScoredPoint,
    ScrollRequest,
    ScrollResult,
    SearchRequest,
    ShardInfo,
    VectorSelector,
)
from qcluster.shards.shard_holder import ShardHolder
from qcluster.types import PointId

STALE_VIEW_WAIT = 5.0  # seconds a read waits for this peer to apply a shard's removal
T = TypeVar("T")


class GatedReads:
    def __init__(self, holder: ShardHolder, reads: CollectionReads):
        self.holder = holder
        self.reads = reads
        self.gate = Gate()

    async def _read(self, fn: Callable[[], Awaitable[T]]) -> T:
        """One read under the read gate. A shard every replica says it does not know was dropped
        from the agreed state on those peers first: once this peer applied that too, read again."""
        await self.gate.enter()
        try:
            try:
                return await fn()
            except StaleShardViewError as exc:
                if not await self.holder.wait_dropped(exc.shard_id, STALE_VIEW_WAIT):
                    raise
                return await fn()
        finally:
            self.gate.leave()

    async def search(self, requests: Sequence[SearchRequest]) -> list[list[ScoredPoint]]:
        return await self._read(lambda: self.reads.search(requests))

    async def scroll(self, request: ScrollRequest) -> ScrollResult:
        return await self._read(lambda: self.reads.scroll(request))

    async def count(self, request: CountRequest) -> int:
        return await self._read(lambda: self.reads.count(request))

    async def retrieve(
        self, ids: Sequence[PointId], with_payload: PayloadSelector, with_vector: VectorSelector
    ) -> list[Record]:
        return await self._read(lambda: self.reads.retrieve(ids, with_payload, with_vector))

    async def facet(self, key: str, filter: Any, limit: int, exact: bool) -> list[tuple[Any, int]]:
        return await self._read(lambda: self.reads.facet(key, filter, limit, exact))

    async def info(self) -> ShardInfo:
        return await self._read(self.reads.info)
