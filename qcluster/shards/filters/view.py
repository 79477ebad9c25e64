"""An in-memory :class:`SegmentView` over a list of payloads (tests, tools, small ad-hoc sets)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from qcluster.shards.filters.evaluate import Mask
from qcluster.types import PointId

if TYPE_CHECKING:
    from qcluster.shards.payload_index import FieldIndex


class PayloadView:
    def __init__(
        self,
        payloads: Sequence[dict[str, Any] | None],
        ids: Sequence[PointId] | None = None,
        vectors: Mapping[str, Sequence[bool]] | None = None,
    ):
        self.payloads = list(payloads)
        self.size = len(self.payloads)
        self.ids: list[PointId] = list(ids) if ids is not None else list(range(self.size))
        self._offsets = {pid: i for i, pid in enumerate(self.ids)}
        self._vectors = {
            name: np.asarray(list(has), dtype=np.bool_)
            for name, has in (vectors or {"": [True] * self.size}).items()
        }
        self.indexes: dict[str, FieldIndex] = {}

    def point_id(self, offset: int) -> PointId:
        return self.ids[offset]

    def offset_of(self, point_id: PointId) -> int | None:
        return self._offsets.get(point_id)

    def payload(self, offset: int) -> dict[str, Any] | None:
        return self.payloads[offset]

    def vector_mask(self, name: str) -> Mask:
        has = self._vectors.get(name)
        return np.zeros(self.size, dtype=np.bool_) if has is None else has

    def has_vector(self, offset: int, name: str) -> bool:
        return bool(self.vector_mask(name)[offset])

    def field_index(self, key: str) -> FieldIndex | None:
        return self.indexes.get(key)

    def add_index(self, key: str, schema: Any) -> FieldIndex:
        """Build a payload index of ``schema`` (Qdrant's field_schema JSON) over every payload."""
        from qcluster.shards.payload_index import build_index, parse_field_schema

        idx = build_index(key, parse_field_schema(schema), enumerate(self.payloads))
        self.indexes[key] = idx
        return idx

    def set_payload(self, offset: int, payload: dict[str, Any] | None) -> None:
        self.payloads[offset] = payload
        for idx in self.indexes.values():
            idx.add(offset, payload)

    def text_index(self, key: str) -> Any:
        idx = self.indexes.get(key)
        return idx if idx is not None and idx.kind == "text" else None
