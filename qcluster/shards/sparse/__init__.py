"""Sparse vectors: the value type and batch column (``vector``), a segment's per-name storage
(``store``), the inverted index built over it (``inverted``) and search with IDF (``search``)."""

from qcluster.shards.sparse.vector import SparseColumn, SparseVector, dot, sorted_unique, sparse_vector

__all__ = ["SparseColumn", "SparseVector", "dot", "sorted_unique", "sparse_vector"]
