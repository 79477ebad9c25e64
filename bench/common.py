"""Shared benchmark plumbing: progress lines on stderr, timing loops, machine description, JSON
results, free ports, HTTP readiness, directory sizes."""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import threading
import time
import traceback
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np


def progress(label: str, done: int, total: int) -> None:
    """One self-overwriting progress bar line on stderr; ends the line when done."""
    width = 30
    frac = 1.0 if total <= 0 else min(1.0, done / total)
    bar = "#" * int(frac * width)
    sys.stderr.write(f"\r  {label:<34} [{bar:<{width}}] {frac:4.0%} {done}/{total}")
    if done >= total:
        sys.stderr.write("\n")
    sys.stderr.flush()


@contextmanager
def ticker(label: str, every_s: float = 1.0) -> Iterator[None]:
    """For one opaque blocking phase (an index build, a server start): prints the elapsed seconds
    on stderr while it runs and the total when it ends."""
    stop = threading.Event()
    start = time.perf_counter()

    def tick() -> None:
        while not stop.wait(every_s):
            sys.stderr.write(f"\r  {label:<34} ... {time.perf_counter() - start:6.1f} s")
            sys.stderr.flush()

    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        sys.stderr.write(f"\r  {label:<34} done in {time.perf_counter() - start:6.1f} s\n")
        sys.stderr.flush()


def say(msg: str) -> None:
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


def timed_loop(fn: Callable[[int], Any], count: int, label: str) -> tuple[float, list[float], list[Any]]:
    """Run fn(i) for i < count, one call at a time. Returns (calls per second, latencies in ms,
    results)."""
    lat: list[float] = []
    results: list[Any] = []
    step = max(1, count // 20)
    start = time.perf_counter()
    for i in range(count):
        t0 = time.perf_counter()
        results.append(fn(i))
        lat.append((time.perf_counter() - t0) * 1000)
        if i % step == 0 or i == count - 1:
            progress(label, i + 1, count)
    total = time.perf_counter() - start
    return count / total, lat, results


def percentile(lat: list[float], p: float) -> float:
    return float(np.percentile(np.asarray(lat), p)) if lat else 0.0


def git_commit() -> str | None:
    """The checked-out commit of the repository (with ``+dirty`` for uncommitted changes)."""
    repo = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo, capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+dirty" if dirty else "")


def machine() -> dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "commit": git_commit(),
        "load_avg_1m": os.getloadavg()[0],
    }


def write_json(path: str | None, data: dict[str, Any]) -> None:
    """Write the results to ``path`` (or stdout when no path is given)."""
    text = json.dumps(data, indent=2, default=float)
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text + "\n")
        say(f"results written to {path}")
    else:
        print(text)


def result_head(benchmark: str, ds: Any, args: argparse.Namespace, started: float) -> dict[str, Any]:
    """The fields every results JSON opens with: the benchmark, its data, its size and repeats,
    the machine (with its load) and the time it took since ``started`` (``perf_counter``)."""
    return {
        "benchmark": benchmark,
        "dataset": ds.name,
        "n": ds.n,
        "dim": ds.dim,
        "queries": len(ds.queries),
        "quick": args.quick,
        "repeats": getattr(args, "repeats", 1),
        "machine": machine(),
        "elapsed_s": time.perf_counter() - started,
    }


