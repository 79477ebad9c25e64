"""What makes a LocalShard's writes durable: WAL fsyncs and checkpoints.

- *WAL fsyncs* (``durable``): an update is acknowledged once its record is as durable as
  ``storage.wal.durability`` asks: ``fsync`` now, ``group`` (writes arriving within the
  group-commit window share one fsync) or ``os`` (no wait).
- *Checkpoints* (``flush_sync``, on the update thread): persist the segments, then the manifest
  naming them (``local_open.py`` reads it back), then let the WAL drop what they hold (keeping what
  transfers pinned). Segments the optimizer replaced lose their files only once a manifest
  without them is durable. An idle shard writes nothing: a peer holds many shards and each
  flushes every ``flush_interval_sec``.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qcluster.logging import get_logger
from qcluster.shards import segment_store, shard_snapshot
from qcluster.shards.local_open import MANIFEST
from qcluster.shards.segment import Segment
from qcluster.shards.segment_files import fsync_dir, write_json_atomic

if TYPE_CHECKING:
    from qcluster.shards.local_shard import LocalShard

log = get_logger(__name__)


class Flusher:
    def __init__(self, shard: LocalShard):
        self.shard = shard
        self._sync_task: asyncio.Future[None] | None = None
        self._garbage: list[Segment] = []
        self._last_manifest: dict[str, Any] | None = None  # what the last checkpoint wrote

    # ------------------------------------------------------------------ WAL fsyncs (loop)
    async def durable(self, version: int) -> None:
        """Return once WAL record ``version`` is as durable as the settings ask."""
        wal = self.shard.wal
        if self.shard.storage.wal.durability == "os" or wal is None:
            return
        while wal.synced_version < version:
            if self._sync_task is None or self._sync_task.done():
                self._sync_task = asyncio.ensure_future(self._sync_wal())
            await asyncio.shield(self._sync_task)

    async def _sync_wal(self) -> None:
        wal_cfg = self.shard.storage.wal
        if wal_cfg.durability == "group" and wal_cfg.group_commit_ms > 0:
            # A group-commit window: writes arriving meanwhile share this fsync.
            await asyncio.sleep(wal_cfg.group_commit_ms / 1000)
        wal = self.shard.wal
        assert wal is not None
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self.shard.io_pool, wal.sync)

    # ------------------------------------------------------------------ checkpoints
    async def run(self, stop: asyncio.Event) -> None:
        """Checkpoint every ``flush_interval_sec`` while anything changed, until ``stop``."""
        shard = self.shard
        interval = float(shard.config.optimizer_config.flush_interval_sec)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=max(interval, 0.05))
            if stop.is_set():
                return
            if not self._due():
                continue
            try:
                await shard.in_update(self.flush_sync)
            except Exception as exc:  # keep serving; the WAL still holds everything
                log.error("shard flush failed; will retry", path=str(shard.path), error=str(exc))

    def _due(self) -> bool:
        """Cheap check on the loop, so an idle shard does not even wake its update thread (a read
        racing an update only delays that flush to the next tick)."""
        last = self._last_manifest
        shard = self.shard
        return (
            last is None
            or bool(self._garbage)
            or last["version"] != shard.applied_version
            or last["segments"] != [s.id for s in shard.set.segments]
            or last["field_indexes"] != shard.set.field_schemas
            or last["clocks"] != shard.clocks.to_json()
            or last.get("history") != shard.history.state()
            or any(s.dirty for s in shard.set.segments)
        )

    def flush_sync(self) -> None:
        """Persist segments, then the manifest naming them, then let the WAL drop what they hold
        (update thread)."""
        shard = self.shard
        wrote = False
        for seg in shard.set.segments:
            wrote = segment_store.flush(seg) or wrote
        manifest = {
            "format": 1,
            "version": shard.applied_version,
            "segments": [s.id for s in shard.set.segments],
            "field_indexes": copy.deepcopy(shard.set.field_schemas),
            "clocks": shard.clocks.to_json(),
            "history": shard.history.state(),
        }
        if not wrote and not self._garbage and manifest == self._last_manifest:
            return
        (shard.path / "segments").mkdir(parents=True, exist_ok=True)
        fsync_dir(shard.path / "segments")
        write_json_atomic(shard.path / MANIFEST, manifest)
        self._last_manifest = manifest
        fsync_dir(shard.path)
        for seg in self._garbage:
            segment_store.remove(seg)
        self._garbage.clear()
        shard.history.checkpoint(shard.applied_version, shard.clocks.copy())
        if shard.wal is not None:
            shard.wal.truncate_prefix(shard.history.truncate_bound(shard.applied_version))
            shard.history.prune(shard.wal.first_version)

    def snapshot_sync(self, target: Path) -> int:
        """Checkpoint, then pack the checkpoint into the tar archive ``target`` (see
        :mod:`shard_snapshot`); returns the version it stands for (update thread)."""
        self.flush_sync()
        shard = self.shard
        shard_snapshot.pack(shard.path, shard.set.segments, target, shard.applied_version)
        return shard.applied_version

    def retire(self, segments: Sequence[Segment]) -> None:
        """Old segments whose files go once a manifest without them is durable (update thread)."""
        self._garbage.extend(segments)
