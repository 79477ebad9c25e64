"""A deterministic update workload and its reference model, for crash (kill -9) tests.

Operation ``i`` of a run is a pure function of ``(seed, i)``, so a checker can replay what a
killed worker acknowledged and know exactly which state every point must be in.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from qcluster.shards.operations import (
    ClearPayload,
    DeletePoints,
    NamedVectors,
    OverwritePayload,
    PointsBatch,
    PointSelector,
    SetPayload,
    UpdateOperation,
    UpsertPoints,
)
from qcluster.types import PointId

DIM = 8
ID_SPACE = 300


def make_op(seed: int, i: int) -> UpdateOperation:
    rng = random.Random(seed * 1_000_003 + i)
    kind = rng.choices(["upsert", "delete", "set", "overwrite", "clear"], weights=[6, 2, 2, 1, 1])[0]
    ids = tuple(sorted(rng.sample(range(ID_SPACE), rng.randint(1, 12))))
    if kind == "upsert":
        vecs = np.random.default_rng(seed * 7919 + i).standard_normal((len(ids), DIM)).astype(np.float32)
        payloads = tuple({"op": i, "k": rng.randint(0, 5)} for _ in ids)
        return UpsertPoints(PointsBatch(ids, {"": NamedVectors(vecs)}, payloads))
    sel = PointSelector(ids=ids)
    if kind == "delete":
        return DeletePoints(sel)
    if kind == "set":
        return SetPayload(sel, {"set": i})
    if kind == "overwrite":
        return OverwritePayload(sel, {"over": i})
    return ClearPayload(sel)


@dataclass
class Model:
    """Expected state: point id -> (vector, payload)."""

    points: dict[PointId, tuple[tuple[float, ...], dict[str, Any] | None]] = field(default_factory=dict)

    def accepts(self, op: UpdateOperation) -> bool:
        """Whether the engine accepts the op (payload ops on missing ids are rejected whole)."""
        if isinstance(op, SetPayload | OverwritePayload | ClearPayload):
            return all(pid in self.points for pid in op.selector.ids or ())
        return True

    def apply(self, op: UpdateOperation) -> None:
        if not self.accepts(op):
            return
        if isinstance(op, UpsertPoints):
            col = op.batch.vectors[""]
            assert isinstance(col, NamedVectors)
            data = col.data
            for j, pid in enumerate(op.batch.ids):
                payload = None if op.batch.payloads is None else op.batch.payloads[j]
                self.points[pid] = (tuple(float(x) for x in data[j]), payload)
        elif isinstance(op, DeletePoints):
            for pid in op.selector.ids or ():
                self.points.pop(pid, None)
        elif isinstance(op, SetPayload):
            for pid in op.selector.ids or ():
                vec, payload = self.points[pid]
                self.points[pid] = (vec, {**(payload or {}), **op.payload})
        elif isinstance(op, OverwritePayload):
            for pid in op.selector.ids or ():
                self.points[pid] = (self.points[pid][0], dict(op.payload))
        elif isinstance(op, ClearPayload):
            for pid in op.selector.ids or ():
                self.points[pid] = (self.points[pid][0], None)

    def copy(self) -> Model:
        return Model(dict(self.points))
