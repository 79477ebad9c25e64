"""Pure payload manipulations: set (optionally under a nested key), delete keys, select for output."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from qcluster.shards.base import PayloadSelector

Payload = dict[str, Any]


def _split(path: str) -> list[str]:
    return [p for p in path.replace("[]", "").split(".") if p]


def set_payload(current: Payload | None, values: Payload, key: str | None = None) -> Payload:
    """Merge ``values`` into ``current`` (top level), or into the object at nested ``key``."""
    out: Payload = dict(current or {})
    if not key:
        out.update(copy.deepcopy(values))
        return out
    parts = _split(key)
    node = out
    for part in parts:
        child = node.get(part)
        child = dict(child) if isinstance(child, dict) else {}
        node[part] = child
        node = child
    node.update(copy.deepcopy(values))
    return out


_GROUPED: dict[int, tuple[Sequence[str], dict[str, list[list[str]]]]] = {}


def _by_first_key(keys: Sequence[str]) -> dict[str, list[list[str]]]:
    """Key paths grouped by their first key, parsed once per key list (remembered by identity: a
    selector's tuple is the same object for every point of a request, and hashing a long tuple
    per point would cost what this saves)."""
    hit = _GROUPED.get(id(keys))
    if hit is not None and hit[0] is keys:
        return hit[1]
    groups: dict[str, list[list[str]]] = {}
    for key in keys:
        parts = _split(key)
        if parts:
            groups.setdefault(parts[0], []).append(parts)
    if len(_GROUPED) >= 256:
        _GROUPED.clear()
    _GROUPED[id(keys)] = (keys, groups)  # holding ``keys`` keeps its id from being reused
    return groups


def _paths_in(payload: Payload, keys: Sequence[str]) -> list[list[str]]:
    """The paths of ``keys`` whose first key ``payload`` has: the work per point follows the
    smaller of the payload and the key list, so a request listing many keys costs no more on
    small payloads."""
    groups = _by_first_key(keys)
    if len(groups) <= len(payload):
        return [parts for first, paths in groups.items() if first in payload for parts in paths]
    return [parts for first in payload for parts in groups.get(first, ())]


def delete_keys(current: Payload | None, keys: Sequence[str]) -> Payload | None:
    if current is None:
        return None
    out: Payload = copy.deepcopy(current)
    for parts in _paths_in(out, keys):
        node: Any = out
        for part in parts[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
            if node is None:
                break
        if isinstance(node, dict):
            node.pop(parts[-1], None)
    return out


def _get_path(payload: Payload, parts: list[str]) -> tuple[bool, Any]:
    node: Any = payload
    for part in parts:
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _put_path(target: Payload, parts: list[str], value: Any) -> None:
    node = target
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def select_payload(payload: Payload | None, selector: PayloadSelector) -> Payload | None:
    """Apply ``with_payload``: None when disabled; include / exclude by top-level or dotted keys."""
    if not selector.enabled:
        return None
    payload = payload or {}
    if selector.include is not None:
        out: Payload = {}
        for parts in _paths_in(payload, selector.include):
            found, value = _get_path(payload, parts)
            if found:
                _put_path(out, parts, value)
        return out
    if selector.exclude:
        return delete_keys(payload, selector.exclude) or {}
    return payload
