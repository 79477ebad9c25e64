"""Reading one replica of a shard directly over the p2p port (tests, the chaos checker).

The public API merges replicas; a test that must prove replicas agree reads each one on its own,
through the same ``PointsInternal`` service the peers use (real gRPC, authenticated with the
cluster secret when one is set).
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import orjson

from qcluster.p2p.channels import ChannelPool
from qcluster.shards.base import ALL_PAYLOAD, ALL_VECTORS, ScrollRequest
from qcluster.shards.clock import ClockTag
from qcluster.shards.operations import UpdateOperation
from qcluster.shards.remote_shard import RemoteShard
from qcluster.types import PointId

PAGE = 1000


async def _read(p2p_uri: str, collection: str, shard_id: int, secret: str | None) -> dict[PointId, str]:
    pool = ChannelPool(secret)
    try:
        shard = RemoteShard(collection, shard_id, 0, lambda: p2p_uri, pool, timeout=60.0)
        out: dict[PointId, str] = {}
        offset: PointId | None = None
        while True:
            page = await shard.scroll(
                ScrollRequest(offset=offset, limit=PAGE, with_payload=ALL_PAYLOAD, with_vector=ALL_VECTORS)
            )
            for rec in page.points:
                out[rec.id] = content_hash(rec.payload, rec.vector)
            if page.next_page_offset is None:
                return out
            offset = page.next_page_offset
    finally:
        await pool.close()


def content_hash(payload: Any, vectors: Any) -> str:
    vec = {name: v.tobytes().hex() for name, v in sorted((vectors or {}).items())}
    return hashlib.sha256(orjson.dumps([payload, vec], option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def replica_contents(
    p2p_uri: str, collection: str, shard_id: int, secret: str | None = None
) -> dict[PointId, str]:
    """Point id -> content hash (payload and vectors) of every point of one replica."""
    return asyncio.run(_read(p2p_uri, collection, shard_id, secret))


async def _write(
    p2p_uri: str, collection: str, shard_id: int, op: UpdateOperation, tag: ClockTag, secret: str | None
) -> None:
    pool = ChannelPool(secret)
    try:
        await RemoteShard(collection, shard_id, 0, lambda: p2p_uri, pool, timeout=60.0).update(op, True, tag)
    finally:
        await pool.close()


def write_one_replica(
    p2p_uri: str,
    collection: str,
    shard_id: int,
    op: UpdateOperation,
    tag: ClockTag,
    secret: str | None = None,
) -> None:
    """Apply ``op`` tagged ``tag`` to one replica only, as a coordinator killed halfway through
    a write leaves it (tests of the replica audit)."""
    asyncio.run(_write(p2p_uri, collection, shard_id, op, tag, secret))
