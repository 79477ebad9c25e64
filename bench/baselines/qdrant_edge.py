"""qdrant-edge-py: Qdrant's own shard engine (segments, HNSW, payload indexes, query planner) as an
in-process Python library. The peer to beat.

API facts this wrapper relies on (qdrant-edge-py 0.9, from its type stubs and docs):

- ``EdgeShard.create(path, EdgeConfig(...))`` / ``EdgeShard.load(path)``; ``close()``; ``flush()``.
- ``update(UpdateOperation.upsert_points([Point(id, vector, payload)]))`` applies synchronously;
  new points land in plain (unindexed, exact-search) segments.
- Optimisation is manual: ``optimize()`` runs the segment optimizers in-process and blocks until
  none is planned (indexing, merging), so "fully indexed" = after ``optimize()`` returns, checked
  with ``info().indexed_vectors_count``.
- ``query(QueryRequest(limit, query=Query.Nearest(vec), params=SearchParams(hnsw_ef), filter))``.
- ``UpdateOperation.create_field_index(key, PayloadSchemaType.Keyword | Integer | ...)``.
- Memory is not reported; the segments' allocated bytes on disk per vector are recorded instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import dir_bytes, percentile, progress, ticker
from bench.datasets import recall_at_k

M, EF_CONSTRUCT, FULL_SCAN_THRESHOLD_KB = 16, 100, 10_000
SCHEMAS = ("keyword", "integer", "float", "bool")


def _qe() -> Any:
    import qdrant_edge

    return qdrant_edge


class EdgeEngine:
    def __init__(
        self, path: Path, dim: int, m: int = M, ef_construct: int = EF_CONSTRUCT, segments: int | None = None
    ) -> None:
        """``segments``: the optimizer's ``default_segment_number`` (None = qdrant-edge's default)."""
        qe = _qe()
        self.qe = qe
        self.path = path
        self.config = qe.EdgeConfig(
            vectors=qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine),
            hnsw_config=qe.HnswIndexConfig(
                m=m, ef_construct=ef_construct, full_scan_threshold=FULL_SCAN_THRESHOLD_KB
            ),
            optimizers=None if segments is None else qe.EdgeOptimizersConfig(default_segment_number=segments),
        )
        self.shard = qe.EdgeShard.create(str(path), self.config)

    def create_index(self, key: str, schema: str) -> None:
        if schema not in SCHEMAS:
            raise ValueError(f"schema {schema!r} not one of {SCHEMAS}")
        kind = getattr(self.qe.PayloadSchemaType, schema.capitalize())
        self.shard.update(self.qe.UpdateOperation.create_field_index(key, kind))

    def create_index_params(self, key: str, params: Any) -> None:
        """A payload index with explicit parameters (``qe.KeywordIndexParams(is_tenant=True)``...)."""
        self.shard.update(self.qe.UpdateOperation.create_field_index(key, params))

    def ingest(
        self,
        base: np.ndarray,
        payload: Callable[[int], dict[str, Any]] | None = None,
        batch: int = 1000,
        label: str = "qdrant-edge ingest",
    ) -> float:
        """Upsert every row (id = row number) in batches; returns seconds. Vectors are passed as
        Python lists, the fastest form the bindings take."""
        qe = self.qe
        start = time.perf_counter()
        for lo in range(0, len(base), batch):
            rows = base[lo : lo + batch].tolist()
            pts = [
                qe.Point(id=lo + j, vector=v, payload=None if payload is None else payload(lo + j))
                for j, v in enumerate(rows)
            ]
            self.shard.update(qe.UpdateOperation.upsert_points(pts))
            progress(label, lo + len(rows), len(base))
        return time.perf_counter() - start

    def optimize(self, label: str = "qdrant-edge optimize (index)") -> float:
        """Run the optimizers to completion (blocking); returns seconds."""
        start = time.perf_counter()
        with ticker(label):
            self.shard.optimize()
        return time.perf_counter() - start

    def info(self) -> dict[str, int]:
        info = self.shard.info()
        return {
            "points": int(info.points_count),
            "indexed_vectors": int(info.indexed_vectors_count),
            "segments": int(info.segments_count),
        }

    def disk_bytes_per_vector(self) -> float:
        """Allocated bytes of the segments (vectors, graph, id tracker, payload; the WAL is left
        out) per point."""
        self.shard.flush()
        n = max(1, self.info()["points"])
        return dir_bytes(self.path / "segments") / n

    def reopen(self) -> float:
        """Close and load the shard again; returns the load time in seconds."""
        self.shard.close()
        start = time.perf_counter()
        self.shard = self.qe.EdgeShard.load(str(self.path))
        return time.perf_counter() - start

    def request(self, query: list[float], k: int, ef: int, flt: Any = None) -> Any:
        qe = self.qe
        return qe.QueryRequest(
            limit=k, query=qe.Query.Nearest(query), params=qe.SearchParams(hnsw_ef=ef), filter=flt
        )

    def search(self, request: Any) -> list[int]:
        return [int(p.id) for p in self.shard.query(request)]

    def run_queries(
        self,
        queries: np.ndarray,
        gt: np.ndarray,
        ef: int,
        flt: dict[str, Any] | None = None,
        allowed: int | None = None,
        k: int = 10,
        label: str = "qdrant-edge",
    ) -> dict[str, Any]:
        """Single-query loop (requests built before timing): QPS, p50/p99 ms, recall@k, and the
        number of short answers (fewer than k hits although ``allowed`` >= k points match)."""
        edge_filter = None if flt is None else to_edge_filter(self.qe, flt)
        requests = [self.request(q, k, ef, edge_filter) for q in queries.tolist()]
        lat: list[float] = []
        res: list[list[int]] = []
        step = max(1, len(requests) // 20)
        start = time.perf_counter()
        for i, req in enumerate(requests):
            t0 = time.perf_counter()
            res.append(self.search(req))
            lat.append((time.perf_counter() - t0) * 1000)
            if i % step == 0 or i == len(requests) - 1:
                progress(label, i + 1, len(requests))
        elapsed = time.perf_counter() - start
        limit = min(k, self.info()["points"] if allowed is None else allowed)
        return {
            "qps": len(requests) / elapsed,
            "recall_at_10": recall_at_k(res, gt, k),
            "p50_ms": percentile(lat, 50),
            "p99_ms": percentile(lat, 99),
            "short_results": sum(1 for r in res if len(r) < limit),
        }

    def close(self) -> None:
        self.shard.close()


def to_edge_filter(qe: Any, flt: dict[str, Any]) -> Any:
    """A Qdrant filter in its JSON form (must / should / must_not with ``match`` value/any/except
    and numeric ``range`` conditions, nested filters) as qdrant-edge objects."""

    def cond(c: dict[str, Any]) -> Any:
        if any(k in c for k in ("must", "should", "must_not")):
            return to_edge_filter(qe, c)
        key = c["key"]
        if "match" in c:
            m = c["match"]
            if "value" in m:
                return qe.FieldCondition(key=key, match=qe.MatchValue(value=m["value"]))
            if "any" in m:
                return qe.FieldCondition(key=key, match=qe.MatchAny(any=list(m["any"])))
            if "except" in m:
                return qe.FieldCondition(key=key, match=qe.MatchExcept(**{"except": list(m["except"])}))
        if "range" in c:
            r = {k: float(v) for k, v in c["range"].items() if v is not None}
            return qe.FieldCondition(key=key, range=qe.RangeFloat(**r))
        raise ValueError(f"condition not supported by the bench converter: {c}")

    parts = {k: [cond(c) for c in flt[k]] for k in ("must", "should", "must_not") if flt.get(k)}
    return qe.Filter(**parts)
