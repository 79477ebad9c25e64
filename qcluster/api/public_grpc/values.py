"""Qdrant's gRPC value types <-> Python: payloads (``json_with_int``: ``Value`` / ``Struct`` /
``ListValue``, integers kept apart from doubles), point ids, timestamps, and set fields of
config-like messages as dicts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from qcluster.api.public_grpc.wire import pb
from qcluster.errors import BadInputError
from qcluster.types import PointId

I64_MIN, I64_MAX = -(2**63), 2**63 - 1


# ------------------------------------------------------------------------------ payload values
_SCALARS = frozenset({"string_value", "integer_value", "double_value", "bool_value"})


def value_to_py(v: pb.Value) -> Any:
    kind = v.WhichOneof("kind")
    if kind in _SCALARS:
        return getattr(v, kind)
    if kind == "struct_value":
        return payload_to_py(v.struct_value.fields)
    if kind == "list_value":
        return [value_to_py(x) for x in v.list_value.values]
    return None  # null_value, or no kind set


def payload_to_py(fields: Mapping[str, pb.Value]) -> dict[str, Any]:
    # by key: a protobuf map's items() is the slow generic Mapping one
    out: dict[str, Any] = {}
    for k in fields:
        v = fields[k]
        kind = v.WhichOneof("kind")
        out[k] = getattr(v, kind) if kind in _SCALARS else value_to_py(v)
    return out


def py_to_value(x: Any) -> pb.Value:
    if isinstance(x, str):
        return pb.Value(string_value=x)
    if isinstance(x, bool):
        return pb.Value(bool_value=x)
    if isinstance(x, int):
        return pb.Value(integer_value=x) if I64_MIN <= x <= I64_MAX else pb.Value(double_value=float(x))
    if isinstance(x, float):
        return pb.Value(double_value=x)
    if isinstance(x, Mapping):
        return pb.Value(struct_value=pb.Struct(fields={str(k): py_to_value(v) for k, v in x.items()}))
    if isinstance(x, list | tuple):
        return pb.Value(list_value=pb.ListValue(values=[py_to_value(v) for v in x]))
    if x is None:
        return pb.Value(null_value=pb.NULL_VALUE)
    return pb.Value(string_value=str(x))


def py_to_payload(payload: Mapping[str, Any] | None) -> dict[str, pb.Value]:
    return {} if not payload else {k: py_to_value(v) for k, v in payload.items()}


# ------------------------------------------------------------------------------ point ids
def point_id(pid: pb.PointId, field: str = "id") -> PointId:
    kind = pid.WhichOneof("point_id_options")
    if kind == "num":
        return pid.num
    if kind == "uuid":
        return pid.uuid
    raise BadInputError(f"{field}: a point id needs `num` or `uuid`", field)


def point_ids(pids: Any, field: str = "ids") -> list[PointId]:
    return [point_id(p, f"{field}[{i}]") for i, p in enumerate(pids)]


def to_point_id(pid: PointId) -> pb.PointId:
    return pb.PointId(num=pid) if isinstance(pid, int) else pb.PointId(uuid=pid)


# ------------------------------------------------------------------------------ shard keys
def shard_key(key: pb.ShardKey) -> Any:
    kind = key.WhichOneof("key")
    return None if kind is None else getattr(key, kind)


def shard_key_selector(sel: pb.ShardKeySelector) -> Any:
    """A ShardKeySelector as REST's ``shard_key``: the list of keys (with a ``fallback``, the REST
    object ``{"target", "fallback"}``, which the shared parser refuses as qcluster has no fallback)."""
    keys = [shard_key(k) for k in sel.shard_keys]
    if sel.HasField("fallback"):
        return {"target": keys, "fallback": shard_key(sel.fallback)}
    return keys


def to_shard_key(key: str | int) -> pb.ShardKey:
    return pb.ShardKey(keyword=key) if isinstance(key, str) else pb.ShardKey(number=key)


# ------------------------------------------------------------------------------ time
def timestamp_text(ts: Timestamp) -> str:
    """RFC 3339 text of a protobuf timestamp (UTC)."""
    stamp: dt.datetime = ts.ToDatetime(tzinfo=dt.UTC)
    return stamp.isoformat().replace("+00:00", "Z")


def to_timestamp(text: str) -> Timestamp:
    parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    ts = Timestamp()
    ts.FromDatetime(parsed)
    return ts


# ------------------------------------------------------------------------------ config messages
def fields_dict(msg: Message, enum: Callable[[str], Any] = str.lower) -> dict[str, Any]:
    """The fields a config-like message has set, as the JSON object of the same REST model:
    nested messages as objects, enums by ``enum(value name)`` (lower case by default), 32-bit
    floats by their shortest decimal (``0.99``, not ``0.9900000095367432``)."""
    out: dict[str, Any] = {}
    for fd, value in msg.ListFields():
        if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
            out[fd.name] = {
                k: _plain(fd.message_type.fields_by_name["value"], v, enum) for k, v in value.items()
            }
        elif fd.is_repeated:
            out[fd.name] = [_plain(fd, v, enum) for v in value]
        else:
            out[fd.name] = _plain(fd, value, enum)
    return out


def _plain(fd: Any, value: Any, enum: Callable[[str], Any]) -> Any:
    if isinstance(value, pb.Value):
        return value_to_py(value)
    if isinstance(value, Message):
        return fields_dict(value, enum)
    if fd.enum_type is not None:
        found = fd.enum_type.values_by_number.get(value)
        return value if found is None else enum(found.name)
    if fd.type == fd.TYPE_FLOAT:
        return float(str(np.float32(value)))
    return value
