"""Reads of one collection over its shards: fan out to one replica set per shard, merge.

Each shard is read through its :class:`ReplicaSet` (one readable replica, or several under the
request's ``consistency``; see :mod:`read_scope`). Merging: by score (search), by id or order value
(scroll), by sum (count, facet), by id (retrieve). A search over several shards asks them for ids
and scores only and fetches payloads and vectors for the final top-k afterwards, so remote shards
never ship the payloads of points that do not make the cut.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, Literal

from qcluster.collection import read_scope
from qcluster.shards.base import (
    NO_PAYLOAD,
    NO_VECTORS,
    CountRequest,
    PayloadSelector,
    Record,
    ScoredPoint,
    ScrollRequest,
    ScrollResult,
    SearchRequest,
    ShardInfo,
    ShardOperation,
    VectorSelector,
)
from qcluster.shards.distance import higher_is_better
from qcluster.shards.replica_set import ReplicaSet
from qcluster.shards.resolve import (
    resolve_count,
    resolve_first,
    resolve_records,
    resolve_scroll,
    resolve_search,
)
from qcluster.shards.shard_holder import ShardHolder
from qcluster.types import PointId, point_id_sort_key

Status = Literal["green", "yellow", "grey", "red"]


class CollectionReads:
    def __init__(self, holder: ShardHolder, distance_of: Callable[[str], str]):
        self.holder = holder
        self._distance_of = distance_of

    def _sets(self) -> list[ReplicaSet]:
        """The replica sets to read, those read over the network first: a local read of a small
        request runs inline on the event loop, so remote requests are sent before it starts and
        travel while it runs (the answer then takes the longer of the two, not their sum)."""
        return sorted(self.holder.read_sets(read_scope.current().shard_keys), key=ReplicaSet.reads_here)

    async def search(self, requests: Sequence[SearchRequest]) -> list[list[ScoredPoint]]:
        sets = self._sets()
        consistency = read_scope.current().consistency
        if len(sets) == 1:
            return await sets[0].read(lambda r: r.search(requests), consistency, resolve_search)
        bare = [
            replace(r, limit=r.limit + r.offset, offset=0, with_payload=NO_PAYLOAD, with_vector=NO_VECTORS)
            for r in requests
        ]
        per_shard = await asyncio.gather(
            *(rs.read(lambda r: r.search(bare), consistency, resolve_search) for rs in sets)
        )
        out: list[list[ScoredPoint]] = []
        for qi, req in enumerate(requests):
            merged = _dedup([p for shard_res in per_shard for p in shard_res[qi]])
            high = higher_is_better(self._distance_of(req.using))  # type: ignore[arg-type]
            merged.sort(key=lambda p: -p.score if high else p.score)
            out.append(merged[req.offset : req.offset + req.limit])
        await self._hydrate(requests, out)
        return out

    async def _hydrate(self, requests: Sequence[SearchRequest], results: list[list[ScoredPoint]]) -> None:
        """Fill payloads and vectors of the final hits (one retrieve per selector)."""
        for req, hits in zip(requests, results, strict=True):
            if not hits or (not req.with_payload.enabled and not req.with_vector.enabled):
                continue
            recs = {
                r.id: r for r in await self.retrieve([h.id for h in hits], req.with_payload, req.with_vector)
            }
            kept = []
            for h in hits:
                rec = recs.get(h.id)
                if rec is None:  # deleted since the search: Qdrant drops it too
                    continue
                h.payload = rec.payload if req.with_payload.enabled else None
                h.vector = rec.vector if req.with_vector.enabled else None
                kept.append(h)
            hits[:] = kept

    async def scroll(self, request: ScrollRequest) -> ScrollResult:
        sets = self._sets()
        consistency = read_scope.current().consistency
        if len(sets) == 1:
            return await sets[0].read(lambda r: r.scroll(request), consistency, resolve_scroll)
        wider = replace(request, limit=request.limit + 1)
        pages = await asyncio.gather(
            *(rs.read(lambda r: r.scroll(wider), consistency, resolve_scroll) for rs in sets)
        )
        points = [p for page in pages for p in page.points]
        if request.order_by is not None:
            desc = request.order_by.direction == "desc"
            points.sort(
                key=lambda r: (
                    -(r.order_value or 0) if desc else (r.order_value or 0),
                    point_id_sort_key(r.id),
                )
            )
            return ScrollResult(points[: request.limit], None)
        points = _dedup(sorted(points, key=lambda r: point_id_sort_key(r.id)))
        nxt = points[request.limit].id if len(points) > request.limit else None
        return ScrollResult(points[: request.limit], nxt)

    async def count(self, request: CountRequest) -> int:
        consistency = read_scope.current().consistency
        counts = await asyncio.gather(
            *(rs.read(lambda r: r.count(request), consistency, resolve_count) for rs in self._sets())
        )
        return sum(counts)

    async def retrieve(
        self, ids: Sequence[PointId], with_payload: PayloadSelector, with_vector: VectorSelector
    ) -> list[Record]:
        if not ids:
            return []
        scope = read_scope.current()
        groups = self.holder.route_ids(ids, scope.shard_keys)
        sets = self.holder.sets

        def fetch(part: list[PointId]) -> Callable[[ShardOperation], Any]:
            return lambda r: r.retrieve(part, with_payload, with_vector)

        parts = await asyncio.gather(
            *(
                sets[sid].read(fetch([ids[i] for i in rows]), scope.consistency, resolve_records)
                for sid, rows in groups.items()
            )
        )
        by_id = {r.id: r for part in parts for r in part}
        return [by_id[pid] for pid in dict.fromkeys(ids) if pid in by_id]

    async def facet(self, key: str, filter: Any, limit: int, exact: bool) -> list[tuple[Any, int]]:
        consistency = read_scope.current().consistency
        parts = await asyncio.gather(
            *(
                rs.read(lambda r: r.facet(key, filter, 2**31, exact), consistency, resolve_first)
                for rs in self._sets()
            )
        )
        totals: dict[Any, int] = {}
        for part in parts:
            for value, cnt in part:
                totals[value] = totals.get(value, 0) + cnt
        return sorted(totals.items(), key=lambda kv: (-kv[1], str(kv[0])))[:limit]

    async def info(self) -> ShardInfo:
        """Collection-wide figures: every shard once (its local replica when this peer holds one)."""
        infos = await asyncio.gather(*(_shard_info(rs) for rs in self.holder.read_sets()))
        rank: dict[Status, int] = {"green": 0, "grey": 1, "yellow": 2, "red": 3}
        status: Status = max((i.status for i in infos), key=lambda s: rank[s], default="green")
        schema: dict[str, Any] = {}
        for i in infos:
            for key, value in i.payload_schema.items():
                if key in schema:
                    schema[key]["points"] += value.get("points", 0)
                else:
                    schema[key] = dict(value)
        return ShardInfo(
            status=status,
            points_count=sum(i.points_count for i in infos),
            indexed_vectors_count=sum(i.indexed_vectors_count for i in infos),
            segments_count=sum(i.segments_count for i in infos),
            payload_schema=schema,
            optimizations=[o for i in infos for o in i.optimizations],
            optimizer_error=next((i.optimizer_error for i in infos if i.optimizer_error), None),
            segments=[s for i in infos for s in i.segments],
        )


async def _shard_info(rs: ReplicaSet) -> ShardInfo:
    if rs.local is not None:
        return await rs.local.info()
    return await rs.read(lambda r: r.info())


def _dedup(points: list[Any]) -> list[Any]:
    """One entry per id (a point may briefly live on two shards while it moves)."""
    seen: set[PointId] = set()
    out = []
    for p in points:
        if p.id not in seen:
            seen.add(p.id)
            out.append(p)
    return out
