"""Payload key paths as Qdrant writes them, and reading values at a path.

Syntax (Qdrant's JSON path): a first key, then any of ``.key``, ``."quoted key"``, ``[n]`` (one
array element) and ``[]`` (every array element). Unquoted keys are made of letters, digits, ``_``
and ``-``; anything else (spaces, dots, brackets) must be quoted: ``meta."a.b"[].c``.

Reading follows Qdrant exactly: ``.key`` only descends into objects and ``[]`` / ``[n]`` only into
arrays, so ``country.cities.name`` finds nothing when ``cities`` is an array (write
``country.cities[].name``). The values found are returned as they are ("raw"); the last array is
not flattened. :func:`flat` flattens it one level, which is what value conditions (match, range,
geo) look at: a condition on an array field matches when any element does. Arrays nested inside
that array stay arrays (and match nothing but ``except``, as in Qdrant).
"""

from __future__ import annotations

import functools
from typing import Any

from qcluster.errors import BadInputError

# A path item: a key (str), one array index (int), or every array element (None, written "[]").
PathItem = str | int | None
Path = tuple[PathItem, ...]


def _raw_key_char(c: str) -> bool:
    return c.isalnum() or c in "_-"


@functools.lru_cache(maxsize=8192)
def _parse(key: str) -> Path | str:
    """The parsed path, or a reason why ``key`` is not a valid path."""
    items: list[PathItem] = []
    i, n = 0, len(key)

    def read_key(i: int) -> tuple[str, int] | str:
        if i < n and key[i] == '"':
            end = key.find('"', i + 1)
            if end < 0:
                return "unterminated quoted key"
            body = key[i + 1 : end]
            if "\\" in body:
                return "backslashes are not allowed in quoted keys"
            return body, end + 1
        j = i
        while j < n and _raw_key_char(key[j]):
            j += 1
        if j == i:
            ch = key[i] if i < n else "end of key"
            return f"expected a key name at position {i}, found {ch!r} (quote keys with special characters)"
        return key[i:j], j

    if not key:
        return "the key is empty"
    first = read_key(0)
    if isinstance(first, str):
        return first
    items.append(first[0])
    i = first[1]
    while i < n:
        ch = key[i]
        if ch == ".":
            nxt = read_key(i + 1)
            if isinstance(nxt, str):
                return nxt
            items.append(nxt[0])
            i = nxt[1]
        elif ch == "[":
            end = key.find("]", i)
            if end < 0:
                return "unterminated '['"
            inner = key[i + 1 : end]
            if inner == "":
                items.append(None)
            elif inner.isdigit() and inner.isascii():
                items.append(int(inner))
            else:
                return f"array index {inner!r} is not a non-negative integer"
            i = end + 1
        else:
            return f"unexpected {ch!r} at position {i}"
    return tuple(items)


def parse_path(key: Any, field: str = "key") -> Path:
    """Validate a payload key; BadInputError naming ``field`` when it is not a valid path."""
    if not isinstance(key, str):
        raise BadInputError(f"{field}: expected a payload key string, got {key!r}", field)
    parsed = _parse(key)
    if isinstance(parsed, str):
        raise BadInputError(f"{field}: invalid payload key {key!r}: {parsed}", field)
    return parsed


def try_parse_path(key: str) -> Path | None:
    parsed = _parse(key)
    return None if isinstance(parsed, str) else parsed


def array_key(key: str, path: Path) -> tuple[str, Path]:
    """``key`` with a trailing ``[]`` (Qdrant's nested-filter convention), and its path."""
    if path and path[-1] is None:
        return key, path
    return key + "[]", (*path, None)


def raw_values(root: Any, path: Path) -> list[Any]:
    """The values at ``path`` in ``root`` (a payload or a nested element), arrays kept whole."""
    out: list[Any] = []

    def walk(node: Any, i: int) -> None:
        if i == len(path):
            out.append(node)
            return
        item = path[i]
        if isinstance(item, str):
            if isinstance(node, dict) and item in node:
                walk(node[item], i + 1)
        elif item is None:
            if isinstance(node, list):
                for el in node:
                    walk(el, i + 1)
        elif isinstance(node, list) and item < len(node):
            walk(node[item], i + 1)

    if isinstance(root, dict) and path:
        walk(root, 0)
    return out


def flat(raw: list[Any]) -> list[Any]:
    """Raw values with arrays flattened one level (what value conditions test)."""
    out: list[Any] = []
    for v in raw:
        if isinstance(v, list):
            out.extend(v)
        else:
            out.append(v)
    return out


def values(root: Any, path: Path | str) -> list[Any]:
    """Flattened values at a path (a string key is parsed; an invalid one reads nothing)."""
    if isinstance(path, str):
        parsed = try_parse_path(path)
        if parsed is None:
            return []
        path = parsed
    return flat(raw_values(root, path))
