"""Which FAISS index to build for a vector configuration, and building its empty shell.

Every (metric, quantization, graph degree) combination is checked here in plain Python before
FAISS sees it: some abort the whole process (scalar quantization with L1, HNSW with M=1) and one
silently returns garbage (PQ with L1). Together with ``vector_index.py`` this package is the only
place that imports faiss.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import faiss as _faiss
import numpy as np
import numpy.typing as npt

from qcluster.errors import BadInputError
from qcluster.models.config import (
    BinaryQuantization,
    Distance,
    HnswConfig,
    ProductQuantization,
    QuantizationConfig,
    ScalarQuantization,
    TurboQuantization,
)
from qcluster.shards.distance import check_distance

faiss: Any = _faiss  # faiss ships no usable type information
swig_ptr = faiss.swig_ptr
F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]
Progress = Callable[[int, int], None]

PQ_MIN_POINTS = 1024  # 4 points per centroid of an 8-bit sub-quantizer
BINARY_MIN_OVERSAMPLING = 4.0
IGNORE_MIN_OVERSAMPLING = 2.0
DEFAULT_EF = 64
ADD_CHUNK = 4096
TRAIN_SAMPLE = 65536
# FAISS's k-means over tiny sub-vectors is slow (~10 ms per iteration per sub-quantizer for 10k
# points) and gains nothing from threads: 20 points per centroid, 20 iterations, one thread.
PQ_TRAIN_SAMPLE = 256 * 20
PQ_ITERATIONS = 20
FILE_FORMAT = 1
_METRIC = {
    "Cosine": faiss.METRIC_INNER_PRODUCT,
    "Dot": faiss.METRIC_INNER_PRODUCT,
    "Euclid": faiss.METRIC_L2,
    "Manhattan": faiss.METRIC_L1,
}
_PQ_RATIO = {"x4": 4, "x8": 8, "x16": 16, "x32": 32, "x64": 64}
PLAIN_KINDS = ("hnsw", "flat")


def set_thread_count(n: int) -> None:
    """FAISS (OpenMP) threads for calls made from the current thread; ``n <= 0`` = all cores."""
    faiss.omp_set_num_threads(n if n > 0 else (os.cpu_count() or 1))


def pq_subquantizers(dim: int, ratio: int) -> int:
    """Code bytes = ``dim * 4 / ratio`` (8-bit codes), rounded down to a divisor of ``dim``."""
    want = max(1, (dim * 4) // ratio)
    return next(m for m in range(min(want, dim), 0, -1) if dim % m == 0)


@dataclass(frozen=True, slots=True)
class IndexPlan:
    """What ``build`` will ask FAISS for; decided without touching FAISS."""

    kind: str
    m: int  # HNSW links per node; 0 = no graph
    pq_m: int = 0
    quantile: float | None = None
    warning: str | None = None


def plan_index(
    distance: Distance, dim: int, n: int, hnsw: HnswConfig, quantization: QuantizationConfig | None
) -> IndexPlan:
    check_distance(distance)
    if dim < 1:
        raise BadInputError(f"vector size must be at least 1, got {dim}", "size")
    notes: list[str] = []
    m = hnsw.m
    if m == 1:
        m = 2
        notes.append("hnsw m=1 is raised to 2, the smallest graph FAISS supports")
    flat = m == 0
    if distance == "Manhattan" and quantization is not None:
        notes.append(
            "quantization is ignored for Manhattan distance (FAISS quantizers do not support L1); "
            "the index keeps float32 vectors"
        )
        quantization = None
    if isinstance(quantization, TurboQuantization):
        quantization = ScalarQuantization.model_validate({"scalar": {"type": "int8"}})
    if isinstance(quantization, ProductQuantization) and n < PQ_MIN_POINTS:
        notes.append(
            f"too few points ({n}) to train product quantization (needs {PQ_MIN_POINTS}); "
            "scalar int8 quantization is used instead"
        )
        quantization = ScalarQuantization.model_validate({"scalar": {"type": "int8"}})
    warning = " ".join(notes) or None
    if isinstance(quantization, BinaryQuantization):
        return IndexPlan("binary", m, warning=warning)
    if isinstance(quantization, ScalarQuantization):
        quantile = quantization.scalar.quantile
        return IndexPlan("flat_sq8" if flat else "hnsw_sq8", m, quantile=quantile, warning=warning)
    if isinstance(quantization, ProductQuantization):
        pq_m = pq_subquantizers(dim, _PQ_RATIO[quantization.product.compression])
        return IndexPlan("flat_pq" if flat else "hnsw_pq", m, pq_m=pq_m, warning=warning)
    return IndexPlan("flat" if flat else "hnsw", m, warning=warning)


def _metric(kind: str, distance: Distance) -> int:
    if distance == "Cosine" and kind.endswith(("_pq", "_sq8")):
        return int(faiss.METRIC_L2)  # unit vectors: L2 ranks like the dot product, quantizes better
    return int(_METRIC[distance])


def create_faiss_index(plan: IndexPlan, distance: Distance, dim: int, ef_construct: int) -> Any:
    metric = _metric(plan.kind, distance)
    sq8 = faiss.ScalarQuantizer.QT_8bit
    kind, m = plan.kind, plan.m
    if kind == "binary":
        bits = 8 * math.ceil(dim / 8)
        index = faiss.IndexBinaryHNSW(bits, m) if m else faiss.IndexBinaryFlat(bits)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, m, metric)
    elif kind == "hnsw_sq8":
        index = faiss.IndexHNSWSQ(dim, sq8, m, metric)
    elif kind == "hnsw_pq":
        index = faiss.IndexHNSWPQ(dim, plan.pq_m, m, 8, metric)
    elif kind == "flat":
        index = faiss.IndexFlat(dim, metric)
    elif kind == "flat_sq8":
        index = faiss.IndexScalarQuantizer(dim, sq8, metric)
    else:
        index = faiss.IndexPQ(dim, plan.pq_m, 8, metric)
    if m and hasattr(index, "hnsw"):
        index.hnsw.efConstruction = ef_construct
    if plan.pq_m:  # 4 points per centroid is enough; also silences FAISS's stderr note
        storage_of(index).pq.cp.min_points_per_centroid = 4
    return index


def storage_of(index: Any) -> Any:
    """The flat-codes index holding the codes (the index itself when there is no graph)."""
    if isinstance(index, faiss.IndexBinary):
        return faiss.downcast_IndexBinary(index.storage) if hasattr(index, "hnsw") else index
    return faiss.downcast_index(index.storage) if hasattr(index, "hnsw") else index


@contextmanager
def omp_threads(n: int) -> Iterator[None]:
    """FAISS threads for the calls inside, restored afterwards (the setting is per OS thread)."""
    previous = faiss.omp_get_max_threads()
    set_thread_count(n)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(previous)
