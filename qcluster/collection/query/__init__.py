"""The query engine of a collection: universal query, example-based queries, fusion, groups."""

from qcluster.collection.query.context import Hit, Lookup
from qcluster.collection.query.groups import Group, run_groups
from qcluster.collection.query.run import run_query

__all__ = ["Group", "Hit", "Lookup", "run_groups", "run_query"]
