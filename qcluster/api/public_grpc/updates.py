"""Write requests: Qdrant's gRPC messages -> the REST request bodies (dicts), validated by the
servicers into the same request models the REST handlers build.

Upserts take a fast path when every point carries one dense unnamed vector of one length (the
common case): the batch form ``{"batch": {"ids", "vectors": (n, dim) float32, "payloads"}}``,
decoded from the packed floats in one step. Any other upsert goes point by point
(``{"points": [{"id", "vector", "payload"}]}``) so an error names the point.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from qcluster.api.public_grpc.filters import optional_filter
from qcluster.api.public_grpc.requests import put, selector_json, shard_key
from qcluster.api.public_grpc.values import fields_dict, payload_to_py, point_id
from qcluster.api.public_grpc.vectors import unnamed_dense, vectors_json
from qcluster.api.public_grpc.wire import pb

_MODE = {pb.Upsert: "upsert", pb.InsertOnly: "insert_only", pb.UpdateOnly: "update_only"}
_FIELD_TYPES = {
    pb.FieldTypeKeyword: "keyword",
    pb.FieldTypeInteger: "integer",
    pb.FieldTypeFloat: "float",
    pb.FieldTypeGeo: "geo",
    pb.FieldTypeText: "text",
    pb.FieldTypeBool: "bool",
    pb.FieldTypeDatetime: "datetime",
    pb.FieldTypeUuid: "uuid",
}


def _conditions(msg: Any, out: dict[str, Any]) -> dict[str, Any]:
    shard_key(msg, out)
    flt = optional_filter(msg, "update_filter")
    if flt is not None:
        out["update_filter"] = flt
    if msg.HasField("update_mode"):
        out["update_mode"] = _MODE.get(msg.update_mode, msg.update_mode)
    return out


def points_body(points: Sequence[pb.PointStruct]) -> dict[str, Any]:
    """The upsert body of a list of points: the packed batch form when it applies."""
    matrix = unnamed_dense(points)
    if matrix is None:
        return {
            "points": [
                {
                    "id": point_id(p.id, f"points[{i}].id"),
                    "vector": vectors_json(p.vectors),
                    "payload": payload_to_py(p.payload) if p.payload else None,
                }
                for i, p in enumerate(points)
            ]
        }
    ids: list[Any] = []
    payloads: list[dict[str, Any] | None] = []
    for p in points:
        pid = p.id
        kind = pid.WhichOneof("point_id_options")
        ids.append(
            pid.num
            if kind == "num"
            else pid.uuid
            if kind == "uuid"
            else point_id(pid, f"points[{len(ids)}].id")
        )
        fields = p.payload
        payloads.append(payload_to_py(fields) if fields else None)
    return {"batch": {"ids": ids, "vectors": matrix, "payloads": payloads}}


def upsert(req: Any) -> dict[str, Any]:
    """``UpsertPoints`` (and a batch's ``PointStructList``)."""
    return _conditions(req, points_body(req.points))


def delete(req: Any) -> dict[str, Any]:
    """``DeletePoints`` / ``ClearPayloadPoints`` (and their batch forms)."""
    return shard_key(req, selector_json(req.points))


def set_payload(req: Any) -> dict[str, Any]:
    out: dict[str, Any] = shard_key(req, {"payload": payload_to_py(req.payload)})
    if req.HasField("points_selector"):
        selector_json(req.points_selector, out)
    put(out, req, "key")
    return out


def delete_payload(req: Any) -> dict[str, Any]:
    out: dict[str, Any] = shard_key(req, {"keys": list(req.keys)})
    if req.HasField("points_selector"):
        selector_json(req.points_selector, out)
    return out


def update_vectors(req: Any) -> dict[str, Any]:
    points = [
        {"id": point_id(p.id, f"points[{i}].id"), "vector": vectors_json(p.vectors)}
        for i, p in enumerate(req.points)
    ]
    out = shard_key(req, {"points": points})
    flt = optional_filter(req, "update_filter")
    if flt is not None:
        out["update_filter"] = flt
    return out


def delete_vectors(req: Any) -> dict[str, Any]:
    out = shard_key(req, selector_json(req.points_selector))
    out["vector"] = list(req.vectors.names)
    return out


def batch_operation(op: pb.PointsUpdateOperation) -> dict[str, Any]:
    kind = op.WhichOneof("operation")
    if kind == "upsert":
        return {"upsert": upsert(op.upsert)}
    if kind == "delete_points":
        return {"delete": delete(op.delete_points)}
    if kind == "delete_deprecated":
        return {"delete": selector_json(op.delete_deprecated)}
    if kind == "set_payload":
        return {"set_payload": set_payload(op.set_payload)}
    if kind == "overwrite_payload":
        return {"overwrite_payload": set_payload(op.overwrite_payload)}
    if kind == "delete_payload":
        return {"delete_payload": delete_payload(op.delete_payload)}
    if kind == "clear_payload":
        return {"clear_payload": delete(op.clear_payload)}
    if kind == "clear_payload_deprecated":
        return {"clear_payload": selector_json(op.clear_payload_deprecated)}
    if kind == "update_vectors":
        return {"update_vectors": update_vectors(op.update_vectors)}
    if kind == "delete_vectors":
        return {"delete_vectors": delete_vectors(op.delete_vectors)}
    return {}  # no operation set: refused by the shared model, naming the known ones


def batch(req: pb.UpdateBatchPoints) -> dict[str, Any]:
    return {"operations": [batch_operation(op) for op in req.operations]}


def field_index(req: pb.CreateFieldIndexCollection) -> dict[str, Any]:
    """``field_type`` + ``field_index_params`` -> REST's ``field_schema`` (a type name, or
    ``{"type", <params>}``)."""
    out: dict[str, Any] = {"field_name": req.field_name}
    if not req.HasField("field_type"):
        return out
    kind = _FIELD_TYPES.get(req.field_type, str(req.field_type))
    params: dict[str, Any] = {}
    if req.HasField("field_index_params"):
        which = req.field_index_params.WhichOneof("index_params")
        if which is not None:
            params = fields_dict(getattr(req.field_index_params, which))
    out["field_schema"] = {"type": kind, **params} if params else kind
    return out
