"""Filling a transfer's target, then catching it up: the three methods share the catch-up.

Every method first pins the source's WAL at a version ``start`` and fills the target with a state
that already holds everything before ``start``; then ``catch_up`` replays the source's WAL from
``start`` (the target skips the clock tags it already has), and ends by turning the source's
forward proxy on under its lock, so no write falls between the replay and live forwarding::

    stream_records  pin (start = next version) -> reset target -> copy every point in pages
                    (pages read at later versions: replaying history over a newer state converges,
                    WAL records being id-based) -> catch up from start
    snapshot        pin -> pack a shard snapshot at version V >= start - 1 -> stream it; the
                    target restores it (with V's clock map) -> catch up from V + 1
    wal_delta       the target keeps its data; its clock map says what it has; pin the WAL where
                    it must replay from -> catch up from there. When the WAL no longer reaches back
                    that far, or the target holds writes the source lacks: None (fall back)
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from qcluster.consensus.operations import TransferRef
from qcluster.logging import get_logger
from qcluster.shards.local_shard import LocalShard
from qcluster.shards.operations import UpdateOperation, encode_operation
from qcluster.shards.shard_copy import copy_points
from qcluster.transfer.progress import TransferProgress
from qcluster.transfer.proxy import ForwardProxy
from qcluster.transfer.target_client import TargetClient

log = get_logger(__name__)
REPLAY_BATCH = 256
METHODS = ("stream_records", "snapshot", "wal_delta")


@dataclass
class Job:
    ref: TransferRef
    local: LocalShard
    proxy: ForwardProxy
    target: TargetClient
    progress: TransferProgress
    dims: dict[str, int]
    scratch: Path
    pins: list[int]

    def pin(self, pin_id: int) -> None:
        self.pins.append(pin_id)


async def fill_stream_records(job: Job) -> int:
    pin_id, start = await job.local.replay.pin_wal()
    job.pin(pin_id)
    await job.target.prepare(reset=True)
    total = (await job.local.info()).points_count
    job.progress.begin("copying points", total, "points")

    async def sink(op: UpdateOperation) -> None:
        await job.target.apply([encode_operation(op)])

    await copy_points(job.local.scroll, job.local.info, sink, job.dims, job.progress.advance)
    return start


async def fill_snapshot(job: Job) -> int:
    pin_id, _ = await job.local.replay.pin_wal()
    job.pin(pin_id)
    job.scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=job.scratch, prefix=".transfer-") as tmp:
        archive = Path(tmp) / "shard.tar"
        job.progress.begin("packing snapshot", 0, "bytes")
        version = await job.local.create_snapshot(archive)
        job.progress.begin("sending snapshot", archive.stat().st_size, "bytes")
        await job.target.send_snapshot(archive, job.progress.advance)
    return version + 1


async def fill_wal_delta(job: Job) -> int | None:
    await job.target.prepare(reset=False)
    target_clocks = await job.target.clock_map()
    pinned = await job.local.replay.pin_for_replay(target_clocks)
    if pinned is None:
        return None
    pin_id, start = pinned
    job.pin(pin_id)
    return start


async def catch_up(job: Job, start: int) -> int:
    """Replay the source's WAL from ``start`` to its end, then forward live writes; returns the
    number of records sent."""
    local, proxy = job.local, job.proxy
    job.progress.begin("replaying writes", max(0, local.applied_version - start + 1), "records")
    next_version, sent = start, 0

    async def send_from(version: int) -> int:
        nonlocal sent
        records = await local.replay.read_wal(version, REPLAY_BATCH)
        if records:
            await job.target.apply([data for _, data in records])
            sent += len(records)
            job.progress.advance(len(records))
            return records[-1][0] + 1
        return version

    while True:
        after = await send_from(next_version)
        if after - next_version < REPLAY_BATCH:  # close to the end: finish under the lock
            next_version = after
            break
        next_version = after
    async with proxy.lock:
        while True:
            after = await send_from(next_version)
            if after == next_version:
                break
            next_version = after
        proxy.forwarding = True
    log.info(
        "transfer caught up; live writes are forwarded",
        collection=job.ref.collection,
        shard=job.ref.shard_id,
        to_peer=job.ref.to_peer,
        records=sent,
    )
    return sent
