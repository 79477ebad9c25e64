"""A lean HTTP load generator: pre-serialised JSON bodies over keep-alive connections, N client
threads in a separate process, bounded in count and time, loopback only."""

from __future__ import annotations

import http.client
import json
import multiprocessing as mp
import threading
import time
from typing import Any
from urllib.parse import urlparse


def _worker(url: str, path: str, bodies: list[bytes], clients: int, deadline_s: float, q: Any) -> None:
    parsed = urlparse(url)
    host = parsed.hostname or "127.0.0.1"
    port = parsed.port or 80
    results: list[tuple[int, float, bytes]] = []
    lock = threading.Lock()
    next_i = [0]
    stop_at = time.monotonic() + deadline_s

    def run() -> None:
        conn = http.client.HTTPConnection(host, port, timeout=30)
        headers = {"Content-Type": "application/json", "Connection": "keep-alive"}
        while time.monotonic() < stop_at:
            with lock:
                i = next_i[0]
                if i >= len(bodies):
                    break
                next_i[0] += 1
            t0 = time.perf_counter()
            conn.request("POST", path, body=bodies[i], headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            lat = time.perf_counter() - t0
            with lock:
                results.append((i, lat, data))
        conn.close()

    threads = [threading.Thread(target=run) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    q.put((elapsed, results))


def run_load(
    url: str, path: str, bodies: list[Any], clients: int, deadline_s: float = 120.0
) -> dict[str, Any]:
    """POST each body once (spread over ``clients`` connections). Returns qps, p50/p99 (ms) and
    the decoded responses in body order."""
    raw = [b if isinstance(b, bytes) else json.dumps(b).encode() for b in bodies]
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    proc = ctx.Process(target=_worker, args=(url, path, raw, clients, deadline_s, q))
    proc.start()
    elapsed, results = q.get(timeout=deadline_s + 60)
    proc.join()
    lat = sorted(r[1] * 1000 for r in results)
    responses: list[Any] = [None] * len(raw)
    for i, _, data in results:
        responses[i] = json.loads(data)
    return {
        "qps": len(results) / elapsed if elapsed else 0.0,
        "p50_ms": lat[len(lat) // 2] if lat else 0.0,
        "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else 0.0,
        "responses": responses,
    }
