"""Qdrant's filter language: parsing, the reference semantics, vectorised evaluation."""

from qcluster.shards.filters.conditions import Filter
from qcluster.shards.filters.evaluate import SegmentView, evaluate
from qcluster.shards.filters.parse import parse_filter
from qcluster.shards.filters.reference import matches

__all__ = ["Filter", "SegmentView", "evaluate", "matches", "parse_filter"]
