"""Filtered search benchmark: recall@10, QPS and p50/p99 at several selectivities, with filters
random and correlated with the vector clusters, and tenants, for qcluster, raw FAISS HNSW with an
id selector (the naive baseline) and qdrant-edge-py with payload indexes (Qdrant's own planner).

    python bench/filtered.py [--quick] [--json PATH] [--dataset clustered|minilm] [--n N] [--repeats R]

Payloads: ``tenant`` (keyword, 20 values), ``category`` (keyword, the point's vector cluster),
``price`` (integer, uniform 0..99,999), ``sub`` (integer, uniform 0..999) and ``org`` (keyword
with ``is_tenant``, 100 values of Zipf-distributed size: the largest holds ~19 % of the points,
the smallest ~0.2 %). Filters:
- random: ``price`` in a window of width s * 100,000 at s = 0.1 %, 1 %, 10 %, 50 %, the window
  sliding with the query (every query its own filter: no engine can serve one from what it
  remembered of another);
- correlated: ``category`` in a few clusters (one cluster plus a sliding ``sub`` window when s is
  below one cluster's share; else a different set of clusters per query), so allowed points sit
  in a few clusters, away from most queries;
- tenant: ``tenant == t0`` (~5 %), the multi-tenant case;
- zipf tenants: query i asks for ``org == o{i % 100}`` (every tenant, large and small, equally
  often), and the largest tenant alone.
Ground truth: exact search over the allowed points.

Method (equal work, repeats): every engine is built once on the same data and checked fully
indexed (qcluster and qdrant-edge: every vector in an HNSW segment, one indexed segment each);
then the cases run ``--repeats`` times (default 3). Within a case the engines take turns by
chunks of 10 queries (the order rotating per chunk), so load from other processes on the shared
cores falls on every engine alike; requests and filters are built before timing for every
engine, and an engine's QPS is its query count over the sum of its per-query latencies. Each
figure is the median over the repeats (min and max kept in the JSON), and the qcluster /
qdrant-edge ratio is computed per repeat and its median reported.
Full: 100k x 128, 500 queries; --quick: 20k, 200 queries.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (
    Call,
    bench_args,
    fmt_row,
    interleaved,
    progress,
    result_head,
    say,
    stats,
    unavailable,
    write_json,
)
from bench.datasets import Dataset, ground_truth, load
from bench.qcluster_shard import shard_config, wait_fully_indexed

M, EF_CONSTRUCT, EF, K = 16, 100, 128, 10
SELECTIVITIES = (0.001, 0.01, 0.1, 0.5)
ORGS = 100
INDEXES: tuple[tuple[str, Any], ...] = (
    ("category", "keyword"),
    ("price", "integer"),
    ("sub", "integer"),
    ("tenant", "keyword"),
    ("org", {"type": "keyword", "is_tenant": True}),
)
ENGINES = ("qcluster", "faiss", "qdrant_edge")


def make_columns(labels: np.ndarray, seed: int = 3) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = len(labels)
    zipf = 1.0 / np.arange(1, ORGS + 1)
    return {
        "tenant": rng.integers(0, 20, n),
        "category": labels,  # follows the vector clusters
        "price": rng.integers(0, 100_000, n),
        "sub": rng.integers(0, 1000, n),
        "org": rng.choice(ORGS, size=n, p=zipf / zipf.sum()),
    }


def payload(cols: dict[str, np.ndarray], i: int) -> dict[str, Any]:
    return {
        "tenant": f"t{int(cols['tenant'][i])}",
        "category": f"c{int(cols['category'][i])}",
        "price": int(cols["price"][i]),
        "sub": int(cols["sub"][i]),
        "org": f"o{int(cols['org'][i])}",
    }


def _case(kind: str, s: float, flt: dict[str, Any] | None, mask: np.ndarray, nq: int) -> dict[str, Any]:
    return {"kind": kind, "selectivity": s, "filters": [flt] * nq, "masks": [mask] * nq}


def _window(i: int, width: int, span: int) -> int:
    """Query i's window start in 0..span-width: spread over the span, one per query."""
    return (i * 7919) % (span - width + 1)


