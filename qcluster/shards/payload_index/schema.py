"""Payload index schemas as Qdrant takes them (``field_schema``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from qcluster.errors import BadInputError

TYPES = ("keyword", "integer", "float", "bool", "geo", "text", "datetime", "uuid")


@dataclass(frozen=True)
class FieldSchema:
    type: str
    params: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def lowercase(self) -> bool:
        return bool(self.params.get("lowercase", True))

    @property
    def min_token_len(self) -> int | None:
        v = self.params.get("min_token_len")
        return int(v) if v is not None else None

    @property
    def max_token_len(self) -> int | None:
        v = self.params.get("max_token_len")
        return int(v) if v is not None else None


def parse_field_schema(raw: Any) -> FieldSchema:
    if isinstance(raw, str):
        if raw not in TYPES:
            raise BadInputError(
                f"field_schema: unknown payload index type {raw!r}; expected one of {list(TYPES)}",
                "field_schema",
            )
        return FieldSchema(raw)
    if isinstance(raw, Mapping):
        kind = raw.get("type")
        if kind not in TYPES:
            raise BadInputError(
                f"field_schema.type: unknown payload index type {kind!r}; expected one of {list(TYPES)}",
                "field_schema.type",
            )
        params = {k: v for k, v in raw.items() if k != "type"}
        if kind == "text":
            tok = params.get("tokenizer", "word")
            if tok not in ("word", "whitespace", "prefix", "multilingual"):
                raise BadInputError(
                    f"field_schema.tokenizer: unknown tokenizer {tok!r}", "field_schema.tokenizer"
                )
            for name in ("min_token_len", "max_token_len"):
                v = params.get(name)
                if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
                    raise BadInputError(
                        f"field_schema.{name}: expected a non-negative integer", f"field_schema.{name}"
                    )
        return FieldSchema(str(kind), params)
    raise BadInputError("field_schema: expected a type name or an object with `type`", "field_schema")
