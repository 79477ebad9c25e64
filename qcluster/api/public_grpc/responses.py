"""Results -> Qdrant's gRPC response messages: points (``ScoredPoint``, ``RetrievedPoint``),
groups, update results, facet hits. Vectors go out as packed floats (``vectors.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from qcluster.api.public_grpc.values import py_to_payload, to_point_id
from qcluster.api.public_grpc.vectors import vectors_output
from qcluster.api.public_grpc.wire import pb
from qcluster.collection import Collection
from qcluster.collection.query import Group, Hit
from qcluster.shards.base import Record, UpdateResult

_STATUS = {"acknowledged": pb.Acknowledged, "completed": pb.Completed}


def order_value(v: int | float | None) -> pb.OrderValue | None:
    if v is None:
        return None
    return pb.OrderValue(int=v) if isinstance(v, int) else pb.OrderValue(float=v)


def scored_point(hit: Hit, single_unnamed: bool) -> pb.ScoredPoint:
    return pb.ScoredPoint(
        id=to_point_id(hit.id),
        payload=py_to_payload(hit.payload),
        score=hit.score,
        version=hit.version,
        vectors=vectors_output(hit.vector, single_unnamed),
        order_value=order_value(hit.order_value),
    )


def scored_points(hits: Sequence[Hit], col: Collection) -> list[pb.ScoredPoint]:
    single = col.config.single_unnamed
    return [scored_point(h, single) for h in hits]


def retrieved_point(rec: Record, col: Collection) -> pb.RetrievedPoint:
    return pb.RetrievedPoint(
        id=to_point_id(rec.id),
        payload=py_to_payload(rec.payload),
        vectors=vectors_output(rec.vector, col.config.single_unnamed),
        order_value=order_value(rec.order_value),
    )


def group_id(value: Any) -> pb.GroupId:
    if isinstance(value, str):
        return pb.GroupId(string_value=value)
    return pb.GroupId(unsigned_value=value) if value >= 0 else pb.GroupId(integer_value=value)


def groups_result(groups: Sequence[Group], col: Collection, lookup_col: Collection | None) -> pb.GroupsResult:
    out = []
    for g in groups:
        lookup = None
        if g.lookup is not None and lookup_col is not None:
            lookup = retrieved_point(g.lookup, lookup_col)
        out.append(pb.PointGroup(id=group_id(g.id), hits=scored_points(g.hits, col), lookup=lookup))
    return pb.GroupsResult(groups=out)


def update_result(result: UpdateResult) -> pb.UpdateResult:
    return pb.UpdateResult(operation_id=result.operation_id, status=_STATUS[result.status])


def facet_value(value: Any) -> pb.FacetValue:
    if isinstance(value, bool):
        return pb.FacetValue(bool_value=value)
    if isinstance(value, int):
        return pb.FacetValue(integer_value=value)
    return pb.FacetValue(string_value=str(value))