def cases(cols: dict[str, np.ndarray], nq: int) -> list[dict[str, Any]]:
    """Each case: kind, target selectivity, and per query the Qdrant filter JSON and its mask.
    Random and correlated cases give every query its own filter of the same selectivity (a
    window that slides with the query), so no engine serves a query from what it remembered of
    an earlier one; the tenant cases repeat their filters, as tenants do."""
    n = len(cols["price"])
    out: list[dict[str, Any]] = []
    for s in SELECTIVITIES:
        width = round(s * 100_000)
        starts = [_window(i, width, 100_000) for i in range(nq)]
        out.append(
            {
                "kind": "random",
                "selectivity": s,
                "filters": [
                    {"must": [{"key": "price", "range": {"gte": a, "lt": a + width}}]} for a in starts
                ],
                "masks": [(cols["price"] >= a) & (cols["price"] < a + width) for a in starts],
            }
        )
    counts = np.bincount(cols["category"])
    clusters = len(counts)
    for s in SELECTIVITIES:
        target = s * n
        filters: list[dict[str, Any]] = []
        masks: list[np.ndarray] = []
        if target < counts.min():  # a slice of one cluster
            for i in range(nq):
                c = i % clusters
                width = max(1, round(1000 * target / counts[c]))
                a = _window(i, width, 1000)
                filters.append(
                    {
                        "must": [
                            {"key": "category", "match": {"any": [f"c{c}"]}},
                            {"key": "sub", "range": {"gte": a, "lt": a + width}},
                        ]
                    }
                )
                masks.append((cols["category"] == c) & (cols["sub"] >= a) & (cols["sub"] < a + width))
        else:  # whole clusters: k of them, a different set for every query
            k = int(np.searchsorted(np.cumsum(counts), target)) + 1
            pick = np.random.default_rng(k)
            for _ in range(nq):
                run = sorted(int(c) for c in pick.choice(clusters, size=k, replace=False))
                filters.append({"must": [{"key": "category", "match": {"any": [f"c{c}" for c in run]}}]})
                masks.append(np.isin(cols["category"], run))
        out.append({"kind": "correlated", "selectivity": s, "filters": filters, "masks": masks})
    out.append(
        _case(
            "tenant", 0.05, {"must": [{"key": "tenant", "match": {"value": "t0"}}]}, cols["tenant"] == 0, nq
        )
    )
    org_masks = [cols["org"] == o for o in range(ORGS)]
    out.append(
        {
            "kind": "zipf tenants",
            "selectivity": 1.0 / ORGS,
            "filters": [{"must": [{"key": "org", "match": {"value": f"o{i % ORGS}"}}]} for i in range(nq)],
            "masks": [org_masks[i % ORGS] for i in range(nq)],
        }
    )
    top = {"must": [{"key": "org", "match": {"value": "o0"}}]}
    out.append(_case("largest tenant", float(org_masks[0].mean()), top, org_masks[0], nq))
    out.append(_case("unfiltered", 1.0, None, np.ones(n, dtype=np.bool_), nq))
    return out


def case_truth(ds: Dataset, case: dict[str, Any]) -> np.ndarray:
    """Exact top-10 per query among that query's allowed points (queries grouped by mask)."""
    gt = np.full((len(ds.queries), K), -1, dtype=np.int64)
    groups: dict[int, tuple[np.ndarray, list[int]]] = {}
    for i, mask in enumerate(case["masks"]):
        groups.setdefault(id(mask), (mask, []))[1].append(i)
    for mask, rows in groups.values():
        gt[rows] = ground_truth(ds.base, ds.queries[rows], K, mask)
    return gt


def label(case: dict[str, Any]) -> str:
    return f"{case['kind']} {case['selectivity']:.1%}"


