"""The FAISS index over one sealed segment's named vector: build, extend, search, save and load.

Rows ``0..size-1`` are the segment's offsets. Inputs are preprocessed (``distance.py``); outputs
are Qdrant scores, best first, offset ``-1`` / score ``nan`` in empty slots.

``kind``     FAISS index (``hnsw.m == 0``: the ``flat*`` twin, searched exhaustively)
``hnsw``     IndexHNSWFlat; IP for Cosine/Dot, L2 for Euclid, L1 for Manhattan     (``flat``)
``hnsw_sq8`` IndexHNSWSQ QT_8bit, per-dimension ranges                            (``flat_sq8``)
``hnsw_pq``  IndexHNSWPQ 8-bit codes, graph linked on the floats and grafted on   (``flat_pq``)
``binary``   IndexBinaryHNSW / IndexBinaryFlat over sign bits, always rescored

Every (distance, quantization, size) combination is planned in pure Python (:func:`plan_index`)
before FAISS sees it: FAISS aborts the process for SQ with L1, returns garbage for PQ with L1
and segfaults on HNSW ``M == 1``. Manhattan keeps float vectors (``warning`` says quantization
is ignored), ``m == 1`` becomes 2, PQ with fewer than ``PQ_MIN_POINTS`` points falls back to SQ8.
Quantized Cosine uses L2 (same ranking for unit vectors, score = 1 - d^2/2): IP over clipped
or PQ codes lost 3-10 points of recall in our tests. FAISS links an IP graph over PQ codes with
L2 symmetric distances (~15 points of recall lost), hence the graft.

Quantized search: unless ``rescore`` is false, ``ceil(limit * oversampling)`` candidates come
from the codes and are rescored exactly on ``originals`` (the segment's float32 vectors, often
memory-mapped). ``ignore=True`` ranks by the originals: flat kinds search them exhaustively,
graph kinds rescore at least ``2 * limit`` graph candidates. Binary codes always rescore, with
at least ``BINARY_MIN_OVERSAMPLING`` candidates per result.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from qcluster.errors import BadInputError
from qcluster.models.config import (
    Distance,
    HnswConfig,
    QuantizationConfig,
)
from qcluster.shards.base import QuantizationSearchParams
from qcluster.shards.distance import empty_result, exact_top_k, higher_is_better, rescore
from qcluster.shards.index import files
from qcluster.shards.index.payload_graph import PayloadGraph
from qcluster.shards.index.plan import (
    ADD_CHUNK,
    BINARY_MIN_OVERSAMPLING,
    DEFAULT_EF,
    F32,
    I64,
    IGNORE_MIN_OVERSAMPLING,
    PLAIN_KINDS,
    PQ_ITERATIONS,
    PQ_TRAIN_SAMPLE,
    TRAIN_SAMPLE,
    Mask,
    Progress,
    create_faiss_index,
    faiss,
    omp_threads,
    plan_index,
    storage_of,
    swig_ptr,
)

Route = tuple[Any, npt.NDArray[np.int32], F32]  # (payload graph layer, entries [q, e], their distances)


class VectorIndex:
    """Immutable ANN index over the vectors of one sealed segment (rows 0..n-1 = segment offsets).

    Safe for concurrent ``search`` calls from several threads (FAISS releases the GIL).
    """

    def __init__(
        self,
        index: Any,
        kind: str,
        distance: Distance,
        dim: int,
        size: int,
        warning: str | None = None,
        *,
        quantile: float | None = None,
        mmapped: bool = False,
    ) -> None:
        self.index = index
        self.kind = kind
        self.distance: Distance = distance
        self.dim = dim
        self.size = size
        self.warning = warning
        self.quantile = quantile
        self.mmapped = mmapped
        self._graph = hasattr(index, "hnsw")
        self._binary = kind == "binary"
        self._quantized = kind not in PLAIN_KINDS
        self._high = higher_is_better(distance)
        metric = None if self._binary else index.metric_type
        self._ip = metric == faiss.METRIC_INNER_PRODUCT
        # FAISS distance -> Qdrant score: "sqrt" (L2 squared), "cos" (L2 squared of unit vectors)
        self._convert = None
        if metric == faiss.METRIC_L2:
            self._convert = "sqrt" if distance == "Euclid" else "cos"
        self._search_c = index.search_c
        self._params_by_ef: dict[int, Any] = {}
        self._pq_codes: npt.NDArray[np.uint8] | None = None
        self._probe: I64 | None = None
        self.payload_graphs: dict[str, PayloadGraph] = {}  # field key -> graphs (replaced, never mutated)

    # ------------------------------------------------------------------ build
    @classmethod
    def build(
        cls,
        vectors: F32,
        distance: Distance,
        hnsw: HnswConfig,
        quantization: QuantizationConfig | None,
        threads: int = 1,
        progress: Progress | None = None,
    ) -> VectorIndex:
        """Train (quantized kinds) and fill an index; ``progress(done, total)`` after each chunk."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2:
            raise BadInputError(f"vectors: expected a 2-d array, got shape {vectors.shape}", "vectors")
        n, dim = vectors.shape
        plan = plan_index(distance, dim, n, hnsw, quantization)
        index = create_faiss_index(plan, distance, dim, hnsw.ef_construct)
        built = cls(index, plan.kind, distance, dim, 0, plan.warning, quantile=plan.quantile)
        with omp_threads(threads):
            if n:
                built._train(vectors)
            if plan.kind == "hnsw_pq":
                built._graft(vectors, vectors, progress)
            else:
                built._add(vectors, progress)
        return built

    def extended(self, more: F32, threads: int = 1, progress: Progress | None = None) -> VectorIndex:
        """A copy of this index with ``more`` rows appended (offsets continue after ``size``)."""
        more = np.ascontiguousarray(more, dtype=np.float32)
        self._check_dim(more)
        if self._binary:
            clone = faiss.clone_binary_index(self.index)
        elif self.mmapped:  # clone_index would share the read-only mapping; adding to it aborts
            clone = faiss.deserialize_index(faiss.serialize_index(self.index))
        else:
            clone = faiss.clone_index(self.index)
        out = VectorIndex(
            clone, self.kind, self.distance, self.dim, self.size, self.warning, quantile=self.quantile
        )
        with omp_threads(threads):
            if not self._binary and not clone.is_trained and len(more):
                out._train(more)
            if self.kind == "hnsw_pq" and self._ip:
                # PQ's symmetric distances are L2 only: FAISS would link new IP nodes badly.
                # Relink everything on floats (decoded codes for the old rows).
                old = np.asarray(storage_of(clone).reconstruct_n(0, self.size), dtype=np.float32)
                out._graft(np.concatenate([old, more]) if self.size else more, more, progress)
            else:
                out._add(more, progress)
        return out

    def _check_dim(self, vectors: F32) -> None:
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise BadInputError(
                f"Vector dimension error: expected dim: {self.dim}, got {vectors.shape[-1]}", "vector"
            )

    def _train(self, vectors: F32) -> None:
        if self._binary or self.index.is_trained:
            return
        cap = PQ_TRAIN_SAMPLE if self.kind.endswith("_pq") else TRAIN_SAMPLE
        sample = vectors
        if len(sample) > cap:
            rows = np.random.default_rng(0).choice(len(vectors), cap, replace=False)
            sample = np.asarray(vectors[np.sort(rows)])
        q = self.quantile
        if q is not None and q < 1.0 and len(sample) > 1:
            # Qdrant's quantile keeps the central q of the values; FAISS's QT_8bit trains
            # per-dimension min/max, so train on data clipped to those quantiles.
            lo, hi = np.quantile(sample, [(1.0 - q) / 2.0, (1.0 + q) / 2.0], axis=0)
            sample = np.clip(sample, lo, hi).astype(np.float32)
        if self.kind.endswith("_pq"):
            storage_of(self.index).pq.cp.niter = PQ_ITERATIONS
            with omp_threads(1):
                self.index.train(np.ascontiguousarray(sample))
        else:
            self.index.train(np.ascontiguousarray(sample))

    def _add(self, vectors: F32, progress: Progress | None) -> None:
        self._check_dim(vectors)
        total = self.size + len(vectors)
        for start in range(0, len(vectors), ADD_CHUNK):
            chunk = vectors[start : start + ADD_CHUNK]
            self.index.add(self._encode(chunk) if self._binary else chunk)
            self.size += len(chunk)
            if progress is not None:
                progress(self.size, total)

    def _graft(self, graph_rows: F32, new_rows: F32, progress: Progress | None) -> None:
        """Link an HNSW graph over ``graph_rows`` (floats, exact metric) and put it on top of the
        PQ storage extended with the codes of ``new_rows`` (the last rows of ``graph_rows``)."""
        index = self.index
        hnsw = index.hnsw
        graph = faiss.IndexHNSWFlat(self.dim, hnsw.nb_neighbors(1), index.metric_type)
        graph.hnsw.efConstruction = hnsw.efConstruction
        graph.hnsw.efSearch = hnsw.efSearch
        total = len(graph_rows)
        for start in range(0, total, ADD_CHUNK):
            graph.add(graph_rows[start : start + ADD_CHUNK])
            if progress is not None:
                progress(min(start + ADD_CHUNK, total), total)
        storage = storage_of(index)
        storage.add(new_rows)
        index.hnsw = graph.hnsw  # a copy
        index.ntotal = storage.ntotal
        self.size = int(storage.ntotal)

    @staticmethod
    def _encode(vectors: F32) -> npt.NDArray[np.uint8]:
        """Sign bits (x > 0), packed; the last byte is zero-padded when dim % 8 != 0."""
        return np.packbits(vectors > 0, axis=1)

    # ------------------------------------------------------------------ search
    def probe_rows(self, count: int = 4096) -> I64:
        """A fixed pseudo-random sample of up to ``count`` rows (the planner's probe of an
        allowed set: ``rows[allowed[rows]]``)."""
        probe = self._probe
        if probe is None:
            rng = np.random.default_rng(self.size)
            probe = (
                rng.permutation(self.size)[:count].astype(np.int64)
                if self.size > count
                else (rng.permutation(self.size).astype(np.int64))
            )
            self._probe = probe
        return probe

    def search(
        self,
        queries: F32,
        k: int,
        *,
        ef: int | None = None,
        allowed: Mask | None = None,
        quantization: QuantizationSearchParams | None = None,
        originals: F32 | None = None,
        threshold: float | None = None,
        route: Route | None = None,
    ) -> tuple[F32, I64]:
        """Best ``k`` rows per query: (Qdrant scores [q, k], offsets [q, k] int64, -1 = none).

        ``allowed`` (bool per row) restricts the candidates during traversal; ``ef`` is the
        HNSW beam (default 64, never below the number of candidates fetched). ``route`` walks a
        payload graph layer from the given entries instead of the main graph.
        """
        if queries.ndim != 2 or queries.shape[1] != self.dim:
            raise BadInputError(
                f"Vector dimension error: expected dim: {self.dim}, got {queries.shape[-1]}", "vector"
            )
        nq = queries.shape[0]
        if k <= 0 or nq == 0 or self.size == 0:
            if k < 0:
                raise BadInputError(f"limit must be non-negative, got {k}", "limit")
            return empty_result(nq, k)
        if queries.dtype != np.float32 or not queries.flags.c_contiguous:
            queries = np.ascontiguousarray(queries, dtype=np.float32)
        fetch, exact = k, False
        if self._quantized:
            qp = quantization
            over = (qp.oversampling if qp is not None else None) or 1.0
            ignore = qp is not None and qp.ignore and originals is not None
            exact = originals is not None and (
                ignore or self._binary or qp is None or qp.rescore is not False
            )
            if self._binary:
                if originals is None:
                    raise ValueError("binary quantized search needs the original vectors to rescore")
                over = max(over, BINARY_MIN_OVERSAMPLING)
            if ignore:
                if not self._graph:
                    assert originals is not None
                    return exact_top_k(queries, originals[: self.size], k, self.distance, allowed, threshold)
                over = max(over, IGNORE_MIN_OVERSAMPLING)
            if exact:  # oversampling past the index size fetches nothing more
                fetch = max(k, math.ceil(k * min(over, self.size)))
        fetch = min(fetch, self.size)
        if allowed is not None and len(allowed) < self.size:
            allowed = np.concatenate([allowed, np.zeros(self.size - len(allowed), dtype=np.bool_)])
        dist, labels = self._raw_search(queries, fetch, max(ef or DEFAULT_EF, fetch), allowed, route)
        if exact:
            assert originals is not None
            return rescore(queries, labels, originals, k, self.distance, threshold)
        return self._to_scores(dist, labels, k, threshold)

    def _params(self, ef: int, allowed: Mask | None, graph: bool) -> Any:
        if allowed is None:
            params = self._params_by_ef.get(ef)
            if params is None and graph:
                params = faiss.SearchParametersHNSW()
                params.efSearch = ef
                self._params_by_ef[ef] = params
            return params
        bitmap = np.packbits(allowed[: self.size], bitorder="little")
        params = faiss.SearchParametersHNSW() if graph else faiss.SearchParameters()
        if graph:
            params.efSearch = ef
        params.sel = faiss.IDSelectorBitmap(bitmap)  # keeps bitmap alive; params keeps the selector
        return params

    def _raw_search(
        self, queries: F32, fetch: int, ef: int, allowed: Mask | None, route: Route | None = None
    ) -> tuple[Any, I64]:
        """FAISS's own (distances, labels) for ``fetch`` candidates per query."""
        nq = queries.shape[0]
        if route is not None:
            layer, entries, entry_d = route
            params = self._params(ef, allowed, True)
            labels = np.empty((nq, fetch), dtype=np.int64)
            dist = np.empty((nq, fetch), dtype=np.float32)
            layer.search_level_0(
                nq,
                swig_ptr(queries),
                fetch,
                swig_ptr(entries),
                swig_ptr(entry_d),
                swig_ptr(dist),
                swig_ptr(labels),
                entries.shape[1],
                1,
                params,
            )
            return dist, labels
        if self.kind == "flat_pq" and allowed is not None:
            return self._pq_scan(queries, fetch, allowed)  # IndexPQ.search takes no selector
        params = self._params(ef, allowed, self._graph)
        labels = np.empty((nq, fetch), dtype=np.int64)
        if self._binary:
            codes = self._encode(queries)
            hamming = np.empty((nq, fetch), dtype=np.int32)
            self._search_c(nq, swig_ptr(codes), fetch, swig_ptr(hamming), swig_ptr(labels), params)
            return hamming, labels
        dist = np.empty((nq, fetch), dtype=np.float32)
        self._search_c(nq, swig_ptr(queries), fetch, swig_ptr(dist), swig_ptr(labels), params)
        return dist, labels

    def graph_storage(self) -> Any:
        """The codes payload graphs walk over (None for binary indexes: no payload graphs)."""
        if self._binary:
            return None
        return self.index.storage if self._graph else self.index

    def metric(self) -> int:
        return int(self.index.metric_type)

    def faiss_distance(self, scores: F32) -> F32:
        """Qdrant scores of exact floats -> the index metric's values (payload graph entries)."""
        if self._convert == "sqrt":
            return np.asarray(scores * scores, dtype=np.float32)
        if self._convert == "cos":
            return np.asarray(2.0 - 2.0 * scores, dtype=np.float32)
        return np.asarray(scores, dtype=np.float32)

    def prepare_graph(self, graph: PayloadGraph) -> None:
        """Set a payload graph up over this index's codes (before publishing it)."""
        storage = self.graph_storage()
        if storage is not None:
            graph.attach(storage, self.metric() == faiss.METRIC_INNER_PRODUCT)

    def with_payload_graph(self, graph: PayloadGraph) -> None:
        """Publish (or replace) the payload graphs of one field; readers see old or new."""
        if self.graph_storage() is None:
            return
        self.prepare_graph(graph)
        self.payload_graphs = {**self.payload_graphs, graph.key: graph}

    def without_payload_graph(self, key: str) -> None:
        if key in self.payload_graphs:
            self.payload_graphs = {k: g for k, g in self.payload_graphs.items() if k != key}

    def _to_scores(self, dist: F32, labels: I64, k: int, threshold: float | None) -> tuple[F32, I64]:
        """FAISS distances -> Qdrant scores (sqrt for L2); empty slots nan; threshold; pad to ``k``."""
        if self._convert == "sqrt":
            np.sqrt(np.maximum(dist, 0.0, out=dist), out=dist)
        elif self._convert == "cos":  # |a - b|^2 = 2 - 2 a.b for unit vectors
            dist *= -0.5
            dist += 1.0
        last = labels[:, -1]
        if (last[0] if len(last) == 1 else last.min()) < 0:
            dist[labels < 0] = np.nan
        if threshold is not None:
            bad = dist < threshold if self._high else dist > threshold
            labels[bad] = -1
            dist[bad] = np.nan
        if labels.shape[1] < k:
            pad = k - labels.shape[1]
            labels = np.pad(labels, ((0, 0), (0, pad)), constant_values=-1)
            dist = np.pad(dist, ((0, 0), (0, pad)), constant_values=np.nan)
        return dist, labels

    def _pq_scan(self, queries: F32, fetch: int, allowed: Mask) -> tuple[F32, I64]:
        """Exhaustive PQ search over the allowed rows with per-query lookup tables (flat_pq)."""
        pq = self.index.pq
        if self._pq_codes is None:
            flat = faiss.rev_swig_ptr(self.index.codes.data(), self.size * pq.code_size)
            self._pq_codes = np.asarray(flat).reshape(self.size, pq.code_size)
        nq, msub = len(queries), pq.M
        tables = np.empty((nq, msub, pq.ksub), dtype=np.float32)
        if self._ip:
            pq.compute_inner_prod_tables(nq, swig_ptr(queries), swig_ptr(tables))
        else:
            pq.compute_distance_tables(nq, swig_ptr(queries), swig_ptr(tables))
        rows = np.flatnonzero(allowed[: self.size])
        codes = self._pq_codes[rows]
        worst = -np.inf if self._ip else np.inf
        dist = np.full((nq, fetch), worst, dtype=np.float32)
        labels = np.full((nq, fetch), -1, dtype=np.int64)
        take = min(fetch, len(rows))
        if take == 0:
            return dist, labels
        sub = np.arange(msub)
        for i in range(nq):
            approx = tables[i][sub, codes].sum(axis=1)
            keys = -approx if self._ip else approx
            top = np.argpartition(keys, take - 1)[:take] if take < len(rows) else np.arange(len(rows))
            top = top[np.argsort(keys[top], kind="stable")]
            dist[i, :take] = approx[top]
            labels[i, :take] = rows[top]
        return dist, labels

    # ------------------------------------------------------------------ persistence (files.py)
    def save(self, path: Path) -> None:
        """Write the index (and its payload graphs) next to ``path``; see ``files.py``."""
        files.save_index(self, path)

    def save_graphs(self, path: Path) -> bool:
        """Write the payload graphs not on disk yet next to the index file ``path``."""
        return files.save_graphs(self, path)

    @classmethod
    def load(cls, path: Path, on_disk: bool = False) -> VectorIndex:
        """Read an index written by ``save``; ``on_disk`` memory-maps the codes (float/SQ/PQ)."""
        return files.load_index(cls, path, on_disk)

    def memory_bytes(self) -> int:
        """RAM the index holds: codes (unless memory-mapped), trained tables and graph links."""
        store = storage_of(self.index)
        total = 0
        if not self.mmapped:
            codes = store.xb if self._binary else store.codes
            total += int(codes.size())
        if self.kind.endswith("_pq"):
            total += int(store.pq.centroids.size()) * 4
        elif self.kind.endswith("_sq8"):
            total += int(store.sq.trained.size()) * 4
        if self._graph:
            graph = self.index.hnsw
            total += int(graph.neighbors.size()) * 4 + int(graph.offsets.size()) * 8
            total += int(graph.levels.size()) * 4
        return total
