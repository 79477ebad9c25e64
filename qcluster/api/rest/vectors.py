"""The ``vector`` field of records in REST responses: a plain vector when the point holds only the
unnamed vector, else a map (request vectors become batches in :mod:`qcluster.api.actions.batches`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from qcluster.models.collections import CollectionConfig
from qcluster.shards.base import AnyVector
from qcluster.shards.sparse.vector import SparseVector
from qcluster.types import DEFAULT_VECTOR

F32 = npt.NDArray[np.float32]


def _output(v: AnyVector) -> Any:
    # numpy arrays go to orjson as they are: it writes float32 in their shortest form (0.05, not
    # 0.05000000074505806), as Qdrant does
    if isinstance(v, SparseVector):
        return {"indices": np.ascontiguousarray(v.indices), "values": np.ascontiguousarray(v.values)}
    return np.ascontiguousarray(v, dtype=np.float32)


def vector_output(vectors: Mapping[str, AnyVector] | None, config: CollectionConfig) -> Any:
    """The ``vector`` field of a record: a plain vector when the point holds only the unnamed
    vector, else ``{name: vector}`` (as Qdrant shapes it)."""
    if vectors is None:
        return None
    if list(vectors) == [DEFAULT_VECTOR]:
        return _output(vectors[DEFAULT_VECTOR])
    if not vectors and config.single_unnamed and not config.params.sparse_vectors:
        return None  # the point's only vector was deleted
    return {name: _output(v) for name, v in vectors.items()}
