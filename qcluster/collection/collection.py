"""A collection on this peer: config + ``shard_number`` local shards, points routed by id hash.

Updates are split per shard (``split.py``) and applied concurrently; operations that name points
which must exist (payload and vector updates) are checked on every shard first, so a request is
rejected whole instead of being half-applied across shards. Reads fan out to every shard and
merge: by score (search), by id (scroll), by sum (count, facet).
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from qcluster.collection.split import split_operation
from qcluster.errors import NotFoundError
from qcluster.models.collections import CollectionConfig
from qcluster.settings import StorageSettings
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
    UpdateResult,
    VectorSelector,
)
from qcluster.shards.distance import higher_is_better
from qcluster.shards.local_shard import LocalShard
from qcluster.shards.operations import SELECTOR_OPS, DeletePoints, UpdateOperation, UpdateVectors
from qcluster.shards.routing import shard_of
from qcluster.shards.segment_files import read_json, write_json_atomic
from qcluster.types import PointId, point_id_sort_key

CONFIG_FILE = "config.json"
Status = Literal["green", "yellow", "grey", "red"]


class Collection:
    def __init__(self, name: str, path: Path, config: CollectionConfig, storage: StorageSettings):
        self.name = name
        self.path = path
        self.config = config
        self.storage = storage
        self.shards: list[LocalShard] = []

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    async def create(
        cls, name: str, path: Path, config: CollectionConfig, storage: StorageSettings
    ) -> Collection:
        path.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path / CONFIG_FILE, {"name": name, "config": config.model_dump(mode="json")})
        return await cls._open(name, path, config, storage)

    @classmethod
    async def load(cls, path: Path, storage: StorageSettings) -> Collection:
        raw = read_json(path / CONFIG_FILE)
        return await cls._open(raw["name"], path, CollectionConfig.model_validate(raw["config"]), storage)

    @classmethod
    async def _open(
        cls, name: str, path: Path, config: CollectionConfig, storage: StorageSettings
    ) -> Collection:
        col = cls(name, path, config, storage)
        shard_cfg = config.shard_config()
        col.shards = list(
            await asyncio.gather(
                *(
                    LocalShard.load_or_create(path / "shards" / str(i), shard_cfg, storage)
                    for i in range(config.params.shard_number)
                )
            )
        )
        return col

    async def close(self) -> None:
        await asyncio.gather(*(s.close() for s in self.shards))

    async def drop(self) -> None:
        await self.close()
        await asyncio.to_thread(shutil.rmtree, self.path, True)

    async def update_config(self, config: CollectionConfig) -> None:
        self.config = config
        write_json_atomic(
            self.path / CONFIG_FILE, {"name": self.name, "config": config.model_dump(mode="json")}
        )
        shard_cfg = config.shard_config()
        for shard in self.shards:
            await shard.update_config(shard_cfg)

    # ------------------------------------------------------------------ updates
    async def update(self, op: UpdateOperation, wait: bool = True) -> UpdateResult:
        parts = split_operation(op, len(self.shards))
        if len(parts) > 1:
            await self._require_existing(op)
        results = await asyncio.gather(*(self.shards[sid].update(part, wait) for sid, part in parts.items()))
        version = max((r.operation_id for r in results), default=0)
        return UpdateResult(version, "completed" if wait else "acknowledged")

    async def _require_existing(self, op: UpdateOperation) -> None:
        ids: Sequence[PointId] = ()
        if isinstance(op, UpdateVectors):
            ids = op.batch.ids
        elif isinstance(op, SELECTOR_OPS) and not isinstance(op, DeletePoints) and op.selector.filter is None:
            ids = op.selector.ids or ()
        if not ids:
            return
        found = {r.id for r in await self.retrieve(ids, NO_PAYLOAD, NO_VECTORS)}
        for pid in ids:
            if pid not in found:
                raise NotFoundError(f"No point with id {pid} found")

    # ------------------------------------------------------------------ reads
    async def search(self, requests: Sequence[SearchRequest]) -> list[list[ScoredPoint]]:
        if len(self.shards) == 1:
            return await self.shards[0].search(requests)
        widened = [
            SearchRequest(**{**_fields(r), "limit": r.limit + r.offset, "offset": 0}) for r in requests
        ]
        per_shard = await asyncio.gather(*(s.search(widened) for s in self.shards))
        out: list[list[ScoredPoint]] = []
        for qi, req in enumerate(requests):
            merged = [p for shard_res in per_shard for p in shard_res[qi]]
            high = higher_is_better(self.config.params.vectors[req.using].distance)
            merged.sort(key=lambda p: -p.score if high else p.score)
            out.append(merged[req.offset : req.offset + req.limit])
        return out

    async def scroll(self, request: ScrollRequest) -> ScrollResult:
        if len(self.shards) == 1:
            return await self.shards[0].scroll(request)
        wider = ScrollRequest(**{**_fields(request), "limit": request.limit + 1})
        pages = await asyncio.gather(*(s.scroll(wider) for s in self.shards))
        points = [p for page in pages for p in page.points]
        if request.order_by is not None:
            desc = request.order_by.direction == "desc"
            points.sort(key=lambda r: r.order_value if r.order_value is not None else 0, reverse=desc)
            return ScrollResult(points[: request.limit], None)
        points.sort(key=lambda r: point_id_sort_key(r.id))
        nxt = points[request.limit].id if len(points) > request.limit else None
        return ScrollResult(points[: request.limit], nxt)

    async def count(self, request: CountRequest) -> int:
        return sum(await asyncio.gather(*(s.count(request) for s in self.shards)))

    async def retrieve(
        self, ids: Sequence[PointId], with_payload: PayloadSelector, with_vector: VectorSelector
    ) -> list[Record]:
        if len(self.shards) == 1:
            return await self.shards[0].retrieve(ids, with_payload, with_vector)
        groups: dict[int, list[PointId]] = {}
        for pid in ids:
            groups.setdefault(shard_of(pid, len(self.shards)), []).append(pid)
        parts = await asyncio.gather(
            *(self.shards[sid].retrieve(g, with_payload, with_vector) for sid, g in groups.items())
        )
        by_id = {r.id: r for part in parts for r in part}
        return [by_id[pid] for pid in dict.fromkeys(ids) if pid in by_id]

    async def facet(self, key: str, filter: Any, limit: int, exact: bool) -> list[tuple[Any, int]]:
        parts = await asyncio.gather(*(s.facet(key, filter, 2**31, exact) for s in self.shards))
        totals: dict[Any, int] = {}
        for part in parts:
            for value, cnt in part:
                totals[value] = totals.get(value, 0) + cnt
        return sorted(totals.items(), key=lambda kv: (-kv[1], str(kv[0])))[:limit]

    async def info(self) -> ShardInfo:
        infos = await asyncio.gather(*(s.info() for s in self.shards))
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
        )


def _fields(obj: Any) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in obj.__dataclass_fields__}
