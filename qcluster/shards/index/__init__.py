"""The FAISS index of one sealed segment's named vector (the only package that imports faiss):
``plan.py`` decides and validates what to build, ``vector_index.py`` builds, searches and persists it."""

from qcluster.shards.index.plan import (
    PQ_MIN_POINTS,
    IndexPlan,
    plan_index,
    pq_subquantizers,
    set_thread_count,
)
from qcluster.shards.index.vector_index import VectorIndex

__all__ = ["PQ_MIN_POINTS", "IndexPlan", "VectorIndex", "plan_index", "pq_subquantizers", "set_thread_count"]
