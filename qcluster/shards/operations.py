"""Update operations on one shard, and their compact binary encoding (WAL records, peer RPCs).

An operation names its points either by ids or by a filter (``PointSelector``). The local shard
resolves a filter to ids *before* the operation is written to its WAL, so WAL records are
id-based and replaying a suffix of the log over newer state gives the same result.

Encoding: ``u32 header length | orjson header | raw float32 / bool blobs``. Never pickle.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from qcluster.errors import BadInputError, CorruptedStorageError
from qcluster.shards.clock import ClockTag
from qcluster.types import PointId

Payload = dict[str, Any]


@dataclass(frozen=True, slots=True)
class NamedVectors:
    """Vectors of one name for a batch: ``data[i]`` belongs to the batch's i-th point when
    ``present`` is None or ``present[i]`` is True."""

    data: npt.NDArray[np.float32]
    present: npt.NDArray[np.bool_] | None = None

    def has(self, i: int) -> bool:
        return self.present is None or bool(self.present[i])


@dataclass(frozen=True, slots=True)
class PointsBatch:
    ids: tuple[PointId, ...]
    vectors: Mapping[str, NamedVectors]
    payloads: tuple[Payload | None, ...] | None = None

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True, slots=True)
class PointSelector:
    ids: tuple[PointId, ...] | None = None
    filter: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class UpsertPoints:
    batch: PointsBatch


@dataclass(frozen=True, slots=True)
class DeletePoints:
    selector: PointSelector


@dataclass(frozen=True, slots=True)
class SetPayload:
    selector: PointSelector
    payload: Payload
    key: str | None = None


@dataclass(frozen=True, slots=True)
class OverwritePayload:
    selector: PointSelector
    payload: Payload


@dataclass(frozen=True, slots=True)
class DeletePayload:
    selector: PointSelector
    keys: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ClearPayload:
    selector: PointSelector


@dataclass(frozen=True, slots=True)
class UpdateVectors:
    batch: PointsBatch


@dataclass(frozen=True, slots=True)
class DeleteVectors:
    selector: PointSelector
    names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CreateFieldIndex:
    field_name: str
    field_schema: Any = None


@dataclass(frozen=True, slots=True)
class DeleteFieldIndex:
    field_name: str


UpdateOperation = (
    UpsertPoints
    | DeletePoints
    | SetPayload
    | OverwritePayload
    | DeletePayload
    | ClearPayload
    | UpdateVectors
    | DeleteVectors
    | CreateFieldIndex
    | DeleteFieldIndex
)

SELECTOR_OPS = (DeletePoints, SetPayload, OverwritePayload, DeletePayload, ClearPayload, DeleteVectors)


def sub_batch(batch: PointsBatch, rows: list[int]) -> PointsBatch:
    """The points of ``batch`` at positions ``rows``, in that order."""
    idx = np.asarray(rows, dtype=np.int64)
    vectors = {
        name: NamedVectors(nv.data[idx], None if nv.present is None else nv.present[idx])
        for name, nv in batch.vectors.items()
    }
    payloads = None if batch.payloads is None else tuple(batch.payloads[i] for i in rows)
    return PointsBatch(tuple(batch.ids[i] for i in rows), vectors, payloads)


def with_ids(op: UpdateOperation, ids: tuple[PointId, ...]) -> UpdateOperation:
    """The same operation with its selector replaced by an explicit id list."""
    from dataclasses import replace

    assert isinstance(op, SELECTOR_OPS)
    return replace(op, selector=PointSelector(ids=ids))


# ---------------------------------------------------------------------------------------------
# Encoding
# ---------------------------------------------------------------------------------------------

_U32 = struct.Struct("<I")


@dataclass(slots=True)
class _Writer:
    blobs: list[bytes] = field(default_factory=list)
    specs: list[list[Any]] = field(default_factory=list)

    def batch(self, batch: PointsBatch) -> dict[str, Any]:
        for name, nv in batch.vectors.items():
            data = np.ascontiguousarray(nv.data, dtype=np.float32)
            self.specs.append([name, int(data.shape[0]), int(data.shape[1]), nv.present is not None])
            self.blobs.append(data.tobytes())
            if nv.present is not None:
                self.blobs.append(np.ascontiguousarray(nv.present, dtype=np.bool_).tobytes())
        return {"ids": list(batch.ids), "payloads": None if batch.payloads is None else list(batch.payloads)}


def _selector_json(sel: PointSelector) -> dict[str, Any]:
    return {"ids": None if sel.ids is None else list(sel.ids), "filter": sel.filter}


def encode_operation(op: UpdateOperation, tag: ClockTag | None = None) -> bytes:
    """``op`` (and the clock tag of the write it belongs to) as one record."""
    w = _Writer()
    head: dict[str, Any] = {"t": type(op).__name__}
    if tag is not None:
        head["tag"] = tag.as_list()
    if isinstance(op, UpsertPoints | UpdateVectors):
        head["batch"] = w.batch(op.batch)
    else:
        for name in op.__dataclass_fields__:
            value = getattr(op, name)
            head[name] = _selector_json(value) if isinstance(value, PointSelector) else value
    head["vec"] = w.specs
    header = orjson.dumps(head)
    return b"".join([_U32.pack(len(header)), header, *w.blobs])


_BY_NAME: dict[str, type[Any]] = {
    cls.__name__: cls
    for cls in (
        UpsertPoints,
        DeletePoints,
        SetPayload,
        OverwritePayload,
        DeletePayload,
        ClearPayload,
        UpdateVectors,
        DeleteVectors,
        CreateFieldIndex,
        DeleteFieldIndex,
    )
}


def record_tag(data: bytes) -> ClockTag | None:
    """The clock tag of a record, reading only its header (no vector blobs)."""
    try:
        (hlen,) = _U32.unpack_from(data, 0)
        raw = orjson.loads(data[4 : 4 + hlen]).get("tag")
        return None if raw is None else ClockTag.from_list(raw)
    except (ValueError, TypeError, struct.error, orjson.JSONDecodeError) as exc:
        raise CorruptedStorageError(f"undecodable operation record: {exc}") from exc


def decode_operation(data: bytes) -> UpdateOperation:
    """Inverse of :func:`encode_operation` (the tag dropped)."""
    return decode_record(data)[0]


def decode_record(data: bytes) -> tuple[UpdateOperation, ClockTag | None]:
    """Inverse of :func:`encode_operation`. Raises CorruptedStorageError on malformed input."""
    try:
        (hlen,) = _U32.unpack_from(data, 0)
        head = orjson.loads(data[4 : 4 + hlen])
        pos = 4 + hlen
        cls = _BY_NAME[head.pop("t")]
        raw_tag = head.pop("tag", None)
        tag = None if raw_tag is None else ClockTag.from_list(raw_tag)
        specs = head.pop("vec")
        if cls in (UpsertPoints, UpdateVectors):
            vectors: dict[str, NamedVectors] = {}
            for name, n, dim, has_present in specs:
                size = n * dim * 4
                arr = np.frombuffer(data, dtype=np.float32, count=n * dim, offset=pos).reshape(n, dim)
                pos += size
                present = None
                if has_present:
                    present = np.frombuffer(data, dtype=np.bool_, count=n, offset=pos).copy()
                    pos += n
                vectors[name] = NamedVectors(arr.copy(), present)
            raw = head["batch"]
            payloads = None if raw["payloads"] is None else tuple(raw["payloads"])
            batch = PointsBatch(tuple(raw["ids"]), vectors, payloads)
            return cls(batch), tag
        kwargs: dict[str, Any] = {}
        for name, value in head.items():
            if name == "selector":
                ids = value["ids"]
                kwargs[name] = PointSelector(None if ids is None else tuple(ids), value["filter"])
            elif isinstance(value, list):
                kwargs[name] = tuple(value)
            else:
                kwargs[name] = value
        return cls(**kwargs), tag
    except (KeyError, ValueError, TypeError, struct.error, orjson.JSONDecodeError) as exc:
        raise CorruptedStorageError(f"undecodable operation record: {exc}") from exc


def check_vectors(batch: PointsBatch, dims: Mapping[str, int], *, require_all: bool) -> None:
    """Reject unknown names, wrong dimensions and non-finite values before anything is written."""
    n = len(batch.ids)
    for name, nv in batch.vectors.items():
        label = f'vector "{name}"' if name else "vector"
        if name not in dims:
            raise BadInputError(f"Not existing vector name error: {name}", f"vectors.{name}")
        if nv.data.ndim != 2 or nv.data.shape[0] != n:
            raise BadInputError(f"{label}: expected one vector per point", f"vectors.{name}")
        if nv.data.shape[1] != dims[name]:
            raise BadInputError(
                f"Vector dimension error: expected dim: {dims[name]}, got {nv.data.shape[1]}",
                f"vectors.{name}",
            )
        if not np.isfinite(nv.data if nv.present is None else nv.data[nv.present]).all():
            raise BadInputError(
                f"{label}: values must be finite numbers (no NaN or infinity)", f"vectors.{name}"
            )
    if require_all and not batch.vectors and dims and n:
        raise BadInputError("points must carry at least one vector", "vectors")
