"""Key paths (``a.b``, ``a[].b``, ``a[]``) and value extraction from payloads.

Arrays met along the path are flattened: ``country.cities.name`` reaches the name of every city
of an array of cities, with or without ``[]``. The last step's array is flattened one level
too, so a condition on an array field sees each element.
"""

from __future__ import annotations

import functools
from typing import Any

MISSING = object()


@functools.lru_cache(maxsize=4096)
def split_path(key: str) -> tuple[str, ...]:
    parts = []
    for raw in key.split("."):
        name = raw[:-2] if raw.endswith("[]") else raw
        if name:
            parts.append(name)
    return tuple(parts)


def raw_values(payload: Any, key: str) -> list[Any]:
    """Values found at ``key`` before the final flattening (a leaf array stays one value)."""
    nodes: list[Any] = [payload]
    for part in split_path(key):
        nxt: list[Any] = []
        for node in nodes:
            if isinstance(node, list):
                for item in node:
                    if isinstance(item, dict) and part in item:
                        nxt.append(item[part])
            elif isinstance(node, dict) and part in node:
                nxt.append(node[part])
        nodes = nxt
    return nodes


def values(payload: Any, key: str) -> list[Any]:
    """Leaf values at ``key``, arrays flattened; nulls kept (conditions decide about them)."""
    out: list[Any] = []
    for v in raw_values(payload, key):
        if isinstance(v, list):
            out.extend(v)
        else:
            out.append(v)
    return out
