"""JSON dict diffs and deep merges: what an ``UpdateCollection`` carries and how it is merged into
a collection config; the settings loader layers its sources with the same merge.

A diff holds only the keys whose value changed (nested mappings recursively), so applying it on a
peer leaves everything else of that peer's config as it was.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def deep_merge(
    base: Mapping[str, Any], diff: Mapping[str, Any], *, drop_none: bool = False
) -> dict[str, Any]:
    """``base`` with ``diff`` merged in, nested mappings recursively. With ``drop_none`` a None in
    the diff removes the key (how collection config diffs remove a named vector)."""
    out = dict(base)
    for key, value in diff.items():
        if drop_none and value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value, drop_none=drop_none)
        else:
            out[key] = value
    return out


def config_diff(old: Mapping[str, Any], new: Mapping[str, Any], *, removals: bool = False) -> dict[str, Any]:
    """The smallest diff with ``deep_merge(old, diff) == new`` for keys present in ``new``; with
    ``removals``, keys of ``old`` absent from ``new`` map to None (merge with ``drop_none``)."""
    out: dict[str, Any] = {}
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, Mapping) and isinstance(before, Mapping):
            inner = config_diff(before, value, removals=removals)
            if inner:
                out[key] = inner
        elif key not in old or before != value:
            out[key] = value
    if removals:
        for key in old:
            if key not in new:
                out[key] = None
    return out
