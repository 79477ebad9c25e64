"""This peer's replica of one shard: WAL + segments + background optimizer and flusher.

Threads: one *update* thread applies operations, flushes and swaps segments (so mutations never
race); searches run on a small *search* pool; the optimizer builds indexes on its own thread;
fsyncs run on an *io* thread. The event loop only awaits.

``LocalShard`` holds the state and its lifecycle and applies updates; its parts live beside it:

- ``local_open.py``: opening (the last checkpoint, then a WAL replay);
- ``local_reads.py`` (``reads``): searches, scroll, count, retrieve, facet, info;
- ``local_flush.py`` (``flusher``): WAL fsyncs per the durability setting, checkpoints, snapshots;
- ``local_replay.py`` (``replay``): the WAL and clock map as shard transfers use them;
- ``optimizer.py`` (``optimizer``): index, merge and vacuum in the background.

Update flow (``update``)::

    validate (loop) -> [update thread] resolve filter to ids, check ids exist, WAL append, apply
                    -> durable(version): fsync now / group commit / none, per storage.wal.durability
                    -> UpdateResult(version, completed | acknowledged)

Cancellation: an update cancelled while queued on the update thread still runs there to the end
(the WAL and the segments never see half an operation); only the caller stops waiting.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from qcluster.errors import BadInputError, CancelledError, QClusterError
from qcluster.models.config import ShardConfig
from qcluster.settings import StorageSettings
from qcluster.shards import batching, shard_search, shard_snapshot
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
from qcluster.shards.filters.conditions import Filter
from qcluster.shards.local_flush import Flusher
from qcluster.shards.local_open import open_shard
from qcluster.shards.local_reads import LocalReads
from qcluster.shards.local_replay import WalReplay
from qcluster.shards.operations import (
    SELECTOR_OPS,
    CreateFieldIndex,
    UpdateOperation,
    UpdateVectors,
    UpsertPoints,
    check_vectors,
    encode_operation,
)
from qcluster.shards.optimizer import Optimizer
from qcluster.shards.shard_apply import SegmentSet
from qcluster.shards.wal import Wal
from qcluster.shards.wal_history import WalHistory
from qcluster.shards.workers import Lane
from qcluster.shards.workers import shared as shared_workers
from qcluster.types import PointId


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
        self.wal: Wal | None = None
        # lanes on the peer's shared pools (see workers.py): updates and WAL I/O one at a time
        workers = shared_workers(storage.performance)
        self.workers = workers
        self._update_pool = Lane(workers.update)
        self.io_pool = Lane(workers.io)
        self._closed = False
        self._tasks: list[asyncio.Task[None]] = []
        self._stop = asyncio.Event()
        self.reads = LocalReads(self)
        self.flusher = Flusher(self)
        self.replay = WalReplay(self)
        self.optimizer = Optimizer(self)

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    async def load_or_create(cls, path: Path, config: ShardConfig, storage: StorageSettings) -> LocalShard:
        shard = cls(path, config, storage)
        try:
            await shard.in_update(shard._open_sync)
        except BaseException:
            await shard.abandon()
            raise
        shard._tasks.append(asyncio.create_task(shard.flusher.run(shard._stop), name=f"flush:{path}"))
        shard._tasks.append(asyncio.create_task(shard.optimizer.run(), name=f"optimize:{path}"))
        shard.optimizer.wake()
        return shard

    def _open_sync(self) -> None:
        opened = open_shard(self.path, self.config, self.history)
        self.set, self.wal = opened.set, opened.wal
        self.applied_version, self.clocks = opened.version, opened.clocks

    async def close(self) -> None:
        if self._closed:
            return
        await self._stop_tasks()
        try:
            await self.in_update(self.flusher.flush_sync)
        finally:
            self._release()

    async def abandon(self) -> None:
        """Stop without the final checkpoint, as a crash would (tests and failed opens)."""
        await self._stop_tasks()
        self._release()

    async def _stop_tasks(self) -> None:
        self._closed = True
        self._stop.set()
        self.optimizer.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _release(self) -> None:
        if self.wal is not None:
            self.wal.close()
        for pool in (self._update_pool, self.reads.pool, self.io_pool):
            pool.shutdown(wait=True)
        self.optimizer.shutdown()

    async def drop(self) -> None:
        await self.close()
        await asyncio.to_thread(shutil.rmtree, self.path, True)

    def check_open(self) -> None:
        if self._closed:
            raise CancelledError(f"shard {self.path.name} is closed")
        if self.error is not None:
            raise QClusterError(f"shard {self.path.name} stopped: {self.error}")

    async def in_update(self, fn: Any, *args: Any) -> Any:
        """Run ``fn`` on this shard's update thread (where every mutation happens, in order)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._update_pool, fn, *args)

    async def update_config(self, config: ShardConfig) -> None:
        """Take new optimizer / HNSW / quantization settings; indexes are rebuilt by the optimizer."""
        self.check_open()
        self.config = config
        self.set.config = config
        self.optimizer.wake()

    # ------------------------------------------------------------------ updates
    async def update(
        self, op: UpdateOperation, wait: bool = True, tag: ClockTag | None = None
    ) -> UpdateResult:
        """Apply ``op``; with a clock ``tag`` already applied here (a re-send), skip it and answer
        as if it had been applied now."""
        self.check_open()
        _validate(op, self.config)
        version: int = await self.in_update(self._update_sync, op, tag)
        await self.flusher.durable(version)
        self.optimizer.wake()
        return UpdateResult(version, "completed" if wait else "acknowledged")

    def _update_sync(self, op: UpdateOperation, tag: ClockTag | None) -> int:
        self.check_open()
        if tag is None or not self.clocks.seen(tag):
            self._apply(self.set.resolve(op), tag)
        return self.applied_version

    async def apply_records(
        self, items: Sequence[tuple[UpdateOperation, ClockTag | None]]
    ) -> tuple[int, int]:
        """Apply already-resolved operations in order (a transfer's WAL replay or point batches),
        skipping tags applied here, with one durability wait for all; returns (applied, skipped).
        Ids that no longer exist are skipped, not refused: the records replay history over a
        newer state."""
        self.check_open()
        for op, _ in items:
            _validate(op, self.config)
        applied, skipped, version = await self.in_update(self._apply_records_sync, items)
        await self.flusher.durable(version)
        self.optimizer.wake()
        return applied, skipped

    def _apply_records_sync(
        self, items: Sequence[tuple[UpdateOperation, ClockTag | None]]
    ) -> tuple[int, int, int]:
        self.check_open()
        applied = skipped = 0
        for op, tag in items:
            if tag is not None and self.clocks.seen(tag):
                skipped += 1
                continue
            if isinstance(op, SELECTOR_OPS) and op.selector.filter is not None:
                op = self.set.resolve(op)
            self._apply(op, tag)
            if tag is None:  # a copy of a point (a transfer's fill), not a write
                self.history.copied(self.applied_version)
            applied += 1
        return applied, skipped, self.applied_version

    def _apply(self, op: UpdateOperation, tag: ClockTag | None) -> None:
        """Append to the WAL, apply to the segments, advance the clock map (update thread). When
        the record opens a new WAL file, remember the clock map as of the record before it (the
        exact map a wal_delta replay from that file must start from)."""
        wal = self.wal
        assert wal is not None
        version = wal.append(encode_operation(op, tag))
        if wal.newest_segment_first == version:
            self.history.checkpoint(version - 1, self.clocks.copy())
        self.set.apply(op, version)
        self.applied_version = version
        if tag is not None:
            self.clocks.advance(tag)

    async def flush(self) -> None:
        """Checkpoint now (see ``local_flush.py``)."""
        self.check_open()
        await self.in_update(self.flusher.flush_sync)

    # ------------------------------------------------------------------ snapshots
    async def create_snapshot(self, target: Path) -> int:
        """One tar archive of the flushed shard (see :mod:`shard_snapshot`); returns the version it
        stands for. Writes pause while the archive is packed."""
        self.check_open()
        version: int = await self.in_update(self.flusher.snapshot_sync, target)
        return version

    @classmethod
    async def restore_snapshot(cls, archive: Path, path: Path) -> None:
        """Unpack a shard archive into ``path`` (which must be empty or absent)."""
        await asyncio.to_thread(shard_snapshot.unpack, archive, path)

    # ------------------------------------------------------------------ reads (see local_reads.py)
    async def search(self, requests: Sequence[SearchRequest]) -> list[list[ScoredPoint]]:
        if batching.active():  # a batch endpoint: join this loop turn's searches (``batching.py``)
            return await self.reads.coalescer.search(requests)
        parsed: list[Filter] = []  # (``LocalReads.search_now`` inlined: the one-query path is hot)
        if self.reads.cheap(requests, parsed):
            self.check_open()
            return shard_search.search(tuple(self.set.segments), self.config, requests, parsed or None)
        return await self.reads.search_now(requests)

    async def scroll(self, request: ScrollRequest) -> ScrollResult:
        return await self.reads.scroll(request)

    async def count(self, request: CountRequest) -> int:
        return await self.reads.count(request)

    async def retrieve(
        self, ids: Sequence[PointId], with_payload: PayloadSelector, with_vector: VectorSelector
    ) -> list[Record]:
        return await self.reads.retrieve(ids, with_payload, with_vector)

    async def facet(self, key: str, filter: Any, limit: int, exact: bool) -> list[tuple[Any, int]]:
        return await self.reads.facet(key, filter, limit)

    async def info(self) -> ShardInfo:
        return self.reads.info()

    async def clock_map(self) -> ClockMap:
        return await self.replay.clock_map()


def _validate(op: UpdateOperation, config: ShardConfig) -> None:
    """Refuse a malformed operation before it reaches the update thread (and the WAL)."""
    if isinstance(op, UpsertPoints):
        check_vectors(op.batch, config, require_all=True)
        if op.batch.payloads is not None and len(op.batch.payloads) != len(op.batch.ids):
            raise BadInputError("payloads: expected one payload per point", "payload")
    elif isinstance(op, UpdateVectors):
        check_vectors(op.batch, config, require_all=False)
    elif isinstance(op, CreateFieldIndex):
        from qcluster.shards.payload_index import parse_field_schema

        parse_field_schema(op.field_schema)
