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


def condition_type_error(kind: str, check: object) -> str | None:
    """Why a condition cannot apply to a field indexed as ``kind`` (None when it can)."""
    from qcluster.shards.filters.conditions import (
        GeoBox,
        GeoPolygon,
        GeoRadius,
        MatchAny,
        MatchExcept,
        MatchText,
        MatchValue,
        Range,
        ValuesCount,
    )

    if isinstance(check, ValuesCount):
        return None
    if isinstance(check, Range):
        if check.datetime:
            ok = kind == "datetime"
        else:
            ok = kind in ("integer", "float", "datetime")
        return None if ok else f"a range condition needs a numeric or datetime field, the index says {kind}"
    if isinstance(check, GeoRadius | GeoBox | GeoPolygon):
        return None if kind == "geo" else f"a geo condition needs a geo field, the index says {kind}"
    if isinstance(check, MatchText):
        return (
            None
            if kind in ("text", "keyword")
            else f"a full-text match needs a text field, the index says {kind}"
        )
    if isinstance(check, MatchValue):
        v = check.value
        if isinstance(v, bool):
            ok = kind == "bool"
        elif isinstance(v, int):
            ok = kind in ("integer", "float")
        else:
            ok = kind in ("keyword", "uuid", "text")
        return None if ok else f"match value {v!r} cannot match a field indexed as {kind}"
    if isinstance(check, MatchAny | MatchExcept):
        values = check.any if isinstance(check, MatchAny) else check.values
        if not values:
            return None
        ok = kind in ("integer",) if isinstance(values[0], int) else kind in ("keyword", "uuid")
        return (
            None
            if ok
            else f"match any/except with {type(values[0]).__name__}s cannot apply to a {kind} field"
        )
    return None