def measure(calls: dict[str, Sequence[Call]], case: dict[str, Any]) -> Any:
    """Every engine's calls for one case, interleaved by chunks (``common.interleaved``)."""
    allowed = [min(K, int(m.sum())) for m in case["masks"]]
    return interleaved(calls, case["gt"], allowed, label(case))


# ---------------------------------------------------------------------------------------------
# engines: build once, then ``run(case)`` measures one case
# ---------------------------------------------------------------------------------------------
class FaissRun:
    def __init__(self, ds: Dataset) -> None:
        from bench.baselines.faiss_hnsw import FaissHnsw

        self.ds = ds
        self.index = FaissHnsw(ds.dim, M, EF_CONSTRUCT)
        self.index.build(ds.base, threads=2)
        self._params: dict[int, Any] = {}

    def _p(self, mask: np.ndarray | None) -> Any:
        key = 0 if mask is None else id(mask)
        if key not in self._params:
            self._params[key] = self.index.params(EF, mask)
        return self._params[key]

    def calls(self, case: dict[str, Any]) -> list[Call]:
        unfiltered = case["kind"] == "unfiltered"
        params = [self._p(None if unfiltered else m) for m in case["masks"]]
        search, qs = self.index.search, self.ds.queries
        return [lambda q=q, p=p: search(q, K, p).tolist() for q, p in zip(qs, params, strict=True)]

    def close(self) -> None:
        pass


class EdgeRun:
    def __init__(self, ds: Dataset, cols: dict[str, np.ndarray], tmp: Path) -> None:
        import qdrant_edge as qe

        from bench.baselines.qdrant_edge import EdgeEngine, to_edge_filter

        self.qe, self.ds, self._to_filter = qe, ds, to_edge_filter
        # one indexed segment, like qcluster's (default_segment_number 0 = auto there: one)
        self.edge = EdgeEngine(tmp / "edge", ds.dim, M, EF_CONSTRUCT, segments=1)
        for key, schema in INDEXES:
            if isinstance(schema, dict):
                self.edge.create_index_params(key, qe.KeywordIndexParams(is_tenant=schema["is_tenant"]))
            else:
                self.edge.create_index(key, schema)
        self.edge.ingest(ds.base, payload=lambda i: payload(cols, i))
        self.edge.optimize()
        self.info = self.edge.info()
        if self.info["indexed_vectors"] < ds.n:
            raise RuntimeError(
                f"qdrant-edge: {self.info['indexed_vectors']}/{ds.n} vectors indexed after optimize"
            )

    def calls(self, case: dict[str, Any]) -> list[Call]:
        cache: dict[int, Any] = {}
        reqs = []
        for q, flt in zip(self.ds.queries.tolist(), case["filters"], strict=True):
            if flt is not None and id(flt) not in cache:
                cache[id(flt)] = self._to_filter(self.qe, flt)
            reqs.append(self.edge.request(q, K, EF, None if flt is None else cache[id(flt)]))
        search = self.edge.search
        return [lambda r=r: search(r) for r in reqs]

    def close(self) -> None:
        self.edge.close()


