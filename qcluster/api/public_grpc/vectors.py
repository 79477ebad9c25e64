"""Vectors between protobuf messages and float32 numpy arrays, as packed floats.

A dense vector on the wire is a packed ``repeated float``: little-endian float32 values behind a
short header. Reading the repeated field element by element costs ~60 ns per float in Python;
instead a message is re-serialised (upb: a copy; an unpacked encoding a client may send comes out
packed) and the floats are taken from its bytes with ``numpy.frombuffer``. The header of a message
holding ``dim`` floats is cut from protobuf's own serialisation of one holding ``dim`` zeros
(:func:`prefix`), so no wire format is written by hand here.

An upsert whose points all carry one dense unnamed vector of one length is decoded in one step:
every point's ``Vectors`` serialised, checked to start with the same prefix (which fixes the shape:
``Vectors.vector.dense.data`` of ``dim`` floats, nothing else), joined, and viewed as an
``(n, dim)`` matrix. Responses go the other way: ``prefix + array.tobytes()`` parsed into a
message.

Request vectors that are not dense (sparse, multi-dense, inference objects) become the shapes the
shared batch and query code reads from REST JSON (``{"indices", "values"}``, a 2-d array,
``{"text"}`` / ``{"image"}`` / ``{"object"}``), so they are checked with the REST messages.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from qcluster.api.public_grpc.values import point_id, value_to_py
from qcluster.api.public_grpc.wire import pb
from qcluster.shards.base import AnyVector
from qcluster.shards.sparse.vector import SparseVector
from qcluster.types import DEFAULT_VECTOR

F32 = npt.NDArray[np.float32]
_LE_F32 = np.dtype("<f4")


@functools.cache
def prefix(dim: int, kind: str = "dense") -> bytes:
    """What protobuf writes before the ``dim`` floats of a ``DenseVector`` (``kind="dense"``) or
    of a point's ``Vectors`` holding one unnamed dense vector (``kind="vectors"``)."""
    zeros = pb.DenseVector(data=[0.0] * dim)
    msg: Any = zeros if kind == "dense" else pb.Vectors(vector=pb.Vector(dense=zeros))
    raw: bytes = msg.SerializeToString()
    return raw[: len(raw) - 4 * dim]


# ------------------------------------------------------------------------------ requests
def dense(v: pb.DenseVector) -> F32:
    """One dense vector's floats, from its packed bytes."""
    n = len(v.data)
    raw = v.SerializeToString()
    head = prefix(n) if n else b""
    if len(raw) != len(head) + 4 * n:  # unknown fields came along: read the field itself
        return np.asarray(v.data, dtype=np.float32)
    # astype copies: a writable array that does not pin the message's bytes
    return np.frombuffer(raw, dtype=_LE_F32, count=n, offset=len(head)).astype(np.float32)


def vector_json(v: pb.Vector) -> Any:
    """A request ``Vector``: a float32 array, or the REST marker of a kind qcluster refuses."""
    kind = v.WhichOneof("vector")
    if kind == "dense":
        return dense(v.dense)
    if kind is None:  # the deprecated flat form: data (+ indices: sparse, + vectors_count: multi)
        if v.HasField("indices"):
            return {"indices": list(v.indices.data), "values": list(v.data)}
        flat = np.asarray(v.data, dtype=np.float32)
        if v.HasField("vectors_count") and v.vectors_count > 0:
            return flat.reshape(v.vectors_count, -1)
        return flat
    if kind == "sparse":
        return {"indices": list(v.sparse.indices), "values": list(v.sparse.values)}
    if kind == "multi_dense":
        return np.stack([dense(d) for d in v.multi_dense.vectors]) if v.multi_dense.vectors else []
    return _inference(kind, getattr(v, kind))


def _inference(kind: str, obj: Any) -> dict[str, Any]:
    if kind == "document":
        return {"text": obj.text, "model": obj.model}
    if kind == "image":
        return {"image": value_to_py(obj.image), "model": obj.model}
    return {"object": value_to_py(obj.object), "model": obj.model}


def vectors_json(v: pb.Vectors) -> Any:
    """A point's ``Vectors``: one vector (the unnamed one) or ``{name: vector}``."""
    kind = v.WhichOneof("vectors_options")
    if kind == "vector":
        return vector_json(v.vector)
    if kind == "vectors":
        return {name: vector_json(x) for name, x in v.vectors.vectors.items()}
    return {}


def vector_input_json(v: pb.VectorInput) -> Any:
    """A query ``VectorInput``: a point id, a float32 array, or a REST marker."""
    kind = v.WhichOneof("variant")
    if kind == "id":
        return point_id(v.id)
    if kind == "dense":
        return dense(v.dense)
    if kind == "sparse":
        return {"indices": list(v.sparse.indices), "values": list(v.sparse.values)}
    if kind == "multi_dense":
        return np.stack([dense(d) for d in v.multi_dense.vectors]) if v.multi_dense.vectors else []
    if kind is None:
        return None
    return _inference(kind, getattr(v, kind))


def unnamed_dense(points: Sequence[Any]) -> F32 | None:
    """When every point carries one dense unnamed vector of one length: the ``(n, dim)`` matrix
    (the common upsert, decoded in one step); else None."""
    if not points:
        return None
    first = points[0].vectors
    if first.WhichOneof("vectors_options") != "vector" or first.vector.WhichOneof("vector") != "dense":
        return None
    dim = len(first.vector.dense.data)
    if dim == 0:
        return None
    head = prefix(dim, "vectors")
    width = len(head) + 4 * dim
    pieces = [p.vectors.SerializeToString() for p in points]
    if any(len(piece) != width for piece in pieces):
        return None
    rows = np.frombuffer(b"".join(pieces), dtype=np.uint8).reshape(len(pieces), width)
    if not (rows[:, : len(head)] == np.frombuffer(head, dtype=np.uint8)).all():
        return None
    body = np.ascontiguousarray(rows[:, len(head) :])
    return body.view(_LE_F32).astype(np.float32, copy=False).reshape(len(pieces), dim)


# ------------------------------------------------------------------------------ responses
def vector_output(v: AnyVector) -> pb.VectorOutput:
    """A stored vector: dense (packed floats), multi-dense (one packed row each) or sparse."""
    if isinstance(v, SparseVector):
        return pb.VectorOutput(sparse=pb.SparseVector(indices=v.indices.tolist(), values=v.values.tolist()))
    arr = np.asarray(v)
    if arr.ndim == 2:
        return pb.VectorOutput(multi_dense=pb.MultiDenseVector(vectors=[_dense_output(row) for row in arr]))
    return pb.VectorOutput(dense=_dense_output(arr))


def _dense_output(v: F32) -> pb.DenseVector:
    raw = np.ascontiguousarray(v, dtype=_LE_F32).tobytes()
    out: pb.DenseVector = pb.DenseVector.FromString(prefix(len(v)) + raw)
    return out


def vectors_output(vectors: Mapping[str, AnyVector] | None, single_unnamed: bool) -> pb.VectorsOutput | None:
    """A record's vectors: one vector for a collection with only the unnamed vector, else a map."""
    if vectors is None:
        return None
    if single_unnamed:
        v = vectors.get(DEFAULT_VECTOR)
        return None if v is None else pb.VectorsOutput(vector=vector_output(v))
    named = {name: vector_output(v) for name, v in vectors.items()}
    return pb.VectorsOutput(vectors=pb.NamedVectorsOutput(vectors=named))
