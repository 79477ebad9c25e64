"""The ``vector`` field of records in REST responses: a plain list for the unnamed vector, else a
map (request vectors become batches in :mod:`qcluster.api.actions.batches`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from qcluster.models.collections import CollectionConfig
from qcluster.types import DEFAULT_VECTOR

F32 = npt.NDArray[np.float32]


def vector_output(vectors: Mapping[str, F32] | None, config: CollectionConfig) -> Any:
    """The ``vector`` field of a record: a list for the unnamed vector, else ``{name: list}``."""
    if vectors is None:
        return None
    if config.single_unnamed:
        v = vectors.get(DEFAULT_VECTOR)
        return None if v is None else v.tolist()
    return {name: v.tolist() for name, v in vectors.items()}