class QclusterRun:
    """qcluster's LocalShard with payload indexes, driven in process like the other engines."""

    def __init__(self, ds: Dataset) -> None:
        self.ds = ds
        self.shard: Any = None
        self.info: dict[str, int] = {}

    async def build(self, cols: dict[str, np.ndarray], tmp: Path) -> None:
        from qcluster.settings import StorageSettings
        from qcluster.shards.local_shard import LocalShard
        from qcluster.shards.operations import CreateFieldIndex, NamedVectors, PointsBatch, UpsertPoints

        ds = self.ds
        self.shard = await LocalShard.load_or_create(
            tmp / "qcluster", shard_config(ds.dim, ds.n), StorageSettings()
        )
        for key, schema in INDEXES:
            await self.shard.update(CreateFieldIndex(key, schema))
        for start in range(0, ds.n, 1000):
            ids = tuple(range(start, min(start + 1000, ds.n)))
            payloads = tuple(payload(cols, i) for i in ids)
            batch = PointsBatch(ids, {"": NamedVectors(ds.base[start : start + len(ids)])}, payloads)
            await self.shard.update(UpsertPoints(batch))
            progress("qcluster ingest", start + len(ids), ds.n)
        info = await wait_fully_indexed(self.shard, ds.n)
        indexes = [idx for seg in self.shard.set.segments for idx in seg.indexes.values()]
        graphs = {k: g for idx in indexes for k, g in getattr(idx, "payload_graphs", {}).items()}
        self.info = {
            "indexed_vectors": info.indexed_vectors_count,
            "segments": info.segments_count,
            "index_bytes_per_vector": sum(i.memory_bytes() for i in indexes) / ds.n,
            "payload_graph_bytes_per_vector": {k: g.memory_bytes() / ds.n for k, g in graphs.items()},
            "payload_graph_values": {k: len(g.values) for k, g in graphs.items()},
        }

    def calls(self, case: dict[str, Any]) -> list[Call]:
        from qcluster.shards.base import SearchParams, SearchRequest

        params = SearchParams(hnsw_ef=EF)
        reqs = [
            SearchRequest(vector=q, limit=K, filter=flt, params=params)
            for q, flt in zip(self.ds.queries, case["filters"], strict=True)
        ]
        search = self.shard.search

        async def one(req: Any) -> list[int]:
            (hits,) = await search([req])
            return [h.id for h in hits]

        return [lambda r=r: one(r) for r in reqs]

    async def close(self) -> None:
        if self.shard is not None:
            await self.shard.close()


# ---------------------------------------------------------------------------------------------
# the run: build, repeat interleaved, summarise
# ---------------------------------------------------------------------------------------------
def summarise(
    all_cases: list[dict[str, Any]], runs: dict[str, list[list[dict[str, Any]]]], n: int
) -> list[dict[str, Any]]:
    """One row per case: per engine the median (min, max) of each figure over the repeats, and the
    median of the per-repeat qcluster / qdrant-edge QPS ratios."""
    rows = []
    for ci, case in enumerate(all_cases):
        matching = float(np.mean([int(m.sum()) for m in case["masks"]]))
        row: dict[str, Any] = {
            "kind": case["kind"],
            "selectivity": case["selectivity"],
            "matching": round(matching),
            "actual_selectivity": matching / n,
            "filter": case["filters"][0],
        }
        for engine in ENGINES:
            reps = [r[ci] for r in runs.get(engine, []) if r and ci < len(r)]
            prefix = "" if engine == "qcluster" else f"{engine}_"
            if not reps:
                continue
            qps = stats([r["qps"] for r in reps])
            row[f"{prefix}qps"] = qps["median"]
            row[f"{prefix}qps_min"] = qps["min"]
            row[f"{prefix}qps_max"] = qps["max"]
            for key in ("recall_at_10", "p50_ms", "p99_ms"):
                row[f"{prefix}{key}"] = stats([r[key] for r in reps])["median"]
            row[f"{prefix}short_results"] = max(r["short_results"] for r in reps)
            row[f"{prefix}runs"] = reps
        q, e = runs.get("qcluster", []), runs.get("qdrant_edge", [])
        ratios = [qr[ci]["qps"] / er[ci]["qps"] for qr, er in zip(q, e, strict=False) if qr and er]
        spread = stats(ratios)
        row["ratio_vs_edge"], row["ratio_vs_edge_min"], row["ratio_vs_edge_max"] = (
            spread["median"],
            spread["min"],
            spread["max"],
        )
        rows.append(row)
    return rows


