"""Memory benchmark: each engine built and served in its own process, its resident memory measured.

    python bench/memory.py [--quick] [--json PATH] [--dataset clustered|minilm] [--n N] [--repeats R]

For qcluster's LocalShard, raw FAISS HNSW and qdrant-edge-py (same data, M=16, ef_construct=100,
cosine, every vector indexed, one segment for the two engines that have segments), a fresh
Python process per engine and repeat:

1. loads the dataset and the engine's modules, and records its resident set (``VmRSS``): the
   *baseline* the process holds before the engine exists (the interpreter, the libraries, the
   data as numpy arrays), a fixed cost that is not memory per vector;
2. builds the engine (ingest, then index until fully indexed);
3. answers the benchmark's queries (ef 128) so what serving touches is resident too;
4. reports the peak resident set (``VmHWM``: the build's transient peak) and the resident set
   while serving (``VmRSS`` after a garbage collection), both minus the baseline, per vector.

The resident set is what the engine costs the machine as served: vectors, graph, ids, payload
structures, caches, allocator slack; memory-mapped files count once touched. It is the like for
like figure the per-structure estimates of ``bench/engine.py`` cannot give (qdrant-edge exposes
none). Figures are medians over ``--repeats`` processes per engine (default 3), engines run one
after another, so no engine's process shares the machine's memory with another engine's.
Full: 100k x 128; --quick: 20k.
"""

from __future__ import annotations

import gc
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import bench_args, fmt_row, result_head, say, stats, ticker, unavailable, write_json
from bench.datasets import Dataset, load

M, EF_CONSTRUCT, EF, K = 16, 100, 128, 10
ENGINES = ("qcluster", "faiss", "qdrant_edge")
CHILD = "--child"


def status_kb(field: str) -> int:
    """``VmRSS`` / ``VmHWM`` of this process from /proc/self/status, in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def trim() -> None:
    """Collect garbage and hand freed heap back to the system (glibc ``malloc_trim``), so the
    temporaries of loading the data are not counted in the baseline and then silently reused by
    the engine (which would make its memory look smaller than it is)."""
    import contextlib
    import ctypes

    gc.collect()
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def reset_peak() -> bool:
    """Reset this process's ``VmHWM`` to its current resident set (Linux >= 4.0: writing 5 to
    clear_refs); False where that is not allowed (the peak then includes the data loading)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


# ---------------------------------------------------------------------------------------------
# the child: one engine, one process
# ---------------------------------------------------------------------------------------------
def build_faiss(ds: Dataset, tmp: Path) -> Any:
    del tmp
    from bench.baselines.faiss_hnsw import FaissHnsw

    index = FaissHnsw(ds.dim, M, EF_CONSTRUCT)
    index.build(ds.base, threads=2)
    params = index.params(EF)
    return lambda q: index.search(q, K, params).tolist()


def build_edge(ds: Dataset, tmp: Path) -> Any:
    from bench.baselines.qdrant_edge import EdgeEngine

    edge = EdgeEngine(tmp / "edge", ds.dim, M, EF_CONSTRUCT, segments=1)
    edge.ingest(ds.base)
    edge.optimize()
    info = edge.info()
    if info["indexed_vectors"] < ds.n:
        raise RuntimeError(f"qdrant-edge: {info['indexed_vectors']}/{ds.n} vectors indexed after optimize")
    return lambda q: edge.search(edge.request(q.tolist(), K, EF))


def build_qcluster(ds: Dataset, tmp: Path) -> Any:
    import asyncio

    from bench.qcluster_shard import shard_config, wait_fully_indexed
    from qcluster.logging import setup_logging
    from qcluster.settings import StorageSettings
    from qcluster.shards.base import SearchParams, SearchRequest
    from qcluster.shards.local_shard import LocalShard
    from qcluster.shards.operations import NamedVectors, PointsBatch, UpsertPoints

    setup_logging("WARNING")
    loop = asyncio.new_event_loop()

    async def build() -> Any:
        shard = await LocalShard.load_or_create(
            tmp / "qcluster", shard_config(ds.dim, ds.n), StorageSettings()
        )
        for start in range(0, ds.n, 1000):
            ids = tuple(range(start, min(start + 1000, ds.n)))
            vectors = {"": NamedVectors(ds.base[start : start + len(ids)])}
            await shard.update(UpsertPoints(PointsBatch(ids, vectors, None)))
        await wait_fully_indexed(shard, ds.n)
        return shard

    shard = loop.run_until_complete(build())
    params = SearchParams(hnsw_ef=EF)

    def search(q: np.ndarray) -> list[int]:
        (hits,) = loop.run_until_complete(shard.search([SearchRequest(vector=q, limit=K, params=params)]))
        return [h.id for h in hits]

    return search


