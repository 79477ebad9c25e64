"""This peer's replica of one shard: WAL + segments + background optimizer and flusher.

Threads: one *update* thread applies operations, flushes and swaps segments (so mutations never
race); searches run on a small *search* pool; the optimizer builds indexes on its own thread;
fsyncs run on an *io* thread. The event loop only awaits.

Update flow (``update``)::

    validate (loop) -> [update thread] resolve filter to ids, check ids exist, WAL append, apply
                    -> durable(version): fsync now / group commit / none, per storage.wal.durability
                    -> UpdateResult(version, completed | acknowledged)

Cancellation: an update cancelled while queued on the update thread still runs there to the end
(the WAL and the segments never see half an operation); only the caller stops waiting.

Recovery (``load_or_create``): load the segments listed in ``manifest.json`` (written only after
every segment file is durable), then replay WAL records newer than the manifest's version.
Operations in the WAL are id-based, so replaying a suffix over state that already holds part of
it converges to the same state.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

from qcluster import deadline
from qcluster.errors import BadInputError, CancelledError, CorruptedStorageError, QClusterError
from qcluster.logging import get_logger
from qcluster.models.config import ShardConfig
from qcluster.settings import StorageSettings
from qcluster.shards import batching, load, shard_read, shard_search, shard_snapshot
from qcluster.shards.base import (
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
from qcluster.shards.clock import ClockMap, ClockTag
from qcluster.shards.filters import parse_filter
from qcluster.shards.filters.parse import cached_filter
from qcluster.shards.filters.shape import filter_shape
from qcluster.shards.operations import (
    SELECTOR_OPS,
    CreateFieldIndex,
    UpdateOperation,
    UpdateVectors,
    UpsertPoints,
    check_vectors,
    decode_record,
    encode_operation,
    record_tag,
)
from qcluster.shards.optimizer import Optimizer
from qcluster.shards.segment import Segment
from qcluster.shards.segment_files import fsync_dir, read_json, write_json_atomic
from qcluster.shards.shard_apply import SegmentSet
from qcluster.shards.sparse.search import INLINE_POSTINGS, inline_cost
from qcluster.shards.sparse.vector import SparseVector
from qcluster.shards.wal import Wal
from qcluster.shards.wal_history import WalHistory
from qcluster.shards.workers import Lane
from qcluster.shards.workers import shared as shared_workers
from qcluster.types import PointId

log = get_logger(__name__)
T = TypeVar("T")
MANIFEST = "manifest.json"
CHEAP_FILTER_CONDITIONS = 32  # at most this many conditions for a filtered search on the loop


class LocalShard:
    def __init__(self, path: Path, config: ShardConfig, storage: StorageSettings):
        self.path = path
        self.config = config
        self.storage = storage
        self.set = SegmentSet([], config)
        self.applied_version = 0
        self.clocks = ClockMap()  # highest tick applied per coordinator clock (update thread)
        self.history = WalHistory()  # WAL pins and clock checkpoints for transfers (update thread)
        self.error: str | None = None
        self._wal: Wal | None = None
        # lanes on the peer's shared pools (see workers.py): updates and WAL I/O one at a time
        workers = shared_workers(storage.performance)
        self.workers = workers
        self._update_pool = Lane(workers.update)
        self._search_pool = Lane(workers.search, workers.sizes.search)
        self._io_pool = Lane(workers.io)
        self._sync_task: asyncio.Future[None] | None = None
        self._closed = False
        self._garbage: list[Segment] = []
        self._last_manifest: dict[str, Any] | None = None  # what the last flush wrote
        self._tasks: list[asyncio.Task[None]] = []
        self._stop = asyncio.Event()
        self.optimizer = Optimizer(self)
        self._indexed_filters: dict[int, tuple[Any, frozenset[str], bool]] = {}
        self._coalescer = batching.Coalescer(self._search_now)

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    async def load_or_create(cls, path: Path, config: ShardConfig, storage: StorageSettings) -> LocalShard:
        shard = cls(path, config, storage)
        try:
            await shard._in_update(shard._open_sync)
        except BaseException:
            await shard.abandon()
            raise
        shard._tasks.append(asyncio.create_task(shard._flush_loop(), name=f"flush:{path}"))
        shard._tasks.append(asyncio.create_task(shard.optimizer.run(), name=f"optimize:{path}"))
        shard.optimizer.wake()
        return shard

    def _open_sync(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        manifest_file = self.path / MANIFEST
        segments: list[Segment] = []
        schemas: dict[str, Any] = {}
        if manifest_file.exists():
            manifest = read_json(manifest_file)
            self.applied_version = int(manifest["version"])
            segments = [
                Segment.load(self.path / "segments" / sid, self.config) for sid in manifest["segments"]
            ]
            schemas = dict(manifest.get("field_indexes", {}))
            self.clocks = ClockMap.from_json(manifest.get("clocks"))
            self.history.checkpoint(self.applied_version, self.clocks.copy())
        if not segments or segments[-1].appendable is False:
            segments.append(self._new_segment())
        self.set = SegmentSet(segments, self.config)
        for key, raw in schemas.items():
            self.set.create_field_index(key, raw)
        self._dedup_points()
        capacity = self.config.wal_config.wal_capacity_mb * 2**20  # Qdrant's WAL file size
        self._wal = Wal.open(self.path / "wal", segment_bytes=capacity, retain_bytes=capacity)
        wal = self._wal
        if wal.last_version < self.applied_version:
            if wal.last_version == 0 or wal.last_version + 1 == wal.first_version:
                wal.set_start_version(self.applied_version + 1)
            else:
                raise CorruptedStorageError(
                    f"shard {self.path}: WAL ends at {wal.last_version}, before the segments' version "
                    f"{self.applied_version}"
                )
        start = self.applied_version + 1
        if wal.first_version > start and wal.last_version >= start:
            raise CorruptedStorageError(
                f"shard {self.path}: WAL starts at {wal.first_version}, expected {start}"
            )
        replayed = 0
        if wal.last_version >= start:
            for version, data in wal.read_from(start):
                op, tag = decode_record(data)
                self.set.apply(op, version)
                self.applied_version = version
                if tag is not None:
                    self.clocks.advance(tag)
                replayed += 1
        log.info(
            "shard opened",
            path=str(self.path),
            version=self.applied_version,
            replayed=replayed,
            segments=len(self.set.segments),
        )

    def _dedup_points(self) -> None:
        """A crash between flushes can leave one point live in two segments: keep the newest."""
        seen: dict[PointId, tuple[Segment, int]] = {}
        for seg in self.set.segments:
            for pid, off in seg.iter_live():
                prev = seen.get(pid)
                if prev is None:
                    seen[pid] = (seg, off)
                    continue
                pseg, poff = prev
                if seg.versions[off] >= pseg.versions[poff]:
                    pseg.delete(pid, int(pseg.versions[poff]))
                    seen[pid] = (seg, off)
                else:
                    seg.delete(pid, int(seg.versions[off]))

    def _new_segment(self) -> Segment:
        sid = uuid.uuid4().hex
        cfg = self.config
        return Segment(
            self.path / "segments" / sid,
            sid,
            cfg.dense_dims(),
            appendable=True,
            multi=cfg.multi_dims(),
            sparse=list(cfg.sparse_vectors),
        )

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self.optimizer.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        try:
            await self._in_update(self._flush_sync)
        finally:
            self._release()

    async def abandon(self) -> None:
        """Stop without the final checkpoint, as a crash would (tests and failed opens)."""
        self._closed = True
        self._stop.set()
        self.optimizer.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._release()

    def _release(self) -> None:
        if self._wal is not None:
            self._wal.close()
        for pool in (self._update_pool, self._search_pool, self._io_pool):
            pool.shutdown(wait=True)
        self.optimizer.shutdown()

    async def drop(self) -> None:
        await self.close()
        await asyncio.to_thread(shutil.rmtree, self.path, True)

    def _check_open(self) -> None:
        if self._closed:
            raise CancelledError(f"shard {self.path.name} is closed")
        if self.error is not None:
            raise QClusterError(f"shard {self.path.name} stopped: {self.error}")

    async def _in_update(self, fn: Any, *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._update_pool, fn, *args)

    # ------------------------------------------------------------------ updates
    def _validate(self, op: UpdateOperation) -> None:
        if isinstance(op, UpsertPoints):
            check_vectors(op.batch, self.config, require_all=True)
            if op.batch.payloads is not None and len(op.batch.payloads) != len(op.batch.ids):
                raise BadInputError("payloads: expected one payload per point", "payload")
        elif isinstance(op, UpdateVectors):
            check_vectors(op.batch, self.config, require_all=False)
        elif isinstance(op, CreateFieldIndex):
            from qcluster.shards.payload_index import parse_field_schema

            parse_field_schema(op.field_schema)

    async def update(
        self, op: UpdateOperation, wait: bool = True, tag: ClockTag | None = None
    ) -> UpdateResult:
        """Apply ``op``; with a clock ``tag`` already applied here (a re-send), skip it and answer
        as if it had been applied now."""
        self._check_open()
        self._validate(op)
        version: int = await self._in_update(self._update_sync, op, tag)
        await self._durable(version)
        self.optimizer.wake()
        return UpdateResult(version, "completed" if wait else "acknowledged")

    def _update_sync(self, op: UpdateOperation, tag: ClockTag | None) -> int:
        self._check_open()
        assert self._wal is not None
        if tag is not None and self.clocks.seen(tag):
            return self.applied_version
        resolved = self.set.resolve(op)
        version = self._append(encode_operation(resolved, tag))
        self.set.apply(resolved, version)
        self.applied_version = version
        if tag is not None:
            self.clocks.advance(tag)
        return version

    def _append(self, record: bytes) -> int:
        """Append to the WAL; when the record opens a new WAL file, remember the clock map as of
        the record before it (the exact map a wal_delta replay from that file must start from)."""
        assert self._wal is not None
        version = self._wal.append(record)
        if self._wal.newest_segment_first == version:
            self.history.checkpoint(version - 1, self.clocks.copy())
        return version

    async def apply_records(
        self, items: Sequence[tuple[UpdateOperation, ClockTag | None]]
    ) -> tuple[int, int]:
        """Apply already-resolved operations in order (a transfer's WAL replay or point batches),
        skipping tags applied here, with one durability wait for all; returns (applied, skipped).
        Ids that no longer exist are skipped, not refused: the records replay history over a
        newer state."""
        self._check_open()
        for op, _ in items:
            self._validate(op)
        applied, skipped, version = await self._in_update(self._apply_records_sync, items)
        await self._durable(version)
        self.optimizer.wake()
        return applied, skipped

    def _apply_records_sync(
        self, items: Sequence[tuple[UpdateOperation, ClockTag | None]]
    ) -> tuple[int, int, int]:
        self._check_open()
        assert self._wal is not None
        applied = skipped = 0
        for op, tag in items:
            if tag is not None and self.clocks.seen(tag):
                skipped += 1
                continue
            if isinstance(op, SELECTOR_OPS) and op.selector.filter is not None:
                op = self.set.resolve(op)
            version = self._append(encode_operation(op, tag))
            self.set.apply(op, version)
            self.applied_version = version
            if tag is not None:
                self.clocks.advance(tag)
            applied += 1
        return applied, skipped, self.applied_version

    async def clock_map(self) -> ClockMap:
        """A copy of the clock map as of now (taken on the update thread)."""
        self._check_open()
        result: ClockMap = await self._in_update(self.clocks.copy)
        return result

    async def _durable(self, version: int) -> None:
        wal_cfg = self.storage.wal
        if wal_cfg.durability == "os" or self._wal is None:
            return
        while self._wal.synced_version < version:
            if self._sync_task is None or self._sync_task.done():
                self._sync_task = asyncio.ensure_future(self._sync_wal())
            await asyncio.shield(self._sync_task)

    async def _sync_wal(self) -> None:
        wal_cfg = self.storage.wal
        if wal_cfg.durability == "group" and wal_cfg.group_commit_ms > 0:
            # A group-commit window: writes arriving meanwhile share this fsync.
            await asyncio.sleep(wal_cfg.group_commit_ms / 1000)
        assert self._wal is not None
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._io_pool, self._wal.sync)

    # ------------------------------------------------------------------ flushing
    async def _flush_loop(self) -> None:
        interval = float(self.config.optimizer_config.flush_interval_sec)
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=max(interval, 0.05))
            if self._stop.is_set():
                return
            if not self._flush_due():
                continue
            try:
                await self._in_update(self._flush_sync)
            except Exception as exc:  # keep serving; the WAL still holds everything
                log.error("shard flush failed; will retry", path=str(self.path), error=str(exc))

    def _flush_due(self) -> bool:
        """Cheap check on the loop, so an idle shard does not even wake its update thread (a read
        racing an update only delays that flush to the next tick)."""
        last = self._last_manifest
        return (
            last is None
            or bool(self._garbage)
            or last["version"] != self.applied_version
            or last["segments"] != [s.id for s in self.set.segments]
            or last["field_indexes"] != self.set.field_schemas
            or last["clocks"] != self.clocks.to_json()
            or any(s.dirty for s in self.set.segments)
        )

    def _flush_sync(self) -> None:
        """Persist segments, then the manifest naming them, then let the WAL drop what they hold.
        An idle shard writes nothing (a peer holds many shards; each flushes every few seconds)."""
        wrote = False
        for seg in self.set.segments:
            wrote = seg.flush() or wrote
        manifest = {
            "format": 1,
            "version": self.applied_version,
            "segments": [s.id for s in self.set.segments],
            "field_indexes": copy.deepcopy(self.set.field_schemas),
            "clocks": self.clocks.to_json(),
        }
        if not wrote and not self._garbage and manifest == self._last_manifest:
            return
        (self.path / "segments").mkdir(parents=True, exist_ok=True)
        fsync_dir(self.path / "segments")
        write_json_atomic(self.path / MANIFEST, manifest)
        self._last_manifest = manifest
        fsync_dir(self.path)
        for seg in self._garbage:
            seg.remove_files()
        self._garbage.clear()
        self.history.checkpoint(self.applied_version, self.clocks.copy())
        if self._wal is not None:
            self._wal.truncate_prefix(self.history.truncate_bound(self.applied_version))
            self.history.prune(self._wal.first_version)

    async def flush(self) -> None:
        self._check_open()
        await self._in_update(self._flush_sync)

    # ------------------------------------------------------------------ reads
    async def _read(self, fn: Any, *args: Any) -> Any:
        """Run ``fn`` on a search thread under the caller's deadline (``qcluster.deadline``): the
        read stops at its next check once the request's deadline has passed; a read still queued
        when its request is cancelled never starts."""
        self._check_open()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._search_pool, deadline.context().run, fn, *args)

    def _cheap(self, requests: Sequence[SearchRequest]) -> bool:
        """One unfiltered query of modest size, and little unindexed data to scan exactly."""
        if len(requests) != 1 or load.busy():
            return False
        req = requests[0]
        if req.params.exact or req.limit + req.offset > 1000:
            return False
        if req.filter is not None and not self._indexed_filter(req.filter):
            return False
        if req.using in self.config.sparse_vectors:  # cost = postings read, not points
            if not isinstance(req.vector, SparseVector):
                return True  # fails fast inline with the same error
            return inline_cost(self.set.segments, req.using, req.vector) <= INLINE_POSTINGS
        unindexed = sum(s.live_count for s in self.set.segments if req.using not in s.indexes)
        return unindexed <= 20_000

    def _indexed_filter(self, raw: Any) -> bool:
        """A small filter whose every condition is answered by a payload index (so evaluating it
        is cheap); a large one goes to the search threads whatever its conditions. Remembered per
        parsed filter (parses are cached by their JSON) and set of indexed keys."""
        indexed = self.set.field_schemas
        known = cached_filter(raw)  # a filter seen lately: its answer is remembered below
        hit = None if known is None else self._indexed_filters.get(id(known))
        if hit is not None and hit[0] is known and hit[1] == indexed.keys():
            return hit[2]
        if filter_shape(raw, 2**31, CHEAP_FILTER_CONDITIONS).conditions > CHEAP_FILTER_CONDITIONS:
            return False
        try:
            flt = parse_filter(raw)
        except QClusterError:
            return True  # fails fast inline with the same error
        answer = _all_indexed(flt, set(indexed))
        if len(self._indexed_filters) > 1024:
            self._indexed_filters.clear()
        self._indexed_filters[id(flt)] = (flt, frozenset(indexed), answer)
        return answer

    async def search(self, requests: Sequence[SearchRequest]) -> list[list[ScoredPoint]]:
        if batching.active():  # a batch endpoint: join this loop turn's searches (``batching.py``)
            return await self._coalescer.search(requests)
        if self._cheap(requests):  # (``_search_now`` inlined: the one-query path is hot)
            self._check_open()
            return shard_search.search(tuple(self.set.segments), self.config, requests)
        return await self._search_now(requests)

    async def _search_now(self, requests: Sequence[SearchRequest]) -> list[list[ScoredPoint]]:
        if self._cheap(requests):
            self._check_open()
            return shard_search.search(tuple(self.set.segments), self.config, requests)
        result: list[list[ScoredPoint]] = await self._read(
            shard_search.search, tuple(self.set.segments), self.config, requests
        )
        return result

    async def scroll(self, request: ScrollRequest) -> ScrollResult:
        result: ScrollResult = await self._read(shard_read.scroll, tuple(self.set.segments), request)
        return result

    async def count(self, request: CountRequest) -> int:
        result: int = await self._read(shard_read.count, tuple(self.set.segments), request)
        return result

    async def retrieve(
        self, ids: Sequence[PointId], with_payload: PayloadSelector, with_vector: VectorSelector
    ) -> list[Record]:
        result: list[Record] = await self._read(
            shard_read.retrieve, tuple(self.set.segments), ids, with_payload, with_vector
        )
        return result

    async def facet(self, key: str, filter: Any, limit: int, exact: bool) -> list[tuple[Any, int]]:
        result: list[tuple[Any, int]] = await self._read(
            shard_read.facet, tuple(self.set.segments), key, filter, limit
        )
        return result

    async def info(self) -> ShardInfo:
        self._check_open()
        return shard_read.info(
            tuple(self.set.segments), self.set.field_schemas, self.optimizer, self.applied_version
        )

    async def update_config(self, config: ShardConfig) -> None:
        """Take new optimizer / HNSW / quantization settings; indexes are rebuilt by the optimizer."""
        self._check_open()
        self.config = config
        self.set.config = config
        self.optimizer.wake()

    # ------------------------------------------------------------------ snapshots
    async def create_snapshot(self, target: Path) -> int:
        """One tar archive of the flushed shard (see :mod:`shard_snapshot`); returns the version it
        stands for. Writes pause while the archive is packed."""
        self._check_open()
        version: int = await self._in_update(self._snapshot_sync, target)
        return version

    def _snapshot_sync(self, target: Path) -> int:
        self._flush_sync()
        shard_snapshot.pack(self.path, self.set.segments, target, self.applied_version)
        return self.applied_version

    @classmethod
    async def restore_snapshot(cls, archive: Path, path: Path) -> None:
        """Unpack a shard archive into ``path`` (which must be empty or absent)."""
        await asyncio.to_thread(shard_snapshot.unpack, archive, path)

    # ------------------------------------------------------------------ for transfers
    async def pin_wal(self) -> tuple[int, int]:
        """Keep every WAL record after the current version until ``unpin_wal``; returns
        (pin id, first version kept)."""
        self._check_open()
        pinned: tuple[int, int] = await self._in_update(self._pin_sync)
        return pinned

    def _pin_sync(self) -> tuple[int, int]:
        start = self.applied_version + 1
        return self.history.pin(start), start

    def unpin_wal(self, pin_id: int) -> None:
        self.history.unpin(pin_id)

    async def pin_for_replay(self, target: ClockMap) -> tuple[int, int] | None:
        """Pin the WAL from where a replica at ``target`` must replay it to catch up: (pin id,
        first version). None when the WAL no longer holds everything ``target`` lacks,
        ``target`` holds writes this replica lacks (a replay cannot remove them), or it holds
        writes this replica applied after ones it lacks (a replay would reorder them)."""
        self._check_open()

        def decide() -> tuple[int, int] | None:
            assert self._wal is not None
            if self.clocks.behind(target):
                return None
            start = self.history.replay_start(target, self._wal.first_version)
            return None if start is None else (self.history.pin(start), start)

        pinned: tuple[int, int] | None = await self._in_update(decide)
        if pinned is None:
            return None
        pin_id, start = pinned
        first = await self._first_unseen(start, target)
        if first is None:
            self.history.unpin(pin_id)
            return None
        if first == start:
            return pinned
        moved = self.history.pin(first)  # keep less: the replay starts at the first write it lacks
        self.history.unpin(pin_id)
        return moved, first

    async def _first_unseen(self, start: int, target: ClockMap) -> int | None:
        """The first WAL version from ``start`` whose write ``target`` lacks (or untagged); None
        when ``target`` holds a later write already: it applied that one out of this replica's
        order (directly, while behind), and replaying the older writes over it could leave an
        older value of a point, so the target needs a full copy instead."""
        wal = self._wal
        assert wal is not None

        def scan() -> int | None:
            first: int | None = None
            for version, data in wal.read_from(start):
                tag = record_tag(data)
                lacks = tag is None or not target.seen(tag)
                if first is None:
                    if lacks:
                        first = version
                elif not lacks:
                    return None
            return wal.last_version + 1 if first is None else first

        loop = asyncio.get_running_loop()
        first: int | None = await loop.run_in_executor(self._io_pool, scan)
        return first

    async def read_wal(self, start: int, max_records: int) -> list[tuple[int, bytes]]:
        """Up to ``max_records`` WAL records from version ``start`` (an empty list at the end)."""
        self._check_open()
        wal = self._wal
        assert wal is not None

        def read() -> list[tuple[int, bytes]]:
            if start > wal.last_version:
                return []
            return list(itertools.islice(wal.read_from(start), max_records))

        loop = asyncio.get_running_loop()
        result: list[tuple[int, bytes]] = await loop.run_in_executor(self._io_pool, read)
        return result

    async def merge_clocks(self, clocks: ClockMap) -> ClockMap:
        """Raise this replica's clock map to at least ``clocks``; returns the result."""
        self._check_open()

        def merge() -> ClockMap:
            for tag in clocks:
                self.clocks.advance(tag)
            return self.clocks.copy()

        result: ClockMap = await self._in_update(merge)
        return result

    # ------------------------------------------------------------------ for the optimizer
    def run_in_update(self, fn: Any, *args: Any) -> Any:
        return self._in_update(fn, *args)

    def retire(self, segments: Sequence[Segment]) -> None:
        """Old segments whose files go once a manifest without them is durable (update thread)."""
        self._garbage.extend(segments)


def _all_indexed(c: Any, indexed: set[str]) -> bool:
    from qcluster.shards.filters.conditions import FieldCondition, Filter, HasId, HasVector

    if isinstance(c, Filter):
        conds = (*c.must, *c.should, *c.must_not, *(c.min_should.conditions if c.min_should else ()))
        return all(_all_indexed(x, indexed) for x in conds)
    if isinstance(c, FieldCondition):
        return c.key in indexed
    return isinstance(c, HasId | HasVector)
