"""REST request models of the point write endpoints (upsert, delete, payload, vectors, batch) and of
retrieval by id. Vectors stay raw JSON here: the REST layer converts them to numpy in one pass
(``api/rest/vectors.py``), which is much faster than validating a float at a time."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, model_validator

from qcluster.models.bounds import bound_error, bounded_length, json_depth, key_depth, limits_of
from qcluster.models.common import (
    FilterIn,
    JsonObjectIn,
    PointIdIn,
    PointIdsIn,
    Req,
    tag,
    tagged,
    with_vector_field,
)

UpdateMode = Literal["upsert", "insert_only", "update_only"]


POINTS = bounded_length("max_points_per_request", "number of points")


class PointStructIn(Req):
    id: PointIdIn
    vector: Any = Field(default_factory=dict)
    payload: JsonObjectIn | None = None


class BatchIn(Req):
    ids: PointIdsIn
    vectors: Any
    payloads: Annotated[list[JsonObjectIn | None], POINTS] | None = None


class _Upsert(Req):
    update_filter: FilterIn | None = None
    update_mode: UpdateMode | None = None
    shard_key: Any = None  # a shard key or a list of keys (custom sharding)


class PointsListIn(_Upsert):
    points: Annotated[list[PointStructIn], POINTS]


class PointsBatchIn(_Upsert):
    batch: BatchIn


def _upsert_kind(value: Any) -> str:
    return "batch" if isinstance(value, dict) and "batch" in value else "points"


UpsertIn = Annotated[
    Annotated[PointsListIn, tag("points")] | Annotated[PointsBatchIn, tag("batch")],
    tagged(_upsert_kind),
]


class SelectorIn(Req):
    """Qdrant's PointsSelector: ``{"points": [...]}`` or ``{"filter": {...}}``."""

    points: PointIdsIn | None = None
    filter: FilterIn | None = None
    shard_key: Any = None  # a shard key or a list of keys (custom sharding)


class SetPayloadIn(Req):
    payload: JsonObjectIn
    points: PointIdsIn | None = None
    filter: FilterIn | None = None
    key: str | None = None
    shard_key: Any = None  # a shard key or a list of keys (custom sharding)

    @model_validator(mode="after")
    def _stored_depth(self, info: ValidationInfo) -> SetPayloadIn:
        """Values set under ``key`` end up ``key_depth(key)`` levels deeper in the payload."""
        if self.key:
            bound = limits_of(info).max_json_depth
            depth = key_depth(self.key) + json_depth(self.payload, bound)
            if depth > bound:
                raise bound_error(
                    "nesting depth of `key` plus `payload`", depth, "max_json_depth", bound, walked=True
                )
        return self


class DeletePayloadIn(Req):
    keys: list[str]
    points: PointIdsIn | None = None
    filter: FilterIn | None = None
    shard_key: Any = None  # a shard key or a list of keys (custom sharding)


class PointVectorsIn(Req):
    id: PointIdIn
    vector: Any


class UpdateVectorsIn(Req):
    points: Annotated[list[PointVectorsIn], Field(min_length=1), POINTS]
    update_filter: FilterIn | None = None
    shard_key: Any = None  # a shard key or a list of keys (custom sharding)


class DeleteVectorsIn(Req):
    points: PointIdsIn | None = None
    filter: FilterIn | None = None
    vector: Annotated[list[str], Field(min_length=1)]
    shard_key: Any = None  # a shard key or a list of keys (custom sharding)


class UpsertOp(Req):
    upsert: UpsertIn


class DeleteOp(Req):
    delete: SelectorIn


class SetPayloadOp(Req):
    set_payload: SetPayloadIn


class OverwritePayloadOp(Req):
    overwrite_payload: SetPayloadIn


class DeletePayloadOp(Req):
    delete_payload: DeletePayloadIn


class ClearPayloadOp(Req):
    clear_payload: SelectorIn


class UpdateVectorsOp(Req):
    update_vectors: UpdateVectorsIn


class DeleteVectorsOp(Req):
    delete_vectors: DeleteVectorsIn


BATCH_OPS: dict[str, type[Req]] = {
    "upsert": UpsertOp,
    "delete": DeleteOp,
    "set_payload": SetPayloadOp,
    "overwrite_payload": OverwritePayloadOp,
    "delete_payload": DeletePayloadOp,
    "clear_payload": ClearPayloadOp,
    "update_vectors": UpdateVectorsOp,
    "delete_vectors": DeleteVectorsOp,
}


def _op_kind(value: Any) -> str:
    if isinstance(value, dict):
        for key in value:
            if key in BATCH_OPS:
                return str(key)
    return "unknown"


BatchOpIn = Annotated[
    Annotated[UpsertOp, tag("upsert")]
    | Annotated[DeleteOp, tag("delete")]
    | Annotated[SetPayloadOp, tag("set_payload")]
    | Annotated[OverwritePayloadOp, tag("overwrite_payload")]
    | Annotated[DeletePayloadOp, tag("delete_payload")]
    | Annotated[ClearPayloadOp, tag("clear_payload")]
    | Annotated[UpdateVectorsOp, tag("update_vectors")]
    | Annotated[DeleteVectorsOp, tag("delete_vectors")],
    tagged(_op_kind, "one of " + ", ".join(f"`{k}`" for k in BATCH_OPS)),
]


class UpdateOperationsIn(Req):
    operations: Annotated[list[BatchOpIn], bounded_length("max_batch_operations", "number of operations")]


class PointRequestIn(Req):
    ids: PointIdsIn
    with_payload: Any = True
    with_vector: Any = with_vector_field(False)
    shard_key: Any = None  # a shard key or a list of keys (custom sharding)
