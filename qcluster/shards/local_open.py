"""Opening a LocalShard's files: the segments of the last checkpoint, then the WAL records after it.

``manifest.json`` names the segments of the last checkpoint, the version they hold, the payload
index schemas and the clock map; it is written only after every segment file it names is durable
(``local_flush.py``). Opening loads those segments, then replays the WAL records newer than the
manifest's version. Operations in the WAL are id-based, so replaying a suffix over state that
already holds part of it converges to the same state.

Runs on the shard's update thread, before the shard serves anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from qcluster.errors import CorruptedStorageError
from qcluster.logging import get_logger
from qcluster.models.config import ShardConfig
from qcluster.shards import segment_store
from qcluster.shards.clock import ClockMap
from qcluster.shards.operations import decode_record
from qcluster.shards.segment import Segment, new_segment
from qcluster.shards.segment_files import read_json
from qcluster.shards.shard_apply import SegmentSet
from qcluster.shards.wal import Wal
from qcluster.shards.wal_history import WalHistory
from qcluster.types import PointId

log = get_logger(__name__)
MANIFEST = "manifest.json"


@dataclass
class Opened:
    """A shard's state as its files left it."""

    set: SegmentSet
    wal: Wal
    version: int  # the last operation applied
    clocks: ClockMap


def open_shard(path: Path, config: ShardConfig, history: WalHistory) -> Opened:
    """Load the checkpoint (recording its clock map in ``history``), open the WAL and replay it."""
    path.mkdir(parents=True, exist_ok=True)
    manifest_file = path / MANIFEST
    segments: list[Segment] = []
    schemas: dict[str, object] = {}
    version = 0
    clocks = ClockMap()
    if manifest_file.exists():
        manifest = read_json(manifest_file)
        version = int(manifest["version"])
        segments = [segment_store.load(path / "segments" / sid, config) for sid in manifest["segments"]]
        schemas = dict(manifest.get("field_indexes", {}))
        clocks = ClockMap.from_json(manifest.get("clocks"))
        history.checkpoint(version, clocks.copy())
        history.restore(manifest.get("history") or {})
    if not segments or segments[-1].appendable is False:
        segments.append(new_segment(path / "segments", config))
    segset = SegmentSet(segments, config)
    for key, raw in schemas.items():
        segset.create_field_index(key, raw)
    _dedup_points(segments)
    capacity = config.wal_config.wal_capacity_mb * 2**20  # Qdrant's WAL file size
    wal = Wal.open(path / "wal", segment_bytes=capacity, retain_bytes=capacity)
    opened = Opened(segset, wal, version, clocks)
    try:
        replayed = _replay(path, opened)
    except BaseException:
        wal.close()
        raise
    log.info(
        "shard opened", path=str(path), version=opened.version, replayed=replayed, segments=len(segments)
    )
    return opened


def _replay(path: Path, opened: Opened) -> int:
    """Apply the WAL records after the checkpoint's version; returns how many."""
    wal = opened.wal
    if wal.last_version < opened.version:
        if wal.last_version == 0 or wal.last_version + 1 == wal.first_version:
            wal.set_start_version(opened.version + 1)
        else:
            raise CorruptedStorageError(
                f"shard {path}: WAL ends at {wal.last_version}, before the segments' version {opened.version}"
            )
    start = opened.version + 1
    if wal.first_version > start and wal.last_version >= start:
        raise CorruptedStorageError(f"shard {path}: WAL starts at {wal.first_version}, expected {start}")
    replayed = 0
    if wal.last_version >= start:
        for version, data in wal.read_from(start):
            op, tag = decode_record(data)
            opened.set.apply(op, version)
            opened.version = version
            if tag is not None:
                opened.clocks.advance(tag)
            replayed += 1
    return replayed


def _dedup_points(segments: list[Segment]) -> None:
    """A crash between flushes can leave one point live in two segments: keep the newest."""
    seen: dict[PointId, tuple[Segment, int]] = {}
    for seg in segments:
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