async def run_all(
    ds: Dataset, cols: dict[str, np.ndarray], all_cases: list[dict[str, Any]], tmp: Path, args: Any
) -> dict[str, Any]:
    engines: dict[str, Any] = {}
    errors: dict[str, dict[str, Any]] = {}
    say("== raw FAISS HNSW + IDSelectorBitmap")
    try:
        engines["faiss"] = FaissRun(ds)
    except Exception as exc:
        errors["faiss"] = unavailable("faiss", exc)
    say("== qdrant-edge-py with payload indexes")
    try:
        engines["qdrant_edge"] = EdgeRun(ds, cols, tmp)
    except Exception as exc:
        errors["qdrant_edge"] = unavailable("qdrant-edge", exc)
    say("== qcluster LocalShard with payload indexes")
    if args.skip_qcluster:
        errors["qcluster"] = unavailable("qcluster", RuntimeError("skipped (--skip-qcluster)"))
    else:
        try:
            from qcluster.logging import setup_logging

            setup_logging("WARNING")
            q = QclusterRun(ds)
            await q.build(cols, tmp)
            engines["qcluster"] = q
        except Exception as exc:
            errors["qcluster"] = unavailable("qcluster", exc)
    runs: dict[str, list[list[dict[str, Any]]]] = {name: [] for name in engines}
    order = [e for e in ENGINES if e in engines]
    try:
        for rep in range(args.repeats):
            say(f"== repeat {rep + 1} of {args.repeats}")
            for name in engines:
                runs[name].append([])
            for case in all_cases:
                rows = await measure({name: engines[name].calls(case) for name in order}, case)
                for name in order:
                    runs[name][-1].append(rows[name])
    finally:
        for name, eng in engines.items():
            if name == "qcluster":
                await eng.close()
            else:
                eng.close()
    info = {name: getattr(eng, "info", {}) for name, eng in engines.items()}
    return {"runs": runs, "errors": errors, "info": info}


def summary(result: dict[str, Any]) -> str:
    widths = [16, 7, 6, 8, 8, 8, 8, 8, 8, 7]
    head = ["kind", "sel", "match", "q recall", "q QPS", "F recall", "F QPS", "E recall", "E QPS", "q/E"]
    lines = [fmt_row(head, widths)]
    for r in result["rows"]:
        lines.append(
            fmt_row(
                [
                    r["kind"],
                    f"{r['selectivity']:.1%}",
                    r["matching"],
                    r.get("recall_at_10"),
                    r.get("qps"),
                    r.get("faiss_recall_at_10"),
                    r.get("faiss_qps"),
                    r.get("qdrant_edge_recall_at_10"),
                    r.get("qdrant_edge_qps"),
                    None if r.get("ratio_vs_edge") is None else f"{r['ratio_vs_edge']:.2f}x",
                ],
                widths,
            )
        )
    lines.append(f"medians of {result['repeats']} repeats")
    lines += [f"{k}: {v['error']}" for k, v in result["errors"].items()]
    return "\n".join(lines)


def main() -> None:
    args, n, nq = bench_args(__doc__, 200, 500, repeats=True)
    say("== data + exact ground truth")
    ds = load(args.dataset, n, nq)
    cols = make_columns(ds.labels)
    all_cases = cases(cols, len(ds.queries))
    for case in all_cases:
        case["gt"] = ds.gt[:, :K] if case["kind"] == "unfiltered" else case_truth(ds, case)
    tmp = Path(tempfile.mkdtemp(prefix="qbench-filtered-"))
    started = time.perf_counter()
    try:
        out = asyncio.run(run_all(ds, cols, all_cases, tmp, args))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    rows = summarise(all_cases, out["runs"], ds.n)
    result = {
        **result_head("filtered", ds, args, started),
        "ef": EF,
        "engines_info": out["info"],
        "rows": [r for r in rows if r["kind"] != "unfiltered"],
        "unfiltered": next((r for r in rows if r["kind"] == "unfiltered"), {}),
        "errors": out["errors"],
    }
    print(summary({**result, "rows": rows}))
    write_json(args.json, result)


if __name__ == "__main__":
    main()
