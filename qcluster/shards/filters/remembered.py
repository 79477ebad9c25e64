"""The last few hundred top-level filter parses, remembered by their JSON.

Parsed filters are immutable, and the same filter JSON comes back often (per query: planning and
evaluation; across queries: a tenant's filter), so ``parse.py`` keeps the last ``CACHE_SIZE``
top-level parses keyed by their JSON with sorted keys. A remembered filter was checked when it
was parsed and comes back as the same object (which the per-segment selection cache relies on).
Errors are never remembered.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import orjson

from qcluster.shards.filters.conditions import Filter

CACHE_SIZE = 512
_cache: OrderedDict[bytes, Filter] = OrderedDict()
_lock = threading.Lock()


def cache_key(raw: Any, path: str = "filter") -> bytes | None:
    """The cache key of top-level filter JSON ``raw`` (None when it is not cached)."""
    if path != "filter" or not isinstance(raw, dict):
        return None
    try:
        return orjson.dumps(raw, option=orjson.OPT_SORT_KEYS)
    except (TypeError, orjson.JSONEncodeError):  # not JSON, or nested past orjson's own limit
        return None


def recall(key: bytes) -> Filter | None:
    """The parse remembered under ``key`` (None: not remembered)."""
    with _lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
        return hit


def remember(key: bytes | None, parsed: Filter) -> None:
    if key is not None:
        with _lock:
            _cache[key] = parsed
            if len(_cache) > CACHE_SIZE:
                _cache.popitem(last=False)


def remembered_filter(raw: Any) -> tuple[bytes | None, Filter | None]:
    """(cache key, remembered parse) of top-level filter JSON ``raw``: the parse is None when it
    is not remembered (never parses); the key (None: not cacheable) can be handed to
    ``parse.parse_small_filter`` so the JSON is not serialised again."""
    key = cache_key(raw)
    return (None, None) if key is None else (key, recall(key))
