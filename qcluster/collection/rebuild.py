"""Copying a collection's shards into a new generation with a changed vector layout (adding or
removing a named vector: segments fix their vector names when they are created).

Steps (the caller holds the collection's write gate, so no write lands meanwhile)::

    1. open empty shards under <collection>/shards-<gen>/<i> with the new config, one for each
       local shard i
    2. copy every point of old shard i into new shard i (same routing: same ids, same count),
       page by page, dropping the removed vector; re-create the payload indexes
    3. (caller) write config.json naming the new generation   <- the commit point
    4. (caller) swap the shard lists under the read gate, close and delete the old generation

A crash before 3 leaves an unreferenced generation that ``Collection.load`` deletes; after 3 the
old one is the leftover. If a step before 3 fails, the new shards are closed and deleted and the
collection is unchanged. Cancellation behaves like a failure.
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path

from qcluster.models.collections import CollectionConfig
from qcluster.settings import StorageSettings
from qcluster.shards.local_shard import LocalShard
from qcluster.shards.shard_copy import copy_points

SHARDS_PREFIX = "shards"


def new_generation() -> str:
    return f"{SHARDS_PREFIX}-{uuid.uuid4().hex[:12]}"


async def copy_shard(old: LocalShard, new: LocalShard, dims: Mapping[str, int]) -> None:
    """Every point of ``old`` into ``new``, keeping the vectors named in ``dims``; then the
    payload indexes. Points left with no vector at all are kept (an all-absent column)."""
    await copy_points(old.scroll, old.info, lambda op: new.update(op, wait=True), dims)


async def build_generation(
    collection_path: Path,
    old_shards: Mapping[int, LocalShard],
    config: CollectionConfig,
    storage: StorageSettings,
) -> tuple[str, dict[int, LocalShard]]:
    """Steps 1-2: a new shard generation holding the old local shards' data under ``config``."""
    gen = new_generation()
    root = collection_path / gen
    shards: dict[int, LocalShard] = {}
    try:
        shard_cfg = config.shard_config()
        opened = await asyncio.gather(
            *(LocalShard.load_or_create(root / str(sid), shard_cfg, storage) for sid in old_shards)
        )
        shards = dict(zip(old_shards, opened, strict=True))
        dims = config.vector_dims()
        for sid, old in old_shards.items():
            await copy_shard(old, shards[sid], dims)
    except BaseException:
        await asyncio.gather(*(s.close() for s in shards.values()), return_exceptions=True)
        await asyncio.to_thread(shutil.rmtree, root, True)
        raise
    return gen, shards


def remove_stale_generations(collection_path: Path, current: str) -> None:
    """Delete shard generations other than ``current`` (left by an interrupted rebuild)."""
    for path in collection_path.iterdir():
        if path.is_dir() and path.name.startswith(SHARDS_PREFIX) and path.name != current:
            shutil.rmtree(path, ignore_errors=True)
