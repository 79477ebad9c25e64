"""Shared benchmark helpers: data, ground truth, recall, timing, progress, results files."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
MINILM = REPO.parent / "shared" / "datasets" / "minilm-20k"


def clustered(
    n: int, dim: int, clusters: int = 100, seed: int = 0, intrinsic: int = 16
) -> tuple[np.ndarray, np.ndarray]:
    """Unit-length vectors in gaussian clusters whose spread lies mostly in a low-dimensional
    subspace (as real embeddings do). Returns (vectors, cluster labels)."""
    rng = np.random.default_rng(seed)
    basis_rng = np.random.default_rng(777)
    centers = basis_rng.standard_normal((clusters, dim)).astype(np.float32) * 2.0
    basis = basis_rng.standard_normal((intrinsic, dim)).astype(np.float32) / np.sqrt(intrinsic)
    labels = rng.integers(0, clusters, n)
    x = centers[labels] + rng.standard_normal((n, intrinsic)).astype(np.float32) @ basis * 1.5
    x += 0.05 * rng.standard_normal((n, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), labels


def queries_for(n: int, dim: int, seed: int = 1) -> np.ndarray:
    return clustered(n, dim, seed=seed)[0]


def ground_truth(
    base: np.ndarray, queries: np.ndarray, k: int = 10, mask: np.ndarray | None = None
) -> np.ndarray:
    """Exact top-k by inner product (cosine on unit vectors), chunked; -1 pads short rows."""
    out = np.full((len(queries), k), -1, dtype=np.int64)
    rows = np.arange(len(base)) if mask is None else np.flatnonzero(mask)
    sub = base[rows]
    for start in range(0, len(queries), 256):
        s = queries[start : start + 256] @ sub.T
        kk = min(k, s.shape[1])
        if kk == 0:
            continue
        part = np.argpartition(-s, kk - 1, axis=1)[:, :kk]
        order = np.argsort(-np.take_along_axis(s, part, axis=1), axis=1)
        out[start : start + 256, :kk] = rows[np.take_along_axis(part, order, axis=1)]
    return out


def recall_at_k(found: Iterable[Iterable[int]], truth: np.ndarray, k: int = 10) -> float:
    scores = []
    for got, want in zip(found, truth, strict=True):
        w = {int(x) for x in want[:k] if x >= 0}
        if not w:
            continue
        scores.append(len(w & {int(x) for x in list(got)[:k]}) / len(w))
    return float(np.mean(scores)) if scores else 1.0


def progress(label: str, done: int, total: int) -> None:
    width = 30
    frac = 0 if total == 0 else done / total
    bar = "#" * int(frac * width)
    sys.stderr.write(f"\r  {label:<28} [{bar:<{width}}] {done}/{total}")
    if done >= total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def timed_loop(fn: Callable[[int], Any], count: int, label: str) -> tuple[float, list[float], list[Any]]:
    """Run fn(i) for i < count; returns (qps, latencies in ms, results)."""
    lat, results = [], []
    start = time.perf_counter()
    for i in range(count):
        t0 = time.perf_counter()
        results.append(fn(i))
        lat.append((time.perf_counter() - t0) * 1000)
        if i % max(1, count // 20) == 0 or i == count - 1:
            progress(label, i + 1, count)
    total = time.perf_counter() - start
    return count / total, lat, results


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
    }


def write_json(path: str | None, data: dict[str, Any]) -> None:
    text = json.dumps(data, indent=2, default=float)
    print(text)
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text)


def percentile(lat: list[float], p: float) -> float:
    return float(np.percentile(np.asarray(lat), p)) if lat else 0.0


async def wait_indexed(shard: Any, n: int, timeout: float = 600.0) -> Any:
    """Until every vector is in an index and the optimizer is idle; fails loudly on an optimizer
    error or when the deadline passes (benchmarks are bounded in time)."""
    import asyncio

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = await shard.info()
        if info.optimizer_error:
            raise RuntimeError(f"optimizer failed: {info.optimizer_error}")
        if info.indexed_vectors_count >= n and shard.optimizer.idle:
            return info
        await asyncio.sleep(0.05)
    raise TimeoutError(f"not fully indexed after {timeout}s: {info}")
