"""The peer's threads for shard work, shared by every shard it holds.

A shard needs four kinds of work off the event loop: updates (one at a time, in submission order:
the shard's update thread owns its segments and clock map), searches (concurrent), WAL I/O (one
at a time) and index builds (one at a time per shard). Giving each shard its own pools made a peer
with 300 shards hold up to 1,500 threads; here the peer has one pool per kind, sized for the
machine, and each shard gets *lanes*: an executor that runs its own tasks one at a time in FIFO
order on the shared pool's threads, and hands the thread back after every task so one busy shard
cannot hold a thread while others wait.

Sizes: searches ``performance.max_search_threads`` (0: one per CPU), index builds
``performance.optimizer_cpu_budget`` (0: one per CPU; negative: CPUs minus that many; at least
one), updates and WAL I/O one per CPU (at least two). The pools live as long as the process.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from qcluster.settings import PerformanceSettings

T = TypeVar("T")


@dataclass(frozen=True)
class PoolSizes:
    update: int
    search: int
    io: int
    optimize: int

    @classmethod
    def of(cls, perf: PerformanceSettings, cpus: int | None = None) -> PoolSizes:
        n = max(1, cpus if cpus is not None else os.cpu_count() or 1)
        budget = perf.optimizer_cpu_budget
        optimize = budget if budget > 0 else n + budget if budget < 0 else n
        return cls(
            update=max(2, n),
            search=perf.max_search_threads or n,
            io=max(2, n),
            optimize=max(1, optimize),
        )


class ShardWorkers:
    """One thread pool per kind of shard work, for the whole peer."""

    def __init__(self, sizes: PoolSizes):
        self.sizes = sizes
        self.update = ThreadPoolExecutor(sizes.update, thread_name_prefix="shard-update")
        self.search = ThreadPoolExecutor(sizes.search, thread_name_prefix="shard-search")
        self.io = ThreadPoolExecutor(sizes.io, thread_name_prefix="shard-io")
        self.optimize = ThreadPoolExecutor(sizes.optimize, thread_name_prefix="shard-optimize")


_shared: ShardWorkers | None = None
_shared_lock = threading.Lock()


def shared(perf: PerformanceSettings) -> ShardWorkers:
    """This process's pools (created by the first shard that opens, sized from its settings)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = ShardWorkers(PoolSizes.of(perf))
        return _shared


class Lane(Executor):
    """Runs its tasks on a shared pool's threads, at most ``parallel`` at a time, starting them in
    submission order (``parallel=1``: one at a time, in order). ``shutdown(wait=True)`` returns
    once none of its tasks runs, so a shard can release what its tasks use."""

    def __init__(self, pool: Executor, parallel: int = 1):
        self._pool = pool
        self._parallel = max(1, parallel)
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._queue: deque[tuple[Future[Any], Callable[..., Any], tuple[Any, ...], dict[str, Any]]] = deque()
        self._running = 0  # pool tasks of this lane started and not finished
        self._closed = False

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot schedule new futures after shutdown")
            self._queue.append((future, fn, args, kwargs))
            if self._running < self._parallel:
                self._running += 1
                self._pool.submit(self._run_one)
        return future

    def _run_one(self) -> None:
        """One pool task: run the lane's next task, then requeue behind the other lanes' tasks
        (fair) while the lane has more, or give the slot back."""
        with self._lock:
            if not self._queue:  # another slot took it meanwhile
                self._running -= 1
                self._idle.notify_all()
                return
            future, fn, args, kwargs = self._queue.popleft()
        try:
            if future.set_running_or_notify_cancel():
                try:
                    result = fn(*args, **kwargs)
                except BaseException as exc:
                    future.set_exception(exc)
                else:
                    future.set_result(result)
        finally:
            with self._lock:
                if self._queue:
                    self._pool.submit(self._run_one)
                else:
                    self._running -= 1
                    self._idle.notify_all()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._closed = True
            if cancel_futures:
                for future, *_ in self._queue:
                    future.cancel()
            if wait:
                self._idle.wait_for(lambda: self._running == 0)
