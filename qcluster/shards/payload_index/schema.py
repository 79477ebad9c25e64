"""Payload index schemas as Qdrant takes them (``field_schema`` of ``PUT .../index``).

Either a type name (``"keyword"``) or ``{"type": ..., <params>}``. Params accepted per type (the
Qdrant 1.19 API):

- every type: ``on_disk`` (bool), ``memory`` (cold / cached / pinned), ``enable_hnsw`` (bool);
- keyword: ``is_tenant``, ``prefix``; uuid: ``is_tenant``;
- integer: ``lookup``, ``range`` (not both false), ``is_principal``; float / datetime:
  ``is_principal``;
- text: ``tokenizer`` (word / whitespace / prefix / multilingual), ``lowercase``, ``ascii_folding``,
  ``phrase_matching``, ``min_token_len``, ``max_token_len``, ``stopwords`` (a custom word list:
  ``{"custom": [...]}``).

Storage placement params are accepted and recorded (indexes live in memory here). Rejected with
a reason: unknown params, wrong value types, and the text options qcluster does not implement
(predefined stopword languages, ``stemmer``), so a collection never silently behaves differently
from what was asked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from qcluster.errors import BadInputError, UnprocessableInputError

TYPES = ("keyword", "integer", "float", "bool", "geo", "text", "datetime", "uuid")
TOKENIZERS = ("word", "whitespace", "prefix", "multilingual")
MEMORY = ("cold", "cached", "pinned")
_COMMON = ("on_disk", "memory", "enable_hnsw")
_PARAMS: dict[str, tuple[str, ...]] = {
    "keyword": ("is_tenant", "prefix"),
    "uuid": ("is_tenant",),
    "integer": ("lookup", "range", "is_principal"),
    "float": ("is_principal",),
    "datetime": ("is_principal",),
    "bool": (),
    "geo": (),
    "text": (
        "tokenizer",
        "lowercase",
        "ascii_folding",
        "phrase_matching",
        "min_token_len",
        "max_token_len",
        "stopwords",
        "stemmer",
    ),
}
_BOOLS = (
    "on_disk",
    "enable_hnsw",
    "is_tenant",
    "prefix",
    "lookup",
    "range",
    "is_principal",
    "lowercase",
    "ascii_folding",
    "phrase_matching",
)


@dataclass(frozen=True)
class FieldSchema:
    type: str
    params: dict[str, Any] = field(default_factory=dict, hash=False)

    def flag(self, name: str, default: bool) -> bool:
        v = self.params.get(name)
        return default if v is None else bool(v)

    @property
    def lowercase(self) -> bool:
        return self.flag("lowercase", True)

    @property
    def tokenizer(self) -> str:
        return str(self.params.get("tokenizer") or "word")

    @property
    def min_token_len(self) -> int | None:
        v = self.params.get("min_token_len")
        return int(v) if v is not None else None

    @property
    def max_token_len(self) -> int | None:
        v = self.params.get("max_token_len")
        return int(v) if v is not None else None

    @property
    def is_tenant(self) -> bool:
        return self.flag("is_tenant", False)

    def to_json(self) -> str | dict[str, Any]:
        """The schema as the user gave it (a bare type name when there are no params)."""
        if not self.params:
            return self.type
        return {"type": self.type, **self.params}


def _err(path: str, reason: str) -> BadInputError:
    return BadInputError(f"{path}: {reason}", path)


def _check_param(kind: str, name: str, value: Any) -> None:
    path = f"field_schema.{name}"
    if name in _BOOLS:
        if not isinstance(value, bool):
            raise _err(path, f"expected true or false, got {value!r}")
    elif name == "memory":
        if value not in MEMORY:
            raise _err(path, f"expected one of {', '.join(MEMORY)}, got {value!r}")
    elif name == "tokenizer":
        if value not in TOKENIZERS:
            raise _err(path, f"unknown tokenizer {value!r}; expected one of {', '.join(TOKENIZERS)}")
    elif name in ("min_token_len", "max_token_len"):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise _err(path, f"expected a non-negative integer, got {value!r}")
    elif name == "stopwords":
        from qcluster.shards.payload_index.stopwords import LANGUAGES

        if isinstance(value, str):
            value = {"languages": [value]}
        if not isinstance(value, Mapping) or set(value) - {"custom", "languages"}:
            raise _err(path, 'expected a language or {"languages": [...], "custom": ["a", "the", ...]}')
        for lang in value.get("languages") or []:
            if lang not in LANGUAGES:
                raise _err(
                    f"{path}.languages",
                    f"stopwords for {lang!r} are not available (known: {', '.join(sorted(LANGUAGES))}); "
                    "list the words in custom",
                )
        custom = value.get("custom") or []
        if not isinstance(custom, list) or not all(isinstance(w, str) for w in custom):
            raise _err(f"{path}.custom", "expected a list of strings")
    elif name == "stemmer":
        raise _err(path, "stemming is not supported by qcluster's text index")
    del kind


def parse_field_schema(raw: Any) -> FieldSchema:
    """Validate Qdrant's ``field_schema``; BadInputError naming the field and the reason."""
    if isinstance(raw, str):
        if raw not in TYPES:
            raise _err(
                "field_schema", f"unknown payload index type {raw!r}; expected one of {', '.join(TYPES)}"
            )
        return FieldSchema(raw)
    if not isinstance(raw, Mapping):
        raise _err("field_schema", f"expected a type name or an object with `type`, got {raw!r}")
    kind = raw.get("type")
    if kind not in TYPES:
        raise _err(
            "field_schema.type", f"unknown payload index type {kind!r}; expected one of {', '.join(TYPES)}"
        )
    params: dict[str, Any] = {}
    allowed = (*_COMMON, *_PARAMS[kind])
    for name, value in raw.items():
        if name == "type":
            continue
        if name not in allowed:
            raise _err(
                f"field_schema.{name}",
                f"unknown parameter for a {kind} index; expected one of {', '.join(allowed)}",
            )
        if value is None:
            continue
        _check_param(kind, name, value)
        params[name] = value
    if kind == "integer" and params.get("lookup") is False and params.get("range") is False:
        # (422 in Qdrant's words: a well-formed schema asking for an index that answers nothing)
        raise UnprocessableInputError(
            "[field_schema: Validation error: the 'lookup' and 'range' capabilities can't be both "
            "disabled (an integer index needs lookup or range) [{}]]",
            "field_schema",
        )
    lo, hi = params.get("min_token_len"), params.get("max_token_len")
    if lo is not None and hi is not None and lo > hi:
        raise _err("field_schema.min_token_len", f"min_token_len ({lo}) is greater than max_token_len ({hi})")
    return FieldSchema(str(kind), params)
