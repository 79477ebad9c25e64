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


def delete_keys(current: Payload | None, keys: Sequence[str]) -> Payload | None:
    if current is None:
        return None
    out: Payload = copy.deepcopy(current)
    for key in keys:
        parts = _split(key)
        if not parts:
            continue
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
        for key in selector.include:
            parts = _split(key)
            found, value = _get_path(payload, parts) if parts else (False, None)
            if found:
                _put_path(out, parts, value)
        return out
    if selector.exclude:
        return delete_keys(payload, selector.exclude) or {}
    return payload
