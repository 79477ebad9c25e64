"""Sparse vectors and multivectors through the p2p codec (search queries and point vectors)."""

from __future__ import annotations

import numpy as np
import pytest

from qcluster.errors import BadInputError
from qcluster.shards import remote_codec as codec
from qcluster.shards.base import SearchParams, SearchRequest
from qcluster.shards.sparse.vector import SparseVector


def test_sparse_and_multi_queries_round_trip() -> None:
    sparse = SparseVector(np.array([2, 9], np.uint32), np.array([0.5, 1.5], np.float32))
    corpus = {"must": [{"key": "t", "match": {"value": "a"}}]}
    back = codec.search_in(
        codec.search_out(SearchRequest(vector=sparse, using="s", params=SearchParams(idf_corpus=corpus)))
    )
    assert isinstance(back.vector, SparseVector) and back.vector.same_as(sparse)
    assert back.params.idf_corpus == corpus
    multi = np.arange(6, dtype=np.float32).reshape(3, 2)
    back = codec.search_in(codec.search_out(SearchRequest(vector=multi, using="m")))
    assert not isinstance(back.vector, SparseVector) and np.array_equal(back.vector, multi)
    dense = np.ones(4, np.float32)
    back = codec.search_in(codec.search_out(SearchRequest(vector=dense)))
    assert not isinstance(back.vector, SparseVector) and back.vector.shape == (4,)
    assert back.params.idf_corpus is None


def test_point_vectors_of_every_kind_round_trip() -> None:
    sparse = SparseVector(np.array([1, 5, 7], np.uint32), np.array([1.0, 2.0, 3.0], np.float32))
    rows = [
        {"d": np.ones(3, np.float32), "s": sparse, "m": np.ones((2, 4), np.float32)},
        None,
        {"m": np.zeros((1, 4), np.float32)},
    ]
    back = codec.vectors_in(codec.vectors_out(rows), 3)
    assert back[1] is None and back[0] is not None and back[2] is not None
    got = back[0]["s"]
    assert isinstance(got, SparseVector) and got.same_as(sparse)
    assert np.array_equal(np.asarray(back[0]["m"]), np.ones((2, 4))) and "s" not in back[2]
    assert np.asarray(back[2]["m"]).shape == (1, 4)


def test_malformed_ragged_blocks_are_refused() -> None:
    rows = [{"m": np.ones((2, 4), np.float32)}]
    (block,) = codec.vectors_out(rows)
    block.indptr = np.array([0, 5], np.int64).tobytes()  # points past the data
    with pytest.raises(BadInputError):
        codec.vectors_in([block], 1)
