"""Changes to a Collection's config: new settings, named vectors added or removed.

Settings that keep the set of vector names go to the local shards in place. A changed set of
vector names is a rebuild (``rebuild.py``): the local shards are copied into a new generation
under the new config while writes wait (the write gate), and swapped in under the read gate, so
reads only wait for the instant of the swap. Schema changes run one at a time.
"""

from __future__ import annotations

import asyncio
import shutil
from typing import TYPE_CHECKING

from qcluster.collection import rebuild
from qcluster.errors import AlreadyExistsError, BadInputError, NotFoundError
from qcluster.logging import get_logger
from qcluster.models.collections import CollectionConfig, with_vector
from qcluster.models.config import SparseVectorParams, VectorParams
from qcluster.types import DEFAULT_VECTOR

if TYPE_CHECKING:
    from qcluster.collection.collection import Collection

log = get_logger(__name__)


class CollectionSchema:
    def __init__(self, col: Collection):
        self.col = col
        self._lock = asyncio.Lock()

    async def update_config(self, config: CollectionConfig) -> None:
        """Take new settings; a changed set of vector names rebuilds the local shards."""
        col = self.col
        if set(config.params.vectors) != set(col.config.params.vectors):
            async with self._lock:
                await self._rebuild(config)
            return
        col.config = config
        col.save_config()
        shard_cfg = config.shard_config()
        for shard in col.local_shards().values():
            await shard.update_config(shard_cfg)

    async def create_vector(self, name: str, params: VectorParams | SparseVectorParams) -> None:
        """Add named vector ``name`` (existing points have none of it). A rebuild: writes wait
        until it is done; reads go on, except for the instant of the swap."""
        async with self._lock:
            await self._rebuild(self.config_with_vector(name, params))

    def config_with_vector(
        self, name: str, params: VectorParams | SparseVectorParams | None
    ) -> CollectionConfig:
        """The config with ``name`` added (dense or sparse ``params``) or removed (None), validated."""
        col = self.col
        config = col.config
        sparse = config.params.sparse_vectors or {}
        if params is not None:
            if name in config.params.vectors or name in sparse:
                raise AlreadyExistsError(f"Vector name `{name}` already exists in collection `{col.name}`")
            if name == DEFAULT_VECTOR or config.single_unnamed:
                raise BadInputError(
                    "a named vector cannot be added to a collection with an unnamed vector", "vector_name"
                )
        else:
            if name not in config.params.vectors and name not in sparse:
                raise NotFoundError(f"Vector name `{name}` doesn't exist in collection `{col.name}`")
            if len(config.params.vectors) + len(sparse) == 1:
                raise BadInputError("the last vector of a collection cannot be deleted", "vector_name")
        return with_vector(config, name, params)

    async def delete_vector(self, name: str) -> None:
        """Remove named vector ``name`` and its data: a rebuild."""
        async with self._lock:
            await self._rebuild(self.config_with_vector(name, None))

    async def _rebuild(self, config: CollectionConfig) -> None:
        """Copy the local shards into a new generation under ``config`` and swap it in (see
        ``rebuild.py`` for the steps, the commit point and crash behaviour)."""
        col = self.col
        async with col.writes.paused():
            gen, shards = await rebuild.build_generation(col.path, col.local_shards(), config, col.storage)
            async with col.gated_reads.gate.exclusive():
                old_dir = col.shards_dir
                col.config, col.shards_dir = config, gen
                col.holder.root = col.path / gen
                col.save_config()
                old_shards = await col.holder.replace_locals(shards)
            await asyncio.gather(*(s.close() for s in old_shards), return_exceptions=True)
            await asyncio.to_thread(shutil.rmtree, col.path / old_dir, True)
            log.info("collection rebuilt with a new vector layout", collection=col.name, shards_dir=gen)