BUILDERS = {"qcluster": build_qcluster, "faiss": build_faiss, "qdrant_edge": build_edge}
# Imported before the baseline is taken: code and libraries are a fixed cost of the process, not
# memory per vector.
MODULES = {
    "qcluster": ("qcluster.shards.local_shard", "qcluster.settings", "bench.qcluster_shard"),
    "faiss": ("faiss", "bench.baselines.faiss_hnsw"),
    "qdrant_edge": ("qdrant_edge", "bench.baselines.qdrant_edge"),
}


def child(engine: str, dataset: str, n: int, nq: int) -> dict[str, Any]:
    """Run in the engine's own process: baseline, build, serve, measure."""
    import importlib

    ds = load(dataset, n, nq)
    for module in MODULES[engine]:
        importlib.import_module(module)
    trim()
    baseline = status_kb("VmRSS")
    peak_reset = reset_peak()
    tmp = Path(tempfile.mkdtemp(prefix=f"qbench-memory-{engine}-"))
    try:
        started = time.perf_counter()
        search = BUILDERS[engine](ds, tmp)
        build_s = time.perf_counter() - started
        found = [search(q) for q in ds.queries]
        recall = float(
            np.mean([len(set(f) & set(g.tolist())) / K for f, g in zip(found, ds.gt[:, :K], strict=True)])
        )
        trim()
        serving, peak = status_kb("VmRSS"), status_kb("VmHWM")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "baseline_kb": baseline,
        "peak_kb": peak,
        "serving_kb": serving,
        "peak_reset": peak_reset,
        "build_s": build_s,
        "recall_at_10": recall,
        "peak_bytes_per_vector": (peak - baseline) * 1024 / ds.n,
        "serving_bytes_per_vector": (serving - baseline) * 1024 / ds.n,
    }


# ---------------------------------------------------------------------------------------------
# the parent: a process per engine and repeat
# ---------------------------------------------------------------------------------------------
def spawn(engine: str, args: Any, n: int, nq: int) -> dict[str, Any]:
    cmd = [sys.executable, __file__, CHILD, engine, args.dataset, str(n), str(nq)]
    with ticker(f"{engine} in its own process"):
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{engine} process failed: {done.stderr.strip()[-400:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"runs": runs}
    for key in (
        "peak_bytes_per_vector",
        "serving_bytes_per_vector",
        "baseline_kb",
        "build_s",
        "recall_at_10",
    ):
        s = stats([r[key] for r in runs])
        out[key], out[f"{key}_min"], out[f"{key}_max"] = s["median"], s["min"], s["max"]
    out["peak_reset"] = all(r["peak_reset"] for r in runs)
    return out


def summary(result: dict[str, Any]) -> str:
    widths = [12, 14, 16, 12, 10, 8]
    lines = [fmt_row(["engine", "peak B/vec", "serving B/vec", "baseline MB", "build s", "recall"], widths)]
    for name in ENGINES:
        r = result["engines"].get(name)
        if r is None or "error" in r:
            lines.append(f"{name:>12}  {(r or {}).get('error', 'not run')}")
            continue
        lines.append(
            fmt_row(
                [
                    name,
                    r["peak_bytes_per_vector"],
                    r["serving_bytes_per_vector"],
                    r["baseline_kb"] / 1024,
                    r["build_s"],
                    r["recall_at_10"],
                ],
                widths,
            )
        )
    lines.append(f"medians of {result['repeats']} processes per engine")
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == CHILD:
        engine, dataset, n, nq = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
        print(json.dumps(child(engine, dataset, n, nq)))
        return
    args, n, nq = bench_args(__doc__, 200, 500, repeats=True)
    started = time.perf_counter()
    ds = load(args.dataset, n, nq)  # its name and shape for the results (each child loads its own)
    engines: dict[str, Any] = {}
    for name in ENGINES:
        if name == "qcluster" and args.skip_qcluster:
            engines[name] = unavailable("qcluster", RuntimeError("skipped (--skip-qcluster)"))
            continue
        say(f"== {name}")
        try:
            engines[name] = summarise([spawn(name, args, n, nq) for _ in range(args.repeats)])
        except Exception as exc:
            engines[name] = unavailable(name, exc)
    result = {**result_head("memory", ds, args, started), "engines": engines}
    print(summary(result))
    write_json(args.json, result)


if __name__ == "__main__":
    main()
