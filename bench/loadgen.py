"""A lean HTTP load generator, so that the server is measured and not the client.

    run_load(url, path, bodies, clients) -> {"qps", "p50_ms", "p99_ms", "responses", ...}

Requests are fully pre-serialised (request line, headers and JSON body as one bytes object) and
sent over keep-alive TCP connections (one per client, TCP_NODELAY) by ``clients`` threads in a
separate process (``python bench/loadgen.py --spec ... --out ...``, stdlib only; the spec and
the results travel as JSON files). Each thread sends one request, reads the whole response, and
sends the next: a closed loop, like a user waiting for its answer. The run is bounded by a
request count and by a deadline, and only loopback addresses are accepted.
"""

from __future__ import annotations

import argparse
import itertools
import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def run_load(
    url: str,
    path: str,
    bodies: list[Any],
    clients: int,
    *,
    repeat: int = 1,
    warmup: int = 50,
    deadline_s: float = 60.0,
    keep_responses: bool = True,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """POST every body ``repeat`` times (spread over ``clients`` connections) after ``warmup``
    untimed requests. Returns qps, p50/p99/mean latency (ms), request and error counts, and,
    with ``keep_responses``, the decoded response to each body (in body order; None if it never
    completed)."""
    host = urlparse(url).hostname or ""
    if host not in LOOPBACK:
        raise ValueError(f"load generator is loopback-only, got host {host!r}")
    raw = [b if isinstance(b, bytes) else json.dumps(b, separators=(",", ":")).encode() for b in bodies]
    with tempfile.TemporaryDirectory(prefix="qbench-load-") as tmp:
        spec = Path(tmp) / "spec.json"
        out = Path(tmp) / "out.json"
        spec.write_text(
            json.dumps(
                {
                    "url": url,
                    "path": path,
                    "bodies": [b.decode() for b in raw],
                    "clients": clients,
                    "repeat": repeat,
                    "warmup": warmup,
                    "deadline_s": deadline_s,
                    "keep_responses": keep_responses,
                    "headers": headers or {},
                }
            )
        )
        subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--spec", str(spec), "--out", str(out)],
            check=True,
            timeout=deadline_s + 120,
        )
        result = json.loads(out.read_text())
    lat = sorted(result.pop("latencies_ms"))
    responses: list[Any] = [None] * len(raw)
    for i, text in result.pop("responses").items():
        responses[int(i)] = json.loads(text)
    done = len(lat)
    return {
        **result,
        "qps": done / result["elapsed_s"] if result["elapsed_s"] else 0.0,
        "p50_ms": lat[done // 2] if lat else 0.0,
        "p99_ms": lat[min(done - 1, int(done * 0.99))] if lat else 0.0,
        "mean_ms": sum(lat) / done if lat else 0.0,
        "responses": responses,
    }


class _Conn:
    """One keep-alive HTTP/1.1 connection that sends pre-built requests and reads responses
    (Content-Length or chunked)."""

    def __init__(self, host: str, port: int) -> None:
        self.addr = (host, port)
        self.sock: socket.socket | None = None
        self.reader: Any = None

    def _connect(self) -> None:
        self.sock = socket.create_connection(self.addr, timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = self.sock.makefile("rb")

    def close(self) -> None:
        if self.sock is not None:
            self.reader.close()
            self.sock.close()
            self.sock = None

    def send(self, request: bytes) -> tuple[int, bytes]:
        if self.sock is None:
            self._connect()
        assert self.sock is not None
        self.sock.sendall(request)
        status_line = self.reader.readline()
        if not status_line:
            raise ConnectionError("server closed the connection")
        status = int(status_line.split(b" ", 2)[1])
        length, chunked, close = -1, False, False
        while True:
            line = self.reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif name == b"connection" and b"close" in value.lower():
                close = True
        if chunked:
            parts = []
            while True:
                size = int(self.reader.readline().split(b";")[0], 16)
                if size == 0:
                    while self.reader.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                parts.append(self.reader.read(size))
                self.reader.readline()
            body = b"".join(parts)
        elif length >= 0:
            body = self.reader.read(length)
        else:
            body = self.reader.read()
            close = True
        if close:
            self.close()
        return status, body


def _worker(spec: dict[str, Any]) -> dict[str, Any]:
    parsed = urlparse(spec["url"])
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 80
    extra = "".join(f"{k}: {v}\r\n" for k, v in spec["headers"].items())
    requests = []
    for body in spec["bodies"]:
        data = body.encode()
        head = (
            f"POST {spec['path']} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Accept: application/json\r\nContent-Length: {len(data)}\r\n{extra}\r\n"
        )
        requests.append(head.encode() + data)
    n_bodies = len(requests)
    total = n_bodies * spec["repeat"]

    warm = _Conn(host, port)
    for i in range(min(spec["warmup"], total)):
        warm.send(requests[i % n_bodies])
    warm.close()

    counter = itertools.count()  # next() on it is atomic under the GIL
    stop_at = time.monotonic() + spec["deadline_s"]
    keep = spec["keep_responses"]
    latencies: list[float] = []
    responses: dict[int, str] = {}
    errors: list[str] = []
    lock = threading.Lock()

    def client() -> None:
        conn = _Conn(host, port)
        local_lat: list[float] = []
        try:
            while time.monotonic() < stop_at:
                i = next(counter)
                if i >= total:
                    break
                t0 = time.perf_counter()
                status, body = conn.send(requests[i % n_bodies])
                local_lat.append((time.perf_counter() - t0) * 1000)
                if status >= 300:
                    with lock:
                        errors.append(f"{status}: {body[:200]!r}")
                elif keep and i < n_bodies:
                    responses[i] = body.decode()
        except OSError as exc:
            with lock:
                errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            conn.close()
            with lock:
                latencies.extend(local_lat)

    threads = [threading.Thread(target=client) for _ in range(spec["clients"])]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    return {
        "elapsed_s": elapsed,
        "clients": spec["clients"],
        "requests": len(latencies),
        "errors": len(errors),
        "first_errors": errors[:5],
        "latencies_ms": latencies,
        "responses": {str(k): v for k, v in responses.items()},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--spec", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    spec = json.loads(Path(args.spec).read_text())
    Path(args.out).write_text(json.dumps(_worker(spec)))


if __name__ == "__main__":
    main()
