"""Reads of one shard's replicas: one readable replica (this peer's first, moving on to the next
when one fails for a reason other than the request itself), or several at once when the request
asks for ``consistency``, their answers merged by the caller's resolver (see :mod:`resolve`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

from qcluster.errors import (
    QClusterError,
    ReplicationError,
    ShardUnknownError,
    StaleShardViewError,
    is_definite,
)
from qcluster.logging import get_logger
from qcluster.shards.base import ShardOperation
from qcluster.shards.replica_env import Consistency
from qcluster.shards.resolve import Condition

if TYPE_CHECKING:
    from qcluster.shards.replica_set import ReplicaSet

log = get_logger(__name__)
T = TypeVar("T")


async def read(
    rs: ReplicaSet,
    fn: Callable[[ShardOperation], Awaitable[T]],
    consistency: Consistency | None = None,
    resolver: Callable[[Sequence[T], Condition], T] | None = None,
) -> T:
    order = rs.read_order()
    if not order:
        raise ReplicationError(
            f"shard {rs.shard_id} of collection `{rs.collection}` has no Active replica to read "
            f"from ({rs.describe()})"
        )
    if consistency is None or consistency == 1 or resolver is None:
        return await _read_one(rs, fn, order)
    required, condition = _plan(rs, consistency)
    if len(order) < required:
        raise ReplicationError(
            f"shard {rs.shard_id} of collection `{rs.collection}`: read consistency "
            f"{consistency} needs {required} Active replicas, {len(order)} available ({rs.describe()})"
        )
    answers = await _read_many(rs, fn, order, required)
    return resolver(answers, condition)


def _plan(rs: ReplicaSet, consistency: Consistency) -> tuple[int, Condition]:
    total = max(1, len(rs.states))
    if consistency == "all":
        return total, Condition.ALL
    if consistency == "majority":
        return total, Condition.MAJORITY
    if consistency == "quorum":
        return total // 2 + 1, Condition.ALL
    return max(1, min(int(consistency), total)), Condition.ALL


async def _read_one(rs: ReplicaSet, fn: Callable[[ShardOperation], Awaitable[T]], order: list[int]) -> T:
    failed: dict[int, BaseException] = {}
    for peer in order:
        try:
            return await fn(rs.replica(peer))
        except QClusterError as exc:
            if is_definite(exc):
                raise
            failed[peer] = exc
            log.info(
                "read failed on a replica; trying the next",
                collection=rs.collection,
                shard=rs.shard_id,
                peer=peer,
                error=exc.message,
            )
    first = next(iter(failed.values()))
    text = rs.failure_text("every readable replica failed the read", failed)
    if all(isinstance(e, ShardUnknownError) for e in failed.values()):
        raise StaleShardViewError(text, rs.shard_id) from first
    raise ReplicationError(text) from first


async def _read_many(
    rs: ReplicaSet, fn: Callable[[ShardOperation], Awaitable[T]], order: list[int], required: int
) -> list[T]:
    """Answers of ``required`` replicas, asked at once; a failed one is replaced by the next."""
    answers: dict[int, T] = {}
    failed: dict[int, BaseException] = {}
    queue = list(order)
    while len(answers) < required:
        batch = queue[: required - len(answers)]
        queue = queue[len(batch) :]
        if not batch:
            first = next(iter(failed.values()), None)
            raise ReplicationError(
                rs.failure_text(f"{len(answers)} of {required} replicas answered the read", failed)
            ) from first
        results = await asyncio.gather(*(fn(rs.replica(p)) for p in batch), return_exceptions=True)
        for peer, result in zip(batch, results, strict=True):
            if isinstance(result, BaseException):
                if is_definite(result) or not isinstance(result, Exception):
                    raise result
                failed[peer] = result
            else:
                answers[peer] = result
    return [answers[p] for p in order if p in answers]
