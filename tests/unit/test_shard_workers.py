"""Lanes on shared pools (qcluster.shards.workers): order, one at a time, fairness, shutdown."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from qcluster.settings import PerformanceSettings
from qcluster.shards.workers import Lane, PoolSizes


def test_a_serial_lane_runs_its_tasks_one_at_a_time_in_order() -> None:
    pool = ThreadPoolExecutor(4)
    lane = Lane(pool)
    seen: list[int] = []
    running = 0
    overlap = False
    guard = threading.Lock()

    def task(i: int) -> int:
        nonlocal running, overlap
        with guard:
            running += 1
            overlap = overlap or running > 1
        time.sleep(0.001)  # widen the window an overlap would need
        seen.append(i)
        with guard:
            running -= 1
        return i * 2

    futures = [lane.submit(task, i) for i in range(200)]
    assert [f.result(timeout=30) for f in futures] == [i * 2 for i in range(200)]
    assert seen == list(range(200)) and not overlap
    lane.shutdown()
    with pytest.raises(RuntimeError):
        lane.submit(task, 0)
    pool.shutdown()


def test_a_busy_lane_does_not_hold_the_pool() -> None:
    """One thread, two lanes: the second lane's task runs before the first lane's backlog ends."""
    pool = ThreadPoolExecutor(1)
    busy, other = Lane(pool), Lane(pool)
    order: list[str] = []
    release = threading.Event()

    def first() -> None:
        release.wait(10)
        order.append("busy-0")

    busy.submit(first)
    tail = [busy.submit(order.append, f"busy-{i}") for i in range(1, 5)]
    quick = other.submit(order.append, "other")
    release.set()
    quick.result(timeout=10)
    for f in tail:
        f.result(timeout=10)
    assert order.index("other") < order.index("busy-4")
    pool.shutdown()


def test_a_parallel_lane_and_its_shutdown() -> None:
    pool = ThreadPoolExecutor(4)
    lane = Lane(pool, parallel=2)
    started = threading.Barrier(2, timeout=10)  # both run at once, or this times out
    done: list[int] = []

    def task(i: int) -> None:
        started.wait()
        done.append(i)

    futures = [lane.submit(task, i) for i in range(2)]
    lane.shutdown(wait=True)  # returns once both finished
    assert sorted(done) == [0, 1] and all(f.done() for f in futures)
    pool.shutdown()


def test_an_exception_reaches_its_caller_and_the_lane_goes_on() -> None:
    pool = ThreadPoolExecutor(2)
    lane = Lane(pool)

    def boom() -> None:
        raise ValueError("boom")

    failed = lane.submit(boom)
    after = lane.submit(lambda: 7)
    with pytest.raises(ValueError):
        failed.result(timeout=10)
    assert after.result(timeout=10) == 7
    pool.shutdown()


def test_pool_sizes_follow_the_performance_settings() -> None:
    auto = PoolSizes.of(PerformanceSettings(), cpus=8)
    assert (auto.search, auto.optimize, auto.update, auto.io) == (8, 8, 8, 8)
    small = PoolSizes.of(PerformanceSettings(), cpus=1)
    assert (small.search, small.optimize, small.update, small.io) == (1, 1, 2, 2)
    set_ = PoolSizes.of(PerformanceSettings(max_search_threads=3, optimizer_cpu_budget=-2), cpus=8)
    assert (set_.search, set_.optimize) == (3, 6)
    assert PoolSizes.of(PerformanceSettings(optimizer_cpu_budget=-20), cpus=8).optimize == 1


def test_a_parallel_lane_drains_a_backlog_and_shuts_down() -> None:
    pool = ThreadPoolExecutor(3)
    lane = Lane(pool, parallel=2)
    futures = [lane.submit(time.sleep, 0.001) for _ in range(100)]
    for f in futures:
        f.result(timeout=30)
    done = threading.Event()
    threading.Thread(target=lambda: (lane.shutdown(wait=True), done.set()), daemon=True).start()
    assert done.wait(10), "shutdown did not return"
    pool.shutdown()
