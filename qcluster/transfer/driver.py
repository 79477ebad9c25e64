"""Runs the shard transfers this peer is the source of, from start to finish or abort.

A transfer exists once consensus committed ``start_transfer`` (its target replica is then
``Partial``). On the source peer, after each applied event, ``sync`` starts a task for every
transfer from this peer that has none and cancels the tasks of transfers that are gone (finished,
or aborted by an operator, a removed peer, a deleted collection). One task::

    wrap the local replica in a forward proxy
    attempt (retried with back-off while failures are transient, each attempt from scratch):
        fill the target by the method (wal_delta falls back to stream_records when the WAL
        no longer covers the target, and says so) -> catch up -> merge clock maps
    the source replica must still be Active -> propose finish_transfer
        -> wait until every peer applied it (so every coordinator now writes the target
           directly) -> unwrap the proxy
    any failure -> propose abort_transfer(reason): the target goes back to Dead (or is removed
    when it was created for the transfer); the proxy is unwrapped, the WAL unpinned

Cancellation (the transfer vanished from the state): the task stops where it is; the proxy is
unwrapped and the WAL unpinned on the way out. Progress is kept in ``registry`` for the API.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qcluster.consensus import operations as ops
from qcluster.consensus.operations import TransferRef
from qcluster.consensus.peer_calls import SyncTarget
from qcluster.errors import QClusterError, ReplicationError, StorageError, TransientError
from qcluster.logging import get_logger
from qcluster.p2p.channels import ChannelPool
from qcluster.retry import until_done
from qcluster.transfer import methods
from qcluster.transfer.progress import ProgressRegistry, TransferProgress
from qcluster.transfer.proxy import ForwardProxy
from qcluster.transfer.target_client import TargetClient
from qcluster.types import ReplicaState

if TYPE_CHECKING:
    from qcluster.consensus.service import ConsensusService
    from qcluster.consensus.state import ClusterState
    from qcluster.toc import TableOfContents

log = get_logger(__name__)
ATTEMPTS_FOR = 30.0  # seconds of transient failures (a target restarting) a transfer retries through
FINISH_SYNC_TIMEOUT = 10.0
FENCE_TIMEOUT = 10.0  # seconds a write waits for its failed transfer target to be marked Dead


class TransferDriver:
    def __init__(
        self,
        toc: TableOfContents,
        consensus: ConsensusService,
        pool: ChannelPool,
        timeout: float,
        scratch: Path,
    ):
        self.toc = toc
        self.consensus = consensus
        self.pool = pool
        self.timeout = timeout
        self.scratch = scratch
        self.registry = ProgressRegistry()
        self._tasks: dict[TransferRef, asyncio.Task[None]] = {}
        self._finishing: set[TransferRef] = set()  # its own finish removes it from the state
        self._closed = False
        # Called once a transfer ended (the source of a move drops its replica then).
        self.after_transfer: Callable[[], Awaitable[None]] | None = None

    # ------------------------------------------------------------------ lifecycle
    def sync(self, state: ClusterState) -> None:
        me = self.consensus.peer_id
        for ref, info in state.transfers.items():
            if ref.from_peer == me and ref not in self._tasks:
                task = asyncio.get_running_loop().create_task(
                    self._run(ref, info.method, info.sync), name=f"transfer:{ref.collection}/{ref.shard_id}"
                )
                self._tasks[ref] = task
                task.add_done_callback(functools.partial(self._forget, ref, info.started_at))
        for ref, task in list(self._tasks.items()):
            if ref not in state.transfers and ref not in self._finishing and not task.done():
                log.info("transfer gone from the cluster state; stopping it", **_fields(ref))
                task.cancel()

    def _forget(self, ref: TransferRef, started_at: float, _task: asyncio.Task[None]) -> None:
        self._tasks.pop(ref, None)
        # A new transfer of the same shard to the same peer (a recovery started while this one
        # still waited for every peer to confirm its finish) had to wait for this task: start it.
        again = self.consensus.state.transfers.get(ref)
        if again is not None and again.started_at != started_at and not self._closed:
            asyncio.get_running_loop().call_soon(self._resync)

    def _resync(self) -> None:
        if not self._closed and self.consensus.is_caught_up():
            self.sync(self.consensus.state)

    async def close(self) -> None:
        self._closed = True
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # ------------------------------------------------------------------ one transfer
    async def _run(self, ref: TransferRef, method: str, sync: bool) -> None:
        progress = self.registry.start(ref, method)
        started = time.monotonic()
        log.info("transfer started", method=method, move=not sync, **_fields(ref))
        rs = None
        holding = False  # this transfer holds its replica set's ``sending`` lock
        pins: list[int] = []
        try:
            col = self.toc.get(ref.collection)
            rs = col.holder.sets.get(ref.shard_id)
            if rs is None or rs.local is None:
                raise StorageError(f"this peer holds no replica of shard {ref.shard_id} to send")
            if rs.sending.locked():
                progress.begin("waiting for another transfer from this replica to end", 0, "")
                log.info("another transfer from this replica is running; this one waits", **_fields(ref))
            await rs.sending.acquire()
            holding = True
            local = rs.local
            if local is None:
                raise StorageError(f"this peer no longer holds a replica of shard {ref.shard_id} to send")
            target = TargetClient(ref, lambda: self._address(ref.to_peer), self.pool, self.timeout)
            proxy = ForwardProxy(local, target.replica, functools.partial(self._fence, ref))
            rs.forward = proxy
            dims = col.config.vector_dims()
            job = methods.Job(ref, local, proxy, target, progress, dims, self.scratch, pins)
            used = await self._attempts(job, method)
            if proxy.failure is not None:
                raise proxy.failure
            self._check_source_active(ref)
            progress.begin("finishing", 0, "")
            self._finishing.add(ref)
            result = await self.consensus.propose(ops.finish_transfer(ref), self.timeout)
            await self._wait_everyone(result.index)
            log.info(
                "transfer finished",
                method=used,
                seconds=round(time.monotonic() - started, 2),
                **_fields(ref),
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            reason = exc.message if isinstance(exc, QClusterError) else f"{type(exc).__name__}: {exc}"
            log.warning("transfer failed; aborting it", error=reason, **_fields(ref))
            await self._abort(ref, reason)
        finally:
            self._finishing.discard(ref)
            if rs is not None and holding:
                rs.forward = None
                if rs.local is not None:
                    for pin_id in pins:
                        rs.local.replay.unpin_wal(pin_id)
                rs.sending.release()
            self.registry.end(ref)
            if self.after_transfer is not None:
                with contextlib.suppress(QClusterError):
                    await self.after_transfer()

    async def _attempts(self, job: methods.Job, method: str) -> str:
        """Fill and catch up, retrying transient failures; returns the method that worked."""
        async for attempt in until_done(ATTEMPTS_FOR):
            with attempt:
                job.proxy.forwarding = False
                job.proxy.failure = None
                for pin_id in job.pins:
                    job.local.replay.unpin_wal(pin_id)
                job.pins.clear()
                used, start = await self._fill(job, method)
                await methods.catch_up(job, start)
                # under the proxy lock: every write the map counts has reached the target
                async with job.proxy.lock:
                    clocks = await job.local.replay.clock_map()
                await job.target.merge_clocks(clocks)
                return used
        raise AssertionError("unreachable")  # pragma: no cover - until_done re-raises

    async def _fill(self, job: methods.Job, method: str) -> tuple[str, int]:
        if method == "wal_delta":
            start = await methods.fill_wal_delta(job)
            if start is not None:
                return method, start
            log.info(
                "wal_delta cannot serve this target (the WAL no longer holds what it lacks, or it "
                "holds writes the source lacks); falling back to stream_records",
                **_fields(job.ref),
            )
            job.progress.method = "stream_records (wal_delta fallback)"
            return "stream_records", await methods.fill_stream_records(job)
        if method == "snapshot":
            return method, await methods.fill_snapshot(job)
        return "stream_records", await methods.fill_stream_records(job)

    async def _fence(self, ref: TransferRef, exc: QClusterError) -> None:
        """A write reached the source but not the target: mark the target Dead through consensus
        (from Partial, or from Active when the finish is agreed already) before the write is
        acknowledged; raise when that cannot be agreed."""
        log.warning(
            "forwarding a write to the transfer target failed; marking the target Dead",
            error=exc.message,
            **_fields(ref),
        )
        state = None
        for from_state in (ReplicaState.PARTIAL, ReplicaState.ACTIVE):
            op = ops.set_replica_state(
                ref.collection, ref.shard_id, ref.to_peer, ReplicaState.DEAD, from_state
            )
            result = await self.consensus.propose(op, FENCE_TIMEOUT)
            await self.consensus.wait_synced(result.index, FENCE_TIMEOUT)
            state = self.consensus.state.replica_state(ref.collection, ref.shard_id, ref.to_peer)
            if state in (None, ReplicaState.DEAD):
                return
        raise ReplicationError(
            f"a write reached the source of the transfer of shard {ref.shard_id} of `{ref.collection}` "
            f"but not its target (peer {ref.to_peer}: {exc.message}), which is {state}, not Dead"
        )

    def _check_source_active(self, ref: TransferRef) -> None:
        state = self.consensus.state.replica_state(ref.collection, ref.shard_id, ref.from_peer)
        if state is not ReplicaState.ACTIVE:
            raise StorageError(f"the source replica is {state} now, not Active: it may miss writes")

    async def _wait_everyone(self, index: int) -> None:
        """Until every peer applied ``index`` (then no coordinator skips the new replica, and the
        forward proxy may go). A peer that does not answer is waited for as long as it is a
        member: a partitioned coordinator with the old view would otherwise acknowledge writes
        the new replica never sees."""
        while True:
            peers = dict(self.consensus.state.peers)
            try:
                await self.consensus.wait_peers_synced(
                    peers, SyncTarget(index), FINISH_SYNC_TIMEOUT, "transfer finish"
                )
                return
            except QClusterError as exc:
                log.warning(
                    "not every peer confirmed the finished transfer yet; still forwarding", error=exc.message
                )

    async def _abort(self, ref: TransferRef, reason: str) -> None:
        try:
            async for attempt in until_done(60.0):
                with attempt:
                    if ref not in self.consensus.state.transfers:
                        return
                    await self.consensus.propose(ops.abort_transfer(ref, reason[:500]), self.timeout)
        except QClusterError as exc:
            log.error(
                "could not abort the failed transfer; the watchdog will", error=exc.message, **_fields(ref)
            )

    def _address(self, peer_id: int) -> str:
        uri = self.consensus.state.peers.get(peer_id)
        if uri is None:
            raise TransientError(f"peer {peer_id} is not a member of the cluster")
        return uri

    def progress_of(self, collection: str) -> list[TransferProgress]:
        return self.registry.of_collection(collection)


def _fields(ref: TransferRef) -> dict[str, Any]:
    return {
        "collection": ref.collection,
        "shard": ref.shard_id,
        "from_peer": ref.from_peer,
        "to_peer": ref.to_peer,
    }
