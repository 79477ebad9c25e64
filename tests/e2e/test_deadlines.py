"""Deadlines and the event loop, against a real subprocess peer.

- A read past its ``timeout`` answers 408 and frees the search thread it held (the thread stops at
  its next deadline check, so the next request does not queue behind the abandoned one).
- A write past its deadline answers 408 and still applies whole, in the background.
- Heavy requests do not stall other clients' simple reads: the one timing assertion of the suite,
  with a generous bound (the peer shares 2 cores with other processes while tests run); the
  event loop's lag is measured by the peer itself and exposed in ``/metrics``.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qcluster.testing.server import ServerProcess

from .hostile import error_of, send, vec, wide_filter

SIMPLE_READ_WITHIN = 10.0  # seconds; generous (shared cores): before the fix a stalled peer took > 30 s
BIG = 4000


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    srv = ServerProcess(Path(tmp_path_factory.mktemp("deadlines"))).start()
    try:
        for name, n in (("big", BIG), ("small", 10)):
            send(srv.url, "PUT", f"/collections/{name}", {"vectors": {"size": 8, "distance": "Cosine"}})
            for start in range(0, n, 1000):
                points = [
                    {"id": i, "vector": vec(i), "payload": {"n": i, "g": i % 10, "text": "x" * 50}}
                    for i in range(start, min(n, start + 1000))
                ]
                assert (
                    send(srv.url, "PUT", f"/collections/{name}/points?wait=true", {"points": points})[0]
                    == 200
                )
        yield srv.url
        assert srv.proc is not None and srv.proc.poll() is None, srv.log_tail()
    finally:
        srv.stop()


def _slow_filter() -> dict[str, Any]:
    # Thousands of conditions on an unindexed field that nothing matches: every one scans every
    # point, minutes of work on this collection.
    return wide_filter(9000, key="unindexed")


def test_a_read_past_its_timeout_answers_408_and_frees_its_thread(base: str) -> None:
    results: list[tuple[int, Any, float]] = []

    def heavy() -> None:
        started = time.monotonic()
        status, out = send(
            base, "POST", "/collections/big/points/count?timeout=1", {"filter": _slow_filter()}
        )
        results.append((status, out, time.monotonic() - started))

    # Two at once: both search threads of the shard are taken by work that would run for minutes.
    threads = [threading.Thread(target=heavy) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for status, out, _ in results:
        assert status == 408, out
        assert "deadline of 1 s" in error_of(out)
    # The threads stopped at their next deadline check: a filtered read on the same shard runs now.
    started = time.monotonic()
    status, out = send(
        base,
        "POST",
        "/collections/big/points/count",
        {"filter": {"must": [{"key": "g", "match": {"value": 3}}]}},
    )
    assert status == 200 and out["result"]["count"] == BIG // 10
    assert time.monotonic() - started < SIMPLE_READ_WITHIN


def test_a_write_past_its_deadline_answers_408_and_applies_whole(base: str) -> None:
    send(base, "PUT", "/collections/w", {"vectors": {"size": 8, "distance": "Cosine"}})
    points = [{"id": i, "vector": vec(i), "payload": {"g": i % 10}} for i in range(1000)]
    assert send(base, "PUT", "/collections/w/points?wait=true", {"points": points})[0] == 200
    flt = wide_filter(2000, key="unindexed")
    flt["should"].append({"key": "g", "match": {"value": 1}})  # deletes the tenth with g == 1
    status, out = send(base, "POST", "/collections/w/points/delete?wait=true&timeout=1", {"filter": flt})
    if status == 200:  # the machine was quick enough: nothing to observe
        pytest.skip("the delete finished within its deadline")
    assert status == 408 and "background" in error_of(out), out
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        count = send(base, "POST", "/collections/w/points/count", {})[1]["result"]["count"]
        assert count in (1000, 900)  # whole or not at all
        if count == 900:
            break
        time.sleep(0.2)
    assert count == 900


def _lag_histogram(base: str) -> dict[str, float]:
    text = send(base, "GET", "/metrics")[1]
    out = {}
    for le, value in re.findall(r'event_loop_lag_seconds_bucket\{le="([^"]+)"\} ([0-9.e+]+)', text):
        out[le] = float(value)
    out["max"] = float(re.search(r"^event_loop_lag_max_seconds ([0-9.e+-]+)$", text, re.M).group(1))  # type: ignore[union-attr]
    return out


def test_heavy_requests_do_not_stall_simple_reads(base: str) -> None:
    _lag_histogram(base)  # resets the max-since-last-scrape gauge
    heavy_bodies = [
        # the whole collection, with payloads, several times over (built off the loop)
        (
            "/collections/big/points/query/batch",
            {"searches": [{"query": vec(i), "limit": 10**9, "with_payload": True} for i in range(8)]},
        ),
        ("/collections/big/points/count?timeout=3", {"filter": _slow_filter()}),
        (
            "/collections/big/points/query",
            {"query": vec(1), "limit": 10**9, "params": {"exact": True, "hnsw_ef": 2**63}},
        ),
        (
            "/collections/big/points/query/groups",
            {"query": vec(2), "group_by": "g", "group_size": 10**9, "with_payload": True},
        ),
        ("/collections/big/points/scroll", {"limit": 10**9, "with_vector": True}),
    ]
    done = threading.Event()
    statuses: list[int] = []

    def heavy(path: str, body: dict[str, Any]) -> None:
        statuses.append(send(base, "POST", path, body)[0])

    workers = [threading.Thread(target=heavy, args=item) for item in heavy_bodies * 2]
    for w in workers:
        w.start()
    watcher = threading.Thread(target=lambda: ([w.join() for w in workers], done.set()))
    watcher.start()
    latencies: list[float] = []
    while not done.is_set():
        for method, path, body in (
            ("GET", "/collections/small", None),
            ("POST", "/collections/small/points/query", {"query": vec(3), "limit": 3}),
            ("GET", "/healthz", None),
        ):
            started = time.monotonic()
            status, _ = send(base, method, path, body)
            latencies.append(time.monotonic() - started)
            assert status == 200
    watcher.join()
    lag = _lag_histogram(base)
    print(
        f"simple reads: {len(latencies)}, max {max(latencies):.3f}s; heavy statuses {sorted(statuses)}; loop lag {lag}"
    )
    assert set(statuses) <= {200, 408}, statuses
    assert len(latencies) >= 3
    assert max(latencies) < SIMPLE_READ_WITHIN, latencies
