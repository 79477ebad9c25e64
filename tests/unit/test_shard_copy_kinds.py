"""Copying points (rebuilds, stream_records transfers) keeps sparse vectors and multivectors."""

from __future__ import annotations

import numpy as np

from qcluster.shards.base import Record
from qcluster.shards.operations import MultiColumn, NamedVectors
from qcluster.shards.shard_copy import records_batch
from qcluster.shards.sparse.vector import SparseColumn, SparseVector


def test_records_batch_builds_a_column_of_each_kind() -> None:
    sparse = SparseVector(np.array([3, 9], np.uint32), np.array([1.0, 2.0], np.float32))
    records = [
        Record(1, {"a": 1}, {"d": np.ones(2, np.float32), "s": sparse, "m": np.ones((3, 2), np.float32)}),
        Record(2, None, {"m": np.zeros((1, 2), np.float32)}),
    ]
    batch = records_batch(records, {"d": 2, "m": 2, "s": 0})
    d, s, m = batch.vectors["d"], batch.vectors["s"], batch.vectors["m"]
    assert isinstance(d, NamedVectors) and d.has(0) and not d.has(1)
    assert isinstance(s, SparseColumn) and s.row(0).same_as(sparse) and s.row(1) is None  # type: ignore[union-attr]
    assert isinstance(m, MultiColumn) and m.row(0).shape == (3, 2) and m.row(1).shape == (1, 2)  # type: ignore[union-attr]
    # a point with none of the vectors keeps an all-absent single-vector column
    empty = records_batch([Record(3, None, {})], {"s": 0, "d": 2})
    assert list(empty.vectors) == ["d"] and not empty.vectors["d"].has(0)  # type: ignore[union-attr]
