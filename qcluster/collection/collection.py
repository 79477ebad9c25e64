"""A collection on this peer: config + ``shard_number`` local shards, points routed by id hash.

Updates are split per shard (``split.py``) and applied concurrently; operations that name points
which must exist (payload and vector updates) are checked on every shard first, so a request is
rejected whole instead of being half-applied across shards. Reads fan out to every shard and
merge: by score (search), by id or order value (scroll), by sum (count, facet).

``config.json`` holds ``{"name", "config", "shards_dir"}``; ``shards_dir`` names the current shard
generation (``shards`` unless a vector was added or removed, see ``rebuild.py``). Every operation
passes a gate (``gate.py``) that a rebuild closes to swap generations.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from qcluster.collection import rebuild
from qcluster.collection.gate import Gate
from qcluster.collection.split import split_operation, sub_batch
from qcluster.errors import AlreadyExistsError, BadInputError, NotFoundError
from qcluster.logging import get_logger
from qcluster.models.collections import CollectionConfig, with_vector
from qcluster.models.config import SparseVectorParams, VectorParams
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
from qcluster.shards.operations import (
    SELECTOR_OPS,
    DeletePoints,
    PointsBatch,
    UpdateOperation,
    UpdateVectors,
    UpsertPoints,
)
from qcluster.shards.routing import shard_of
from qcluster.shards.segment_files import read_json, write_json_atomic
from qcluster.types import DEFAULT_VECTOR, PointId, point_id_sort_key

log = get_logger(__name__)
CONFIG_FILE = "config.json"
Status = Literal["green", "yellow", "grey", "red"]
UpdateMode = Literal["upsert", "insert_only", "update_only"]


class Collection:
    def __init__(
        self, name: str, path: Path, config: CollectionConfig, storage: StorageSettings, shards_dir: str
    ):
        self.name = name
        self.path = path
        self.config = config
        self.storage = storage
        self.shards_dir = shards_dir
        self.shards: list[LocalShard] = []
        self._reads = Gate()
        self._writes = Gate()
        self._schema_lock = asyncio.Lock()

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    async def create(
        cls, name: str, path: Path, config: CollectionConfig, storage: StorageSettings
    ) -> Collection:
        path.mkdir(parents=True, exist_ok=True)
        col = cls(name, path, config, storage, rebuild.SHARDS_PREFIX)
        col._save_config()
        return await col._open()

    @classmethod
    async def load(cls, path: Path, storage: StorageSettings) -> Collection:
        raw = read_json(path / CONFIG_FILE)
        shards_dir = str(raw.get("shards_dir") or rebuild.SHARDS_PREFIX)
        await asyncio.to_thread(rebuild.remove_stale_generations, path, shards_dir)
        col = cls(raw["name"], path, CollectionConfig.model_validate(raw["config"]), storage, shards_dir)
        return await col._open()

    async def _open(self) -> Collection:
        self.shards = await rebuild.open_shards(self.path / self.shards_dir, self.config, self.storage)
        return self

    def _save_config(self) -> None:
        write_json_atomic(
            self.path / CONFIG_FILE,
            {"name": self.name, "config": self.config.model_dump(mode="json"), "shards_dir": self.shards_dir},
        )

    async def close(self) -> None:
        await asyncio.gather(*(s.close() for s in self.shards))

    async def drop(self) -> None:
        await self.close()
        await asyncio.to_thread(shutil.rmtree, self.path, True)

    async def update_config(self, config: CollectionConfig) -> None:
        self.config = config
        self._save_config()
        shard_cfg = config.shard_config()
        for shard in self.shards:
            await shard.update_config(shard_cfg)

    # ------------------------------------------------------------------ vector names
    async def create_vector(self, name: str, params: VectorParams | SparseVectorParams) -> None:
        """Add named vector ``name`` (existing points have none of it). A rebuild: writes wait
        until it is done; reads go on, except for the instant of the swap."""
        async with self._schema_lock:
            if name in self.config.params.vectors or name in (self.config.params.sparse_vectors or {}):
                raise AlreadyExistsError(f"Vector name `{name}` already exists in collection `{self.name}`")
            if name == DEFAULT_VECTOR or self.config.single_unnamed:
                raise BadInputError(
                    "a named vector cannot be added to a collection with an unnamed vector", "vector_name"
                )
            await self._rebuild(with_vector(self.config, name, params))

    async def delete_vector(self, name: str) -> None:
        """Remove named vector ``name`` and its data: a rebuild."""
        async with self._schema_lock:
            sparse = self.config.params.sparse_vectors or {}
            if name not in self.config.params.vectors and name not in sparse:
                raise NotFoundError(f"Vector name `{name}` doesn't exist in collection `{self.name}`")
            if len(self.config.params.vectors) + len(sparse) == 1:
                raise BadInputError("the last vector of a collection cannot be deleted", "vector_name")
            await self._rebuild(with_vector(self.config, name, None))

    async def _rebuild(self, config: CollectionConfig) -> None:
        """Copy the data into a new shard generation under ``config`` and swap it in (see
        ``rebuild.py`` for the steps, the commit point and crash behaviour)."""
        async with self._writes.exclusive():
            gen, shards = await rebuild.build_generation(self.path, self.shards, config, self.storage)
            async with self._reads.exclusive():
                old_shards, old_dir = self.shards, self.shards_dir
                self.config, self.shards_dir = config, gen
                self._save_config()
                self.shards = shards
            await asyncio.gather(*(s.close() for s in old_shards), return_exceptions=True)
            await asyncio.to_thread(shutil.rmtree, self.path / old_dir, True)
            log.info("collection rebuilt with a new vector layout", collection=self.name, shards_dir=gen)

    # ------------------------------------------------------------------ updates
    async def update(self, op: UpdateOperation, wait: bool = True) -> UpdateResult:
        await self._writes.enter()
        try:
            parts = split_operation(op, len(self.shards))
            if len(parts) > 1:
                await self._require_existing(op)
            results = await asyncio.gather(
                *(self.shards[sid].update(part, wait) for sid, part in parts.items())
            )
        finally:
            self._writes.leave()
        version = max((r.operation_id for r in results), default=0)
        return UpdateResult(version, "completed" if wait else "acknowledged")

    async def upsert(
        self,
        batch: PointsBatch,
        wait: bool = True,
        mode: UpdateMode = "upsert",
        update_filter: Mapping[str, Any] | None = None,
    ) -> UpdateResult:
        """Upsert with Qdrant's conditions: ``insert_only`` skips existing points, ``update_only``
        skips new ones, ``update_filter`` updates only existing points matching it (new points are
        inserted regardless). The existence check and the write are two steps: a concurrent write
        of the same ids in between may be overwritten, as with any concurrent upserts."""
        if mode == "upsert" and update_filter is None:
            return await self.update(UpsertPoints(batch), wait)
        existing, allowed = await self._existing(batch.ids, update_filter)
        rows = [
            i
            for i, pid in enumerate(batch.ids)
            if (pid in allowed and mode != "insert_only") or (pid not in existing and mode != "update_only")
        ]
        if not rows:
            return UpdateResult(0, "completed" if wait else "acknowledged")
        return await self.update(UpsertPoints(sub_batch(batch, rows)), wait)

    async def update_vectors(
        self, batch: PointsBatch, wait: bool = True, update_filter: Mapping[str, Any] | None = None
    ) -> UpdateResult:
        if update_filter is None:
            return await self.update(UpdateVectors(batch), wait)
        existing, allowed = await self._existing(batch.ids, update_filter)
        missing = [pid for pid in batch.ids if pid not in existing]
        if missing:
            raise NotFoundError(f"No point with id {missing[0]} found")
        rows = [i for i, pid in enumerate(batch.ids) if pid in allowed]
        if not rows:
            return UpdateResult(0, "completed" if wait else "acknowledged")
        return await self.update(UpdateVectors(sub_batch(batch, rows)), wait)

    async def _existing(
        self, ids: Sequence[PointId], flt: Mapping[str, Any] | None
    ) -> tuple[set[PointId], set[PointId]]:
        """(ids that exist, the existing ids matching ``flt`` or all of them without one)."""
        existing = {r.id for r in await self.retrieve(ids, NO_PAYLOAD, NO_VECTORS)}
        if flt is None or not existing:
            return existing, existing
        page = await self.scroll(
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
        found = {r.id for r in await self._retrieve(ids, NO_PAYLOAD, NO_VECTORS)}
        for pid in ids:
            if pid not in found:
                raise NotFoundError(f"No point with id {pid} found")

    # ------------------------------------------------------------------ reads
    async def search(self, requests: Sequence[SearchRequest]) -> list[list[ScoredPoint]]:
        await self._reads.enter()
        try:
            return await self._search(requests)
        finally:
            self._reads.leave()

    async def _search(self, requests: Sequence[SearchRequest]) -> list[list[ScoredPoint]]:
        if len(self.shards) == 1:
            return await self.shards[0].search(requests)
        widened = [
            SearchRequest(**{**_fields(r), "limit": r.limit + r.offset, "offset": 0}) for r in requests
        ]
        per_shard = await asyncio.gather(*(s.search(widened) for s in self.shards))
        out: list[list[ScoredPoint]] = []
        for qi, req in enumerate(requests):
            merged = [p for shard_res in per_shard for p in shard_res[qi]]
            high = higher_is_better(self.config.distance_of(req.using))
            merged.sort(key=lambda p: -p.score if high else p.score)
            out.append(merged[req.offset : req.offset + req.limit])
        return out

    async def scroll(self, request: ScrollRequest) -> ScrollResult:
        await self._reads.enter()
        try:
            return await self._scroll(request)
        finally:
            self._reads.leave()

    async def _scroll(self, request: ScrollRequest) -> ScrollResult:
        if len(self.shards) == 1:
            return await self.shards[0].scroll(request)
        wider = ScrollRequest(**{**_fields(request), "limit": request.limit + 1})
        pages = await asyncio.gather(*(s.scroll(wider) for s in self.shards))
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
        points.sort(key=lambda r: point_id_sort_key(r.id))
        nxt = points[request.limit].id if len(points) > request.limit else None
        return ScrollResult(points[: request.limit], nxt)

    async def count(self, request: CountRequest) -> int:
        await self._reads.enter()
        try:
            return sum(await asyncio.gather(*(s.count(request) for s in self.shards)))
        finally:
            self._reads.leave()

    async def retrieve(
        self, ids: Sequence[PointId], with_payload: PayloadSelector, with_vector: VectorSelector
    ) -> list[Record]:
        await self._reads.enter()
        try:
            return await self._retrieve(ids, with_payload, with_vector)
        finally:
            self._reads.leave()

    async def _retrieve(
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
        await self._reads.enter()
        try:
            parts = await asyncio.gather(*(s.facet(key, filter, 2**31, exact) for s in self.shards))
        finally:
            self._reads.leave()
        totals: dict[Any, int] = {}
        for part in parts:
            for value, cnt in part:
                totals[value] = totals.get(value, 0) + cnt
        return sorted(totals.items(), key=lambda kv: (-kv[1], str(kv[0])))[:limit]

    async def info(self) -> ShardInfo:
        await self._reads.enter()
        try:
            infos = await asyncio.gather(*(s.info() for s in self.shards))
        finally:
            self._reads.leave()
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
