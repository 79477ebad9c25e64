"""The FAISS index of one sealed segment's named vector. The only module that imports faiss.

Kinds: ``hnsw`` (HNSW over float32), ``hnsw_sq8`` (HNSW over scalar int8 codes), ``hnsw_pq``
(HNSW over product-quantized codes), ``binary`` (HNSW over sign bits), ``flat`` (no graph:
``m == 0``). Quantized kinds search for ``limit * oversampling`` candidates and rescore them on
the original float32 vectors (memory-mapped) unless ``rescore`` is false.

Combinations are validated before FAISS sees them: FAISS aborts the process for scalar
quantization with L1 and silently returns garbage for PQ with L1, so Manhattan always gets a
plain float index (``warning`` says so).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import faiss as _faiss
import numpy as np
import numpy.typing as npt
import orjson

from qcluster.models.config import (
    BinaryQuantization,
    Distance,
    HnswConfig,
    ProductQuantization,
    QuantizationConfig,
    ScalarQuantization,
)
from qcluster.shards.base import QuantizationSearchParams
from qcluster.shards.distance import exact_top_k, higher_is_better, score_matrix

# faiss's bundled stubs are incomplete (no SearchParametersHNSW, clone_binary_index, ...)
faiss: Any = _faiss
F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]

_METRIC = {
    "Cosine": faiss.METRIC_INNER_PRODUCT,
    "Dot": faiss.METRIC_INNER_PRODUCT,
    "Euclid": faiss.METRIC_L2,
    "Manhattan": faiss.METRIC_L1,
}
_CHUNK = 4096
_PQ_RATIO = {"x4": 4, "x8": 8, "x16": 16, "x32": 32, "x64": 64}


def set_thread_count(n: int) -> None:
    faiss.omp_set_num_threads(max(1, n))


def _pq_subquantizers(dim: int, ratio: int) -> int:
    """Code bytes = dim * 4 / ratio (8-bit codes), rounded down to a divisor of dim."""
    want = max(1, (dim * 4) // ratio)
    for m in range(min(want, dim), 0, -1):
        if dim % m == 0:
            return m
    return 1


class VectorIndex:
    def __init__(
        self, index: Any, kind: str, distance: Distance, dim: int, size: int, warning: str | None = None
    ):
        self.index = index
        self.kind = kind
        self.distance = distance
        self.dim = dim
        self.size = size
        self.warning = warning
        self._default_params: dict[int, Any] = {}

    # ------------------------------------------------------------------ build
    @classmethod
    def build(
        cls,
        vectors: F32,
        distance: Distance,
        hnsw: HnswConfig,
        quantization: QuantizationConfig | None,
        threads: int = 1,
        progress: Callable[[int, int], None] | None = None,
    ) -> VectorIndex:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        n, dim = vectors.shape
        metric = _METRIC[distance]
        warning = None
        if distance == "Manhattan" and quantization is not None:
            warning = "quantization is not available for Manhattan distance; the index keeps float32 vectors"
            quantization = None
        m = hnsw.m
        kind = "hnsw" if m > 0 else "flat"
        index: Any
        if isinstance(quantization, BinaryQuantization):
            bits = dim if dim % 8 == 0 else dim + (8 - dim % 8)
            index = faiss.IndexBinaryHNSW(bits, max(m, 4)) if m > 0 else faiss.IndexBinaryFlat(bits)
            if m > 0:
                index.hnsw.efConstruction = hnsw.ef_construct
            kind = "binary"
        elif isinstance(quantization, ScalarQuantization):
            if m > 0:
                index = faiss.IndexHNSWSQ(dim, faiss.ScalarQuantizer.QT_8bit, m, metric)
                index.hnsw.efConstruction = hnsw.ef_construct
                kind = "hnsw_sq8"
            else:
                index = faiss.IndexScalarQuantizer(dim, faiss.ScalarQuantizer.QT_8bit, metric)
                kind = "flat_sq8"
            train = vectors
            q = quantization.scalar.quantile
            if q is not None and q < 1.0 and n > 0:
                lo = np.quantile(vectors, 1 - q, axis=0)
                hi = np.quantile(vectors, q, axis=0)
                train = np.clip(vectors, lo, hi).astype(np.float32)
            if n > 0:
                index.train(train)
        elif isinstance(quantization, ProductQuantization) and n >= 256 * 4:
            pq_m = _pq_subquantizers(dim, _PQ_RATIO[quantization.product.compression])
            if m > 0:
                index = faiss.IndexHNSWPQ(dim, pq_m, m, 8, metric)
                index.hnsw.efConstruction = hnsw.ef_construct
                kind = "hnsw_pq"
            else:
                index = faiss.IndexPQ(dim, pq_m, 8, metric)
                kind = "flat_pq"
            sample = (
                vectors if n <= 65536 else vectors[np.random.default_rng(0).choice(n, 65536, replace=False)]
            )
            index.train(sample)
        else:
            if isinstance(quantization, ProductQuantization):
                warning = f"too few points ({n}) to train product quantization; vectors kept as float32"
            if m > 0:
                index = faiss.IndexHNSWFlat(dim, m, metric)
                index.hnsw.efConstruction = hnsw.ef_construct
            else:
                index = faiss.IndexFlat(dim, metric)
        built = cls(index, kind, distance, dim, 0, warning)
        built._add(vectors, threads, progress)
        return built

    def _encode(self, vectors: F32) -> Any:
        if self.kind != "binary":
            return vectors
        bits = self.index.d
        padded = np.zeros((len(vectors), bits), dtype=np.uint8)
        padded[:, : vectors.shape[1]] = vectors > 0
        return np.packbits(padded, axis=1)

    def _add(self, vectors: F32, threads: int, progress: Callable[[int, int], None] | None) -> None:
        set_thread_count(threads)
        total = self.size + len(vectors)
        for start in range(0, len(vectors), _CHUNK):
            self.index.add(self._encode(vectors[start : start + _CHUNK]))
            self.size += len(vectors[start : start + _CHUNK])
            if progress is not None:
                progress(self.size, total)

    def extended(
        self, more: F32, threads: int = 1, progress: Callable[[int, int], None] | None = None
    ) -> VectorIndex:
        """A copy of this index with ``more`` rows appended (offsets continue after ``size``)."""
        clone = (
            faiss.clone_binary_index(self.index) if self.kind == "binary" else faiss.clone_index(self.index)
        )
        out = VectorIndex(clone, self.kind, self.distance, self.dim, self.size, self.warning)
        out._add(np.ascontiguousarray(more, dtype=np.float32), threads, progress)
        return out

    # ------------------------------------------------------------------ search
    def _params(self, ef: int, allowed: Mask | None) -> tuple[Any, Any]:
        sel = None
        if allowed is not None:
            bitmap = np.packbits(np.asarray(allowed[: self.size], dtype=np.uint8), bitorder="little")
            sel = faiss.IDSelectorBitmap(self.size, faiss.swig_ptr(bitmap))
            keep = (bitmap, sel)
        else:
            keep = None
            cached = self._default_params.get(ef)
            if cached is not None:
                return cached, None
        if self.kind.startswith("flat"):
            params = faiss.SearchParameters()
        else:
            params = faiss.SearchParametersHNSW()
            params.efSearch = ef
        if sel is not None:
            params.sel = sel
        else:
            self._default_params[ef] = params
        return params, keep

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
    ) -> tuple[F32, I64]:
        nq = len(queries)
        if self.size == 0 or k == 0:
            return np.full((nq, k), np.nan, np.float32), np.full((nq, k), -1, np.int64)
        quantized = self.kind not in ("hnsw", "flat")
        qp = quantization or QuantizationSearchParams()
        if quantized and qp.ignore and originals is not None:
            # ignore quantization: exact search on the originals (what the graph would approximate)
            return exact_top_k(
                queries, np.asarray(originals[: self.size]), k, self.distance, allowed, threshold
            )
        rescore = quantized and originals is not None and (qp.rescore is None or qp.rescore)
        oversampling = qp.oversampling if (quantized and qp.oversampling) else 1.0
        if self.kind == "binary":
            oversampling = max(oversampling, 4.0)
        fetch = min(self.size, max(k, math.ceil(k * oversampling)))
        ef_eff = max(ef or 64, fetch)
        params, keep = self._params(ef_eff, allowed)
        if self.kind == "binary":
            dist, labels = self.index.search(self._encode(queries), fetch, params=params)
        else:
            dist, labels = self.index.search(queries, fetch, params=params)
        del keep
        labels = labels.astype(np.int64, copy=False)
        if rescore or self.kind == "binary":
            assert originals is not None
            return self._rescore(queries, labels, originals, k, threshold)
        scores = self._to_scores(dist)
        return self._finish(scores, labels, k, threshold)

    def _to_scores(self, dist: Any) -> F32:
        if self.distance == "Euclid":
            root: F32 = np.sqrt(np.maximum(dist, 0)).astype(np.float32)
            return root
        out: F32 = np.asarray(dist, dtype=np.float32)
        return out

    def _finish(self, scores: F32, labels: I64, k: int, threshold: float | None) -> tuple[F32, I64]:
        labels = labels[:, :k].copy()
        scores = scores[:, :k].copy()
        if threshold is not None:
            bad = (scores < threshold) if higher_is_better(self.distance) else (scores > threshold)
            labels[bad] = -1
        scores[labels < 0] = np.nan
        if labels.shape[1] < k:
            pad = k - labels.shape[1]
            labels = np.pad(labels, ((0, 0), (0, pad)), constant_values=-1)
            scores = np.pad(scores, ((0, 0), (0, pad)), constant_values=np.nan)
        return scores, labels

    def _rescore(
        self, queries: F32, labels: I64, originals: F32, k: int, threshold: float | None
    ) -> tuple[F32, I64]:
        nq = len(queries)
        out_s = np.full((nq, k), np.nan, np.float32)
        out_o = np.full((nq, k), -1, np.int64)
        high = higher_is_better(self.distance)
        for i in range(nq):
            cand = labels[i][labels[i] >= 0]
            if len(cand) == 0:
                continue
            s = score_matrix(queries[i : i + 1], np.asarray(originals[cand]), self.distance)[0]
            order = np.argsort(-s if high else s, kind="stable")[:k]
            sc, lab = s[order], cand[order]
            if threshold is not None:
                ok = sc >= threshold if high else sc <= threshold
                sc, lab = sc[ok], lab[ok]
            out_s[i, : len(lab)] = sc
            out_o[i, : len(lab)] = lab
        return out_s, out_o

    # ------------------------------------------------------------------ persistence
    def save(self, path: Path) -> None:
        tmp = path.with_name(path.name + ".tmp")
        if self.kind == "binary":
            faiss.write_index_binary(self.index, str(tmp))
        else:
            faiss.write_index(self.index, str(tmp))
        tmp.replace(path)
        meta = {
            "kind": self.kind,
            "distance": self.distance,
            "dim": self.dim,
            "size": self.size,
            "warning": self.warning,
        }
        path.with_suffix(".json").write_bytes(orjson.dumps(meta))

    @classmethod
    def load(cls, path: Path, on_disk: bool = False) -> VectorIndex:
        meta = orjson.loads(path.with_suffix(".json").read_bytes())
        if meta["kind"] == "binary":
            index = faiss.read_index_binary(str(path))
        else:
            flags = faiss.IO_FLAG_MMAP if on_disk else 0
            try:
                index = faiss.read_index(str(path), flags)
            except RuntimeError:
                index = faiss.read_index(str(path))
        return cls(
            index, meta["kind"], meta["distance"], int(meta["dim"]), int(meta["size"]), meta.get("warning")
        )

    def memory_bytes(self) -> int:
        """RAM held by the index: codes (or float vectors) plus graph links."""
        n = self.size
        if self.kind == "binary":
            codes = n * self.index.code_size
        elif self.kind in ("hnsw", "flat"):
            codes = n * self.dim * 4
        elif self.kind in ("hnsw_sq8", "flat_sq8"):
            codes = n * self.dim
        else:
            store = self.index.storage if hasattr(self.index, "storage") else self.index
            codes = n * int(store.sa_code_size())
        links = 0
        hnsw = getattr(self.index, "hnsw", None)
        if hnsw is not None:
            links = int(hnsw.neighbors.size()) * 4 + int(hnsw.offsets.size()) * 8 + n * 4
        return int(codes + links)
