"""Per-request read options: ``consistency`` and the ``shard_key`` selector.

They apply to every shard read a request makes, however deep in the query layer (prefetches,
example lookups, payload hydration), so they travel in a context variable set by the API edge
(``with read_scope(...)``) rather than through every call: asyncio copies the context into the
tasks a request starts, so concurrent requests never see each other's scope.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TypeVar

from qcluster.errors import BadInputError
from qcluster.shards.replica_env import Consistency
from qcluster.types import ShardKey, parse_decimal

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ReadScope:
    consistency: Consistency | None = None
    shard_keys: tuple[ShardKey, ...] | None = None


_DEFAULT = ReadScope()
_SCOPE: ContextVar[ReadScope | None] = ContextVar("read_scope", default=None)


def current() -> ReadScope:
    return _SCOPE.get() or _DEFAULT


@contextlib.contextmanager
def read_scope(
    consistency: Consistency | None = None, shard_keys: tuple[ShardKey, ...] | None = None
) -> Iterator[ReadScope]:
    scope = ReadScope(consistency, shard_keys)
    token = _SCOPE.set(scope)
    try:
        yield scope
    finally:
        _SCOPE.reset(token)


async def with_shard_keys(raw: object, work: Awaitable[T]) -> T:
    """Await ``work`` with the request's shard key selector ``raw`` (a key, a list, or None)."""
    keys = parse_shard_keys(raw)
    if keys is None:
        return await work
    with read_scope(current().consistency, keys):
        return await work


def parse_consistency(raw: str | int | None, field: str = "consistency") -> Consistency | None:
    """Qdrant's ``consistency``: a positive number of replicas, ``majority``, ``quorum`` or ``all``."""
    if raw is None or raw == "":
        return None
    if isinstance(raw, int) and not isinstance(raw, bool):
        value = raw
    elif isinstance(raw, str) and raw.isdigit():
        value = parse_decimal(raw, field, "a number of replicas")
    elif raw in ("majority", "quorum", "all"):
        return raw  # type: ignore[return-value]
    else:
        raise BadInputError(
            f"{field}: expected a positive number of replicas, majority, quorum or all, got {raw!r}", field
        )
    if value < 1:
        raise BadInputError(f"{field}: the number of replicas must be at least 1, got {value}", field)
    return value


def parse_shard_keys(raw: object, field: str = "shard_key") -> tuple[ShardKey, ...] | None:
    """Qdrant's shard key selector: a key, a list of keys, or absent."""
    if raw is None:
        return None
    items = raw if isinstance(raw, list) else [raw]
    keys: list[ShardKey] = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, str | int):
            raise BadInputError(
                f"{field}: a shard key is a string or an unsigned integer, got {item!r}", field
            )
        if isinstance(item, int) and item < 0:
            raise BadInputError(f"{field}: a shard key number must not be negative, got {item}", field)
        keys.append(item)
    return tuple(keys) or None
