"""JSON dict diffs and deep merges: what an ``UpdateCollection`` carries and how it is merged into
a collection config; the settings loader layers its sources with the same merge.

A diff holds only the keys whose value changed (nested mappings recursively), so applying it on a
peer leaves everything else of that peer's config as it was.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def deep_merge(base: Mapping[str, Any], diff: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in diff.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def config_diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The smallest diff with ``deep_merge(old, diff) == new`` for keys present in ``new``."""
    out: dict[str, Any] = {}
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, Mapping) and isinstance(before, Mapping):
            inner = config_diff(before, value)
            if inner:
                out[key] = inner
        elif key not in old or before != value:
            out[key] = value
    return out
