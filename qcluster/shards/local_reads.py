"""The read side of a LocalShard: searches, scroll, count, retrieve, facet and info.

Reads run on the peer's search threads (``workers.py``) under the caller's deadline, except a
search cheap enough to answer on the loop without a thread hop (``cheap``): one query of modest
size, no unindexed data worth scanning, and no filter or a small one whose every condition a
payload index answers. ``LocalShard.search`` makes that decision itself (the one-query path is
hot); searches of a batch endpoint are coalesced per loop turn (``batching.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from qcluster import deadline
from qcluster.errors import QClusterError
from qcluster.shards import batching, load, shard_read, shard_search
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
from qcluster.shards.filters.conditions import FieldCondition, Filter, HasId, HasVector
from qcluster.shards.filters.parse import parse_small_filter
from qcluster.shards.filters.remembered import remembered_filter
from qcluster.shards.filters.shape import filter_shape
from qcluster.shards.sparse.search import INLINE_POSTINGS, inline_cost
from qcluster.shards.sparse.vector import SparseVector
from qcluster.shards.workers import Lane
from qcluster.types import PointId

if TYPE_CHECKING:
    from qcluster.shards.local_shard import LocalShard

CHEAP_FILTER_CONDITIONS = 32  # at most this many conditions for a filtered search on the loop


class LocalReads:
    def __init__(self, shard: LocalShard):
        self.shard = shard
        self.pool = Lane(shard.workers.search, shard.workers.sizes.search)
        self.coalescer = batching.Coalescer(self.search_now)
        self._indexed_filters: dict[int, tuple[Filter, tuple[str, ...] | None]] = {}

    async def _read(self, fn: Any, *args: Any) -> Any:
        """Run ``fn`` on a search thread under the caller's deadline (``qcluster.deadline``): the
        read stops at its next check once the request's deadline has passed; a read still queued
        when its request is cancelled never starts."""
        self.shard.check_open()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.pool, deadline.context().run, fn, *args)

    def cheap(self, requests: Sequence[SearchRequest], parsed: list[Filter] | None = None) -> bool:
        """One query of modest size, unfiltered or with a small filter that payload indexes
        answer, and little unindexed data to scan exactly. ``parsed`` (when given) receives the
        request's parsed filter when it was at hand, so the search need not look it up again."""
        if len(requests) != 1 or load.busy():
            return False
        req = requests[0]
        if req.params.exact or req.limit + req.offset > 1000:
            return False
        if req.filter is not None and not self._indexed_filter(req.filter, parsed):
            return False
        if req.using in self.shard.config.sparse_vectors:  # cost = postings read, not points
            if not isinstance(req.vector, SparseVector):
                return True  # fails fast inline with the same error
            return inline_cost(self.shard.set.segments, req.using, req.vector) <= INLINE_POSTINGS
        unindexed = 0
        for seg in self.shard.set.segments:
            if req.using not in seg.indexes:
                unindexed += len(seg.offsets)  # live points
        return unindexed <= 20_000

    def _indexed_filter(self, raw: Any, parsed: list[Filter] | None = None) -> bool:
        """A small filter whose every condition is answered by a payload index (so evaluating it
        is cheap); a large one goes to the search threads whatever its conditions. Remembered per
        parsed filter (parses are cached by their JSON): the keys its field conditions read (None
        when some leaf is of a kind no index answers), checked against the indexed keys."""
        indexed = self.shard.set.field_schemas
        key, known = remembered_filter(raw)  # a filter seen lately: its keys are remembered below
        hit = None if known is None else self._indexed_filters.get(id(known))
        if hit is not None and hit[0] is known:
            keys = hit[1]
            if keys is None:
                return False
            for k in keys:
                if k not in indexed:
                    return False
            if parsed is not None:
                parsed.append(hit[0])
            return True
        try:
            if known is None:
                flt = parse_small_filter(raw, key, CHEAP_FILTER_CONDITIONS)
            else:  # parsed before (a large one, on a search thread, or by another shard)
                small = (
                    filter_shape(raw, 2**31, CHEAP_FILTER_CONDITIONS).conditions <= CHEAP_FILTER_CONDITIONS
                )
                flt = known if small else None
        except QClusterError:
            return True  # fails fast inline with the same error
        if flt is None:
            return False  # a large filter: parsed and evaluated on a search thread
        keys = _index_keys(flt)
        if len(self._indexed_filters) > 1024:
            self._indexed_filters.clear()
        self._indexed_filters[id(flt)] = (flt, keys)
        if keys is None or any(k not in indexed for k in keys):
            return False
        if parsed is not None:
            parsed.append(flt)
        return True

    async def search_now(self, requests: Sequence[SearchRequest]) -> list[list[ScoredPoint]]:
        """Search inline when cheap, else on a search thread (what ``LocalShard.search`` does
        outside batches, and what a batch's coalesced searches run)."""
        shard = self.shard
        parsed: list[Filter] = []
        if self.cheap(requests, parsed):
            shard.check_open()
            return shard_search.search(tuple(shard.set.segments), shard.config, requests, parsed or None)
        result: list[list[ScoredPoint]] = await self._read(
            shard_search.search, tuple(shard.set.segments), shard.config, requests
        )
        return result

    async def scroll(self, request: ScrollRequest) -> ScrollResult:
        result: ScrollResult = await self._read(shard_read.scroll, tuple(self.shard.set.segments), request)
        return result

    async def count(self, request: CountRequest) -> int:
        result: int = await self._read(shard_read.count, tuple(self.shard.set.segments), request)
        return result

    async def retrieve(
        self, ids: Sequence[PointId], with_payload: PayloadSelector, with_vector: VectorSelector
    ) -> list[Record]:
        result: list[Record] = await self._read(
            shard_read.retrieve, tuple(self.shard.set.segments), ids, with_payload, with_vector
        )
        return result

    async def facet(self, key: str, filter: Any, limit: int) -> list[tuple[Any, int]]:
        result: list[tuple[Any, int]] = await self._read(
            shard_read.facet, tuple(self.shard.set.segments), key, filter, limit
        )
        return result

    def info(self) -> ShardInfo:
        shard = self.shard
        shard.check_open()
        return shard_read.info(
            tuple(shard.set.segments), shard.set.field_schemas, shard.optimizer, shard.applied_version
        )


def _index_keys(c: Any) -> tuple[str, ...] | None:
    """The keys of ``c``'s field conditions (it is answered by payload indexes when each has
    one), or None when some leaf is of a kind no index answers."""
    if isinstance(c, Filter):
        keys: list[str] = []
        for x in (*c.must, *c.should, *c.must_not, *(c.min_should.conditions if c.min_should else ())):
            sub = _index_keys(x)
            if sub is None:
                return None
            keys.extend(k for k in sub if k not in keys)
        return tuple(keys)
    if isinstance(c, FieldCondition):
        return (c.key,)
    return () if isinstance(c, HasId | HasVector) else None
