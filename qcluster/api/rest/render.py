"""Response bodies of points in Qdrant's shapes: Record, ScoredPoint, PointGroup, UpdateResult."""

from __future__ import annotations

from typing import Any

import numpy as np

from qcluster.api.rest.vectors import vector_output
from qcluster.collection import Collection
from qcluster.collection.query import Group, Hit
from qcluster.shards.base import Record, UpdateResult


def record_json(rec: Record, col: Collection) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": rec.id,
        "payload": rec.payload,
        "vector": vector_output(rec.vector, col.config),
    }
    if rec.order_value is not None:
        out["order_value"] = rec.order_value
    return out


def hit_json(hit: Hit, col: Collection) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": hit.id,
        "version": hit.version,
        # float32, written in its shortest form (Qdrant scores are f32: 4.358899, not 4.358899116516113)
        "score": np.float32(hit.score),
        "payload": hit.payload,
        "vector": vector_output(hit.vector, col.config),
    }
    if hit.order_value is not None:
        out["order_value"] = hit.order_value
    return out


def hits_json(hits: list[Hit], col: Collection) -> list[dict[str, Any]]:
    return [hit_json(h, col) for h in hits]


def group_json(group: Group, col: Collection, lookup_col: Collection | None) -> dict[str, Any]:
    out: dict[str, Any] = {"id": group.id, "hits": hits_json(group.hits, col)}
    if group.lookup is not None and lookup_col is not None:
        out["lookup"] = record_json(group.lookup, lookup_col)
    return out


def update_json(result: UpdateResult) -> dict[str, Any]:
    return {"operation_id": result.operation_id, "status": result.status}
