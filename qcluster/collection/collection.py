"""A collection on this peer: its config, ``config.json`` and a :class:`ShardHolder` (shard id ->
replica set), with its parts beside it:

- ``gated_reads.py`` (``gated_reads``): reads under the read gate, retried once a shard every
  replica forgot is dropped here too; they fan out per shard and merge (``reads.py``, ``reads``);
- ``writes.py`` (``writes``): updates split per shard over the collection's routing (the
  consistent-hash ring for new collections, see :mod:`qcluster.shards.routing`), each part to its
  shard's replica set; Qdrant's conditional upserts;
- ``schema.py`` (``schema``): new settings, named vectors added or removed (a rebuild);
- ``topology.py`` (``topology``): the placement: the agreed one in cluster mode, a single peer's
  own with its shard keys.

The point operations (``search``, ``scroll``, ``count``, ``retrieve``, ``facet``, ``info``,
``update``, ``upsert``, ``update_vectors``) are the bound methods of their part, held as
attributes: callers use the collection, and the hot one-query path gains no call.

``config.json`` holds ``{"name", "config", "shards_dir", "created_at", "shards"}``: ``shards_dir``
names the current shard generation (``shards`` unless a vector was added or removed, see
``rebuild.py``); ``created_at`` is the incarnation agreed through consensus (absent on a single
peer); ``shards`` lists the shard ids and keys of a single peer's collection (``topology.py``).
Every operation passes a gate (``gate.py``) that a rebuild closes to swap generations.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from qcluster.collection import rebuild
from qcluster.collection.gated_reads import GatedReads
from qcluster.collection.reads import CollectionReads
from qcluster.collection.schema import CollectionSchema
from qcluster.collection.topology import Topology
from qcluster.collection.writes import CollectionWrites
from qcluster.models.collections import CollectionConfig
from qcluster.settings import StorageSettings
from qcluster.shards.local_shard import LocalShard
from qcluster.shards.replica_env import ReplicaEnv
from qcluster.shards.routing import LEGACY_SCHEME
from qcluster.shards.segment_files import read_json, write_json_atomic
from qcluster.shards.shard_holder import ShardHolder, ShardPlacement

CONFIG_FILE = "config.json"


class Collection:
    def __init__(
        self,
        name: str,
        path: Path,
        config: CollectionConfig,
        storage: StorageSettings,
        shards_dir: str,
        env: ReplicaEnv,
        epoch: int,
        created_at: float | None = None,
    ):
        self.name = name
        self.path = path
        self.config = config
        self.storage = storage
        self.shards_dir = shards_dir
        self.created_at = created_at
        self.holder = ShardHolder(
            name,
            path / shards_dir,
            env,
            epoch,
            config.params.routing or LEGACY_SCHEME,
            config.params.sharding_method == "custom",
            lambda: self.config.params.write_consistency_factor,
            self._open_local,
        )
        self.reads = CollectionReads(self.holder, lambda using: self.config.distance_of(using))
        self.gated_reads = GatedReads(self.holder, self.reads)
        self.writes = CollectionWrites(self)
        self.schema = CollectionSchema(self)
        self.topology = Topology(self)
        # the point operations: the parts' own bound methods (see the module docstring)
        self.search = self.gated_reads.search
        self.scroll = self.gated_reads.scroll
        self.count = self.gated_reads.count
        self.retrieve = self.gated_reads.retrieve
        self.facet = self.gated_reads.facet
        self.info = self.gated_reads.info
        self.update = self.writes.update
        self.upsert = self.writes.upsert
        self.update_vectors = self.writes.update_vectors

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    async def create(
        cls,
        name: str,
        path: Path,
        config: CollectionConfig,
        storage: StorageSettings,
        env: ReplicaEnv,
        epoch: int,
        placement: Mapping[int, ShardPlacement],
        created_at: float | None = None,
    ) -> Collection:
        path.mkdir(parents=True, exist_ok=True)
        col = cls(name, path, config, storage, rebuild.SHARDS_PREFIX, env, epoch, created_at)
        col.save_config(placement if created_at is None else None)
        await col.holder.sync(placement, destructive=True)
        return col

    @classmethod
    async def load(
        cls,
        path: Path,
        storage: StorageSettings,
        env: ReplicaEnv,
        epoch: int,
        single_peer: bool,
    ) -> Collection:
        """Open a collection from disk: on a single peer with every shard local; in a cluster with
        the local shards found on disk, until the agreed placement arrives (``topology.sync``)."""
        raw = read_json(path / CONFIG_FILE)
        shards_dir = str(raw.get("shards_dir") or rebuild.SHARDS_PREFIX)
        await asyncio.to_thread(rebuild.remove_stale_generations, path, shards_dir)
        config = CollectionConfig.model_validate(raw["config"])
        created_at = raw.get("created_at")
        col = cls(raw["name"], path, config, storage, shards_dir, env, epoch, created_at)
        if single_peer:
            await col.holder.sync(col.topology.single_peer_placement(raw.get("shards")), destructive=False)
        else:
            await col.holder.open_existing()
        return col

    async def _open_local(self, path: Path) -> LocalShard:
        return await LocalShard.load_or_create(path, self.config.shard_config(), self.storage)

    def save_config(self, placement: Mapping[int, ShardPlacement] | None = None) -> None:
        body: dict[str, Any] = {
            "name": self.name,
            "config": self.config.model_dump(mode="json", exclude_none=True),
            "shards_dir": self.shards_dir,
        }
        if self.created_at is not None:
            body["created_at"] = self.created_at
        if placement is None and self.created_at is None:
            placement = {sid: ShardPlacement({}, rs.shard_key) for sid, rs in self.holder.sets.items()}
        if placement is not None:
            body["shards"] = [[sid, p.shard_key] for sid, p in sorted(placement.items())]
        write_json_atomic(self.path / CONFIG_FILE, body)

    async def close(self) -> None:
        await self.holder.close()

    async def drop(self) -> None:
        await self.close()
        await asyncio.to_thread(shutil.rmtree, self.path, True)

    def local_shards(self) -> dict[int, LocalShard]:
        return self.holder.local_shards()
