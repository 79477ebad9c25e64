"""Update operations on one shard, and their compact binary encoding (WAL records, peer RPCs).

An operation names its points either by ids or by a filter (``PointSelector``). The local shard
resolves a filter to ids *before* the operation is written to its WAL, so WAL records are
id-based and replaying a suffix of the log over newer state gives the same result.

Vectors of a batch come in columns, one per name: ``NamedVectors`` (dense, ``[n, dim]``),
``MultiColumn`` (multivectors, a CSR of ``[rows, dim]`` matrices) and ``SparseColumn`` (CSR of
indices / values). Each offers ``row(i)`` and ``take(rows)``.

Encoding: ``u32 header length | orjson header | raw blobs``. Never pickle. The header's ``vec``
lists dense columns ``[name, n, dim, has_present]`` (float32 ``[n, dim]`` then bool ``[n]``),
``sp`` sparse ones ``[name, n, nnz, has_present]`` (int64 indptr ``[n + 1]``, uint32 indices,
float32 values, bool ``[n]``), ``mv`` multivector ones ``[name, n, rows, dim, has_present]`` (int64
indptr, float32 ``[rows, dim]``, bool ``[n]``); blobs follow in that order. Records written
before sparse and multivectors existed have neither key and decode unchanged.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import orjson

from qcluster.errors import BadInputError, CorruptedStorageError
from qcluster.shards.clock import ClockTag
from qcluster.shards.sparse.vector import SparseColumn
from qcluster.types import PointId

if TYPE_CHECKING:
    from qcluster.models.config import ShardConfig

Payload = dict[str, Any]
I64 = npt.NDArray[np.int64]
F32 = npt.NDArray[np.float32]
Mask = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class NamedVectors:
    """Vectors of one name for a batch: ``data[i]`` belongs to the batch's i-th point when
    ``present`` is None or ``present[i]`` is True."""

    data: npt.NDArray[np.float32]
    present: npt.NDArray[np.bool_] | None = None

    def has(self, i: int) -> bool:
        return self.present is None or bool(self.present[i])

    def row(self, i: int) -> F32 | None:
        return self.data[i] if self.has(i) else None

    def take(self, rows: I64) -> NamedVectors:
        return NamedVectors(self.data[rows], None if self.present is None else self.present[rows])


@dataclass(frozen=True, slots=True, eq=False)
class MultiColumn:
    """Multivectors of one name for a batch: the i-th point's matrix is
    ``data[indptr[i]:indptr[i+1]]``, present when ``present`` is None or ``present[i]``."""

    indptr: I64
    data: F32
    present: Mask | None = None

    def has(self, i: int) -> bool:
        return self.present is None or bool(self.present[i])

    def row(self, i: int) -> F32 | None:
        if not self.has(i):
            return None
        return self.data[int(self.indptr[i]) : int(self.indptr[i + 1])]

    def take(self, rows: I64) -> MultiColumn:
        return MultiColumn.from_rows([self.row(int(i)) for i in rows], self.data.shape[1])

    @classmethod
    def from_rows(cls, rows: list[F32 | None], dim: int) -> MultiColumn:
        lengths = np.array([0 if r is None else len(r) for r in rows], dtype=np.int64)
        indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        kept = [r for r in rows if r is not None and len(r)]
        data = np.concatenate(kept).astype(np.float32) if kept else np.zeros((0, dim), np.float32)
        present = np.array([r is not None for r in rows], dtype=np.bool_)
        return cls(indptr, data, None if bool(present.all()) else present)


Column = NamedVectors | MultiColumn | SparseColumn


@dataclass(frozen=True, slots=True)
class PointsBatch:
    ids: tuple[PointId, ...]
    vectors: Mapping[str, Column]
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
    vectors = {name: col.take(idx) for name, col in batch.vectors.items()}
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
    sparse_specs: list[list[Any]] = field(default_factory=list)
    multi_specs: list[list[Any]] = field(default_factory=list)

    def _blob(self, arr: Any, dtype: Any) -> None:
        self.blobs.append(np.ascontiguousarray(arr, dtype=dtype).tobytes())

    def batch(self, batch: PointsBatch) -> dict[str, Any]:
        later: list[SparseColumn | MultiColumn] = []
        for name, col in batch.vectors.items():
            if isinstance(col, SparseColumn):
                self.sparse_specs.append([name, len(col), len(col.indices), col.present is not None])
                later.append(col)
            elif isinstance(col, MultiColumn):
                dim = int(col.data.shape[1])
                self.multi_specs.append(
                    [name, len(col.indptr) - 1, len(col.data), dim, col.present is not None]
                )
                later.append(col)
            else:
                data = np.ascontiguousarray(col.data, dtype=np.float32)
                self.specs.append([name, int(data.shape[0]), int(data.shape[1]), col.present is not None])
                self._blob(data, np.float32)
                if col.present is not None:
                    self._blob(col.present, np.bool_)
        for col in sorted(later, key=lambda c: isinstance(c, MultiColumn)):  # sparse, then multi
            self._blob(col.indptr, np.int64)
            if isinstance(col, SparseColumn):
                self._blob(col.indices, np.uint32)
                self._blob(col.values, np.float32)
            else:
                self._blob(col.data, np.float32)
            if col.present is not None:
                self._blob(col.present, np.bool_)
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
    if w.sparse_specs:
        head["sp"] = w.sparse_specs
    if w.multi_specs:
        head["mv"] = w.multi_specs
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
        sparse_specs = head.pop("sp", [])
        multi_specs = head.pop("mv", [])
        if cls in (UpsertPoints, UpdateVectors):
            reader = _Reader(data, pos)
            vectors: dict[str, Column] = {}
            for name, n, dim, has_present in specs:
                arr = reader.take(np.float32, n * dim).reshape(n, dim)
                vectors[name] = NamedVectors(arr, reader.take(np.bool_, n) if has_present else None)
            for name, n, nnz, has_present in sparse_specs:
                indptr = reader.indptr(n, nnz)
                indices = reader.take(np.uint32, nnz)
                values = reader.take(np.float32, nnz)
                present = reader.take(np.bool_, n) if has_present else None
                vectors[name] = SparseColumn(indptr, indices, values, present)
            for name, n, rows, dim, has_present in multi_specs:
                indptr = reader.indptr(n, rows)
                mdata = reader.take(np.float32, rows * dim).reshape(rows, dim)
                vectors[name] = MultiColumn(indptr, mdata, reader.take(np.bool_, n) if has_present else None)
            if reader.pos != len(data):
                raise ValueError(f"{len(data) - reader.pos} trailing bytes")
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


@dataclass(slots=True)
class _Reader:
    data: bytes
    pos: int

    def take(self, dtype: Any, count: int) -> Any:
        arr = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.pos).copy()
        self.pos += arr.nbytes
        return arr

    def indptr(self, n: int, total: int) -> I64:
        """A CSR row pointer of ``n`` rows over ``total`` entries, checked (it indexes arrays)."""
        ptr: I64 = self.take(np.int64, n + 1)
        if ptr[0] != 0 or ptr[-1] != total or bool((np.diff(ptr) < 0).any()):
            raise ValueError("malformed CSR row pointer")
        return ptr


def check_vectors(batch: PointsBatch, config: ShardConfig, *, require_all: bool) -> None:
    """Reject unknown names, wrong kinds or dimensions and non-finite values before anything is
    written."""
    n = len(batch.ids)
    for name, col in batch.vectors.items():
        label = f'vector "{name}"' if name else "vector"
        params = config.vectors.get(name)
        if name in config.sparse_vectors:
            if not isinstance(col, SparseColumn) or len(col) != n:
                raise BadInputError(f"{label}: expected one sparse vector per point", f"vectors.{name}")
            if not np.isfinite(col.values).all():
                raise BadInputError(f"{label}: values must be finite numbers", f"vectors.{name}")
            continue
        if params is None:
            raise BadInputError(f"Not existing vector name error: {name}", f"vectors.{name}")
        if isinstance(col, SparseColumn):
            raise BadInputError(
                f"{label}: Conversion between sparse and regular vectors failed", f"vectors.{name}"
            )
        if isinstance(col, MultiColumn) != params.multi:
            what = "a multivector (a list of vectors)" if params.multi else "a single vector"
            raise BadInputError(f"{label}: expected {what} per point", f"vectors.{name}")
        if isinstance(col, MultiColumn):
            if len(col.indptr) != n + 1 or col.data.ndim != 2 or col.data.shape[1] != params.size:
                raise BadInputError(
                    f"Vector dimension error: expected dim: {params.size}, got {col.data.shape[-1]}",
                    f"vectors.{name}",
                )
            if not np.isfinite(col.data).all():
                raise BadInputError(f"{label}: values must be finite numbers", f"vectors.{name}")
            continue
        nv = col
        if nv.data.ndim != 2 or nv.data.shape[0] != n:
            raise BadInputError(f"{label}: expected one vector per point", f"vectors.{name}")
        if nv.data.shape[1] != params.size:
            raise BadInputError(
                f"Vector dimension error: expected dim: {params.size}, got {nv.data.shape[1]}",
                f"vectors.{name}",
            )
        if not np.isfinite(nv.data if nv.present is None else nv.data[nv.present]).all():
            raise BadInputError(
                f"{label}: values must be finite numbers (no NaN or infinity)", f"vectors.{name}"
            )
    if require_all and not batch.vectors and config.vectors and not config.sparse_vectors and n:
        raise BadInputError("points must carry at least one vector", "vectors")
