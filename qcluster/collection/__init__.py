"""A collection on this peer: its config and its shards."""

from qcluster.collection.collection import Collection

__all__ = ["Collection"]