def unavailable(engine: str, exc: BaseException) -> dict[str, Any]:
    """The result of an engine that could not run: printed, and recorded in the JSON."""
    lines = [ln.strip() for ln in f"{type(exc).__name__}: {exc}".strip().splitlines() if ln.strip()]
    reason = lines[0] if len(lines) == 1 else f"{lines[0]} ... {lines[-1]}"
    reason = reason[:400]
    say(f"{engine}: not available ({reason})")
    if os.environ.get("BENCH_TRACEBACK"):
        traceback.print_exc()
    return {"error": f"{engine}: not available ({reason})"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 60.0, alive: Callable[[], bool] | None = None) -> None:
    """Poll ``url`` until it answers 2xx, the deadline passes, or ``alive()`` turns false."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            raise RuntimeError(f"process serving {url} exited")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if 200 <= resp.status < 300:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} not ready in {timeout:.0f} s")


def dir_bytes(path: Path) -> int:
    """Bytes actually allocated on disk under ``path`` (sparse, preallocated files count only
    their written blocks)."""
    return sum(p.stat().st_blocks * 512 for p in path.rglob("*") if p.is_file())


def fmt_row(cells: list[Any], widths: list[int]) -> str:
    out = []
    for cell, w in zip(cells, widths, strict=True):
        if cell is None:
            text = "n/a"
        elif isinstance(cell, float):
            text = f"{cell:,.4f}" if cell < 1.0 else f"{cell:,.0f}" if cell >= 100 else f"{cell:,.2f}"
        else:
            text = str(cell)
        out.append(text.rjust(w))
    return "  ".join(out)


def bench_args(
    doc: str | None, quick_queries: int, full_queries: int, repeats: bool = False
) -> tuple[argparse.Namespace, int, int]:
    """The options every benchmark takes; returns (args, points, queries) for quick or full size.
    ``repeats`` adds ``--repeats R`` (default 3): timed loops run R times, figures are medians."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help=f"20k points, {quick_queries:,} queries")
    ap.add_argument("--json", default=None, help="write the results here")
    ap.add_argument("--dataset", choices=["clustered", "minilm"], default="clustered")
    ap.add_argument("--n", type=int, default=None, help="number of points (clustered only)")
    ap.add_argument("--skip-qcluster", action="store_true", help="reference engines only")
    if repeats:
        ap.add_argument("--repeats", type=int, default=3, help="timed repeats per figure (median kept)")
    args = ap.parse_args()
    n = args.n or (20_000 if args.quick else 100_000)
    return args, n, quick_queries if args.quick else full_queries


# ---------------------------------------------------------------------------------------------
# Interleaved timing: every engine answers the same queries in chunks of CHUNK, engine after
# engine (the order rotating per chunk), so a burst of load on the shared cores hits every engine
# alike. An engine's QPS is its query count over the sum of its per-query latencies.
# ---------------------------------------------------------------------------------------------
CHUNK = 10
Call = Callable[[], Any]  # returns the ids found, or an awaitable of them (qcluster)


def result_row(
    lat: list[float], res: list[list[int]], gt: np.ndarray, allowed: list[int], k: int = 10
) -> dict[str, Any]:
    from bench.datasets import recall_at_k

    return {
        "qps": 1000.0 * len(lat) / sum(lat),
        "recall_at_10": recall_at_k(res, gt, k),
        "p50_ms": percentile(lat, 50),
        "p99_ms": percentile(lat, 99),
        "short_results": sum(1 for r, a in zip(res, allowed, strict=True) if len(r) < a),
    }


async def interleaved(
    calls: dict[str, Any], gt: np.ndarray, allowed: list[int], label: str, k: int = 10
) -> dict[str, dict[str, Any]]:
    """Run ``calls[engine][i]()`` for every query i and engine, interleaved by chunks; one row per
    engine (``allowed[i]``: the fewest hits query i should return)."""
    import inspect

    names = list(calls)
    nq = len(next(iter(calls.values())))
    lat: dict[str, list[float]] = {n: [] for n in names}
    res: dict[str, list[list[int]]] = {n: [] for n in names}
    for ci, start in enumerate(range(0, nq, CHUNK)):
        order = names[ci % len(names) :] + names[: ci % len(names)]
        for name in order:
            for call in calls[name][start : start + CHUNK]:
                t0 = time.perf_counter()
                out = call()
                if inspect.isawaitable(out):
                    out = await out
                lat[name].append((time.perf_counter() - t0) * 1000)
                res[name].append(out)
        progress(label, min(start + CHUNK, nq), nq)
    return {n: result_row(lat[n], res[n], gt, allowed, k) for n in names}


def stats(values: list[Any]) -> dict[str, Any]:
    """Median, min and max of the figures that exist (None when none does)."""
    import statistics

    vals = [v for v in values if v is not None]
    if not vals:
        return {"median": None, "min": None, "max": None}
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals)}
