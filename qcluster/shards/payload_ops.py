"""Pure payload manipulations: set (optionally under a nested key), delete keys, select for output."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from qcluster.shards.base import PayloadSelector

Payload = dict[str, Any]


Token = str | int | None  # a key, an array index, or None for every element (``[]``)


def _tokens(path: str) -> list[Token]:
    """``a.b[0].c`` -> ``["a", "b", 0, "c"]``; ``a.b[].c`` -> ``["a", "b", None, "c"]``."""
    out: list[Token] = []
    for part in path.split("."):
        name, _, rest = part.partition("[")
        if name:
            out.append(name)
        while rest:
            inside, _, rest = rest.partition("]")
            out.append(int(inside) if inside.isdigit() else None)
            rest = rest.removeprefix("[")
    return out


def _set_at(node: Any, tokens: list[Token], values: Payload) -> Any:
    if not tokens:
        base = dict(node) if isinstance(node, dict) else {}
        base.update(copy.deepcopy(values))
        return base
    tok, rest = tokens[0], tokens[1:]
    if isinstance(tok, str):
        base = dict(node) if isinstance(node, dict) else {}
        base[tok] = _set_at(base.get(tok), rest, values)
        return base
    if not isinstance(node, list):
        return node
    if tok is None:
        return [_set_at(x, rest, values) for x in node]
    if tok >= len(node):
        return node
    items = list(node)
    items[tok] = _set_at(items[tok], rest, values)
    return items


def set_payload(current: Payload | None, values: Payload, key: str | None = None) -> Payload:
    """Merge ``values`` into ``current`` (top level), or into the objects at ``key`` (nested keys,
    ``[i]`` one array element, ``[]`` every element; missing objects are created)."""
    out: Payload = dict(current or {})
    if not key:
        out.update(copy.deepcopy(values))
        return out
    result: Payload = _set_at(out, _tokens(key), values)
    return result


def _delete_at(node: Any, tokens: list[Token]) -> None:
    tok, rest = tokens[0], tokens[1:]
    if isinstance(tok, str):
        if isinstance(node, dict):
            if not rest:
                node.pop(tok, None)
            elif tok in node:
                _delete_at(node[tok], rest)
        return
    if not isinstance(node, list):
        return
    targets = node if tok is None else ([node[tok]] if tok < len(node) else [])
    if not rest:
        if tok is not None and tok < len(node):
            del node[tok]
        elif tok is None:
            node.clear()
        return
    for item in targets:
        _delete_at(item, rest)


_GROUPED: dict[int, tuple[Sequence[str], dict[str, list[list[Token]]]]] = {}


def _by_first_key(keys: Sequence[str]) -> dict[str, list[list[Token]]]:
    """Key paths (``_tokens``) grouped by their first key, parsed once per key list (remembered by
    identity: a selector's tuple is the same object for every point of a request, and hashing a
    long tuple per point would cost what this saves). A path that does not start with a key
    cannot match a payload (an object) and is dropped."""
    hit = _GROUPED.get(id(keys))
    if hit is not None and hit[0] is keys:
        return hit[1]
    groups: dict[str, list[list[Token]]] = {}
    for key in keys:
        tokens = _tokens(key)
        if tokens and isinstance(tokens[0], str):
            groups.setdefault(tokens[0], []).append(tokens)
    if len(_GROUPED) >= 256:
        _GROUPED.clear()
    _GROUPED[id(keys)] = (keys, groups)  # holding ``keys`` keeps its id from being reused
    return groups


def _paths_in(payload: Payload, keys: Sequence[str]) -> list[list[Token]]:
    """The paths of ``keys`` whose first key ``payload`` has: the work per point follows the
    smaller of the payload and the key list, so a request listing many keys costs no more on
    small payloads."""
    groups = _by_first_key(keys)
    if len(groups) <= len(payload):
        return [tokens for first, paths in groups.items() if first in payload for tokens in paths]
    return [tokens for first in list(payload) for tokens in groups.get(first, ())]


def delete_keys(current: Payload | None, keys: Sequence[str]) -> Payload | None:
    if current is None:
        return None
    out: Payload = copy.deepcopy(current)
    for tokens in _paths_in(out, keys):
        _delete_at(out, tokens)
    return out


def _select_at(node: Any, tokens: list[Token]) -> tuple[bool, Any]:
    """The part of ``node`` at ``tokens``, keeping its shape (objects and arrays on the way)."""
    if not tokens:
        return True, copy.deepcopy(node)
    tok, rest = tokens[0], tokens[1:]
    if isinstance(tok, str):
        if not isinstance(node, dict) or tok not in node:
            return False, None
        found, value = _select_at(node[tok], rest)
        return found, {tok: value} if found else None
    if not isinstance(node, list):
        return False, None
    if tok is None:
        picked = [v for ok, v in (_select_at(x, rest) for x in node) if ok]
        return True, picked
    if tok >= len(node):
        return False, None
    found, value = _select_at(node[tok], rest)
    return found, [value] if found else None


def _merge(a: Any, b: Any) -> Any:
    if isinstance(a, dict) and isinstance(b, dict):
        out = dict(a)
        for k, v in b.items():
            out[k] = _merge(out[k], v) if k in out else v
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [_merge(x, y) for x, y in zip(a, b, strict=True)]
    return b


def select_payload(payload: Payload | None, selector: PayloadSelector) -> Payload | None:
    """Apply ``with_payload``: None when disabled; include / exclude by keys (nested keys and
    array paths keep the shape of the objects on the way)."""
    if not selector.enabled:
        return None
    payload = payload or {}
    if selector.include is not None:
        out: Payload = {}
        for tokens in _paths_in(payload, selector.include):
            found, value = _select_at(payload, tokens)
            if found:
                out = _merge(out, value)
        return out
    if selector.exclude:
        return delete_keys(payload, selector.exclude) or {}
    return payload
