"""Table of contents: collection name -> Collection, and aliases. The single entry for API handlers.

Layout under ``storage_path``: ``collections/<name>/`` per collection (its ``config.json`` and
shards) and ``aliases.json``. Collection creation and deletion are serialised by one lock.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qcluster.collection import Collection
from qcluster.errors import (
    AlreadyExistsError,
    BadInputError,
    NotFoundError,
    TransientError,
    UnprocessablePathError,
)
from qcluster.logging import get_logger
from qcluster.models.collections import (
    AliasOperationIn,
    CollectionConfig,
    CreateAliasOp,
    DeleteAliasOp,
)
from qcluster.models.config import (
    HnswConfig,
    OptimizersConfig,
    ShardConfig,
    SparseVectorParams,
    VectorParams,
    WalConfig,
)
from qcluster.settings import StorageSettings
from qcluster.shards.clock import next_epoch
from qcluster.shards.replica_env import ReplicaEnv, SinglePeer
from qcluster.shards.replica_set import ReplicaSet
from qcluster.shards.segment_files import read_json, write_json_atomic
from qcluster.shards.shard_holder import ShardPlacement, local_placement
from qcluster.types import ShardKey

if TYPE_CHECKING:
    from qcluster.cluster.metadata_sync import MetadataSync

log = get_logger(__name__)
CLUSTER_TIMEOUT = 30.0  # seconds a metadata change may take through consensus by default
MAX_NAME = 255
_NAME = re.compile(rf"^[^<>:\"/\\|?*\x00-\x1f]{{1,{MAX_NAME}}}$")


def check_name(name: str, what: str = "collection name") -> None:
    if not _NAME.match(name) or name in (".", ".."):
        raise BadInputError(
            f'{what} `{name}` is not a valid name: no / \\ : * ? " < > | or control characters',
            "collection_name",
        )


class TableOfContents:
    def __init__(self, storage: StorageSettings, env: ReplicaEnv | None = None):
        self.storage = storage
        self.root = Path(storage.storage_path)
        self.env: ReplicaEnv = env or SinglePeer()  # the cluster's data plane replaces it
        self.epoch = 0  # this start's clock epoch (see qcluster.shards.clock), set by load()
        self.collections: dict[str, Collection] = {}
        self.aliases: dict[str, str] = {}
        self.loaded = False  # until then a lookup is "starting up" (503), not "does not exist" (404)
        self._lock = asyncio.Lock()
        self.metadata: MetadataSync | None = None  # set in cluster mode

    @property
    def _collections_dir(self) -> Path:
        return self.root / "collections"

    @property
    def single_peer(self) -> bool:
        return self.metadata is None

    async def load(self) -> None:
        self._collections_dir.mkdir(parents=True, exist_ok=True)
        self.epoch = await asyncio.to_thread(next_epoch, self.root)
        for path in sorted(self._collections_dir.iterdir()):
            if (path / "config.json").exists():
                try:
                    col = await Collection.load(path, self.storage, self.env, self.epoch, self.single_peer)
                except Exception as exc:  # one broken collection must not stop the peer
                    log.error("collection failed to load; it stays offline", path=str(path), error=str(exc))
                    continue
                self.collections[col.name] = col
        aliases = self.root / "aliases.json"
        if aliases.exists():
            self.aliases = dict(read_json(aliases))
        self.loaded = True
        log.info("storage loaded", collections=len(self.collections), aliases=len(self.aliases))

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self.collections.values()))

    # ------------------------------------------------------------------ lookup
    def resolve(self, name: str) -> str:
        return self.aliases.get(name, name)

    def get(self, name: str) -> Collection:
        col = self.collections.get(self.resolve(name))
        if col is None:
            if not self.loaded:
                raise TransientError("this peer is still loading its collections; retry shortly")
            if self.metadata is not None and not self.metadata.caught_up():
                raise TransientError("this peer is catching up with the cluster; retry shortly")
            if len(name) > MAX_NAME:  # no collection can have it: Qdrant refuses it as invalid
                raise UnprocessablePathError(
                    f"[collection_name: must be at most {MAX_NAME} characters, got {len(name)}]",
                    "collection_name",
                )
            raise NotFoundError(f"Collection `{name}` doesn't exist!")
        return col

    def replica_set(self, collection: str, shard_id: int) -> ReplicaSet | None:
        """This peer's replica set of a shard (by the collection's own name), for peer calls."""
        col = self.collections.get(collection)
        return None if col is None else col.holder.sets.get(shard_id)

    def exists(self, name: str) -> bool:
        return self.resolve(name) in self.collections

    def defaults(self) -> ShardConfig:
        """New collections' HNSW / optimizer / WAL settings from the storage settings (the request
        overrides them field by field)."""
        st = self.storage
        hnsw, opt, wal = st.hnsw_index, st.optimizers, st.wal
        return ShardConfig(
            vectors={},
            hnsw_config=HnswConfig(
                m=hnsw.m,
                ef_construct=hnsw.ef_construct,
                full_scan_threshold=hnsw.full_scan_threshold_kb,
                max_indexing_threads=hnsw.max_indexing_threads,
                on_disk=hnsw.on_disk,
                payload_m=hnsw.payload_m,
            ),
            optimizer_config=OptimizersConfig(
                deleted_threshold=opt.deleted_threshold,
                vacuum_min_vector_number=opt.vacuum_min_vector_number,
                default_segment_number=opt.default_segment_number,
                max_segment_size=opt.max_segment_size_kb,
                memmap_threshold=opt.memmap_threshold_kb,
                indexing_threshold=opt.indexing_threshold_kb,
                flush_interval_sec=max(0, int(opt.flush_interval_sec)),
                max_optimization_threads=opt.max_optimization_threads,
            ),
            wal_config=WalConfig(
                wal_capacity_mb=wal.wal_capacity_mb, wal_segments_ahead=wal.wal_segments_ahead
            ),
        )

    # ------------------------------------------------------------------ create / delete
    def default_shard_number(self) -> int:
        return self.metadata.default_shard_number() if self.metadata is not None else 1

    async def create(self, name: str, config: CollectionConfig, timeout: float | None = None) -> Collection:
        """Create a collection: through Raft in cluster mode (returns once every peer holding a
        replica has created it, or raises after ``timeout``), else locally."""
        check_name(name)
        if self.metadata is not None:
            _check_free(name, self.collections, self.aliases)
            await self.metadata.create_collection(name, config, timeout or CLUSTER_TIMEOUT)
            return self.get(name)
        return await self.create_local(name, config)

    async def create_local(
        self,
        name: str,
        config: CollectionConfig,
        placement: Mapping[int, ShardPlacement] | None = None,
        created_at: float | None = None,
    ) -> Collection:
        """Create the collection on this peer: every shard local (a single peer), or this peer's
        part of an agreed ``placement`` (``created_at`` names the agreed incarnation)."""
        check_name(name)
        async with self._lock:
            _check_free(name, self.collections, self.aliases)
            path = self._collections_dir / _dir_name(name)
            if created_at is not None:  # leftovers of an incarnation dropped while this peer was down
                shutil.rmtree(path, ignore_errors=True)
            if placement is None:
                placement = (
                    {}
                    if config.params.sharding_method == "custom"
                    else local_placement(config.params.shard_number, self.env.peer_id)
                )
            col = await Collection.create(
                name, path, config, self.storage, self.env, self.epoch, placement, created_at
            )
            self.collections[name] = col
            log.info("collection created", collection=name, shards=config.params.shard_number)
            return col

    async def update_config(self, name: str, config: CollectionConfig, timeout: float | None = None) -> None:
        """Change a collection's config: through Raft in cluster mode (every peer merges the
        changed keys), else locally."""
        if self.metadata is not None:
            await self.metadata.update_collection(name, config, timeout or CLUSTER_TIMEOUT)
            return
        await self.get(name).schema.update_config(config)

    async def create_shard_key(
        self,
        name: str,
        key: ShardKey,
        shards_number: int | None = None,
        replication_factor: int | None = None,
        timeout: float | None = None,
    ) -> None:
        """A new shard key of a collection with custom sharding: ``shards_number`` new shards
        (default: the collection's ``shard_number``) for points written with that key."""
        col = self.get(name)
        if col.config.params.sharding_method != "custom":
            raise BadInputError(
                f"Collection `{col.name}` uses automatic sharding; shard keys need sharding_method: custom",
                "shard_key",
            )
        if key in col.holder.shard_keys():
            raise AlreadyExistsError(f"Shard key {key} already exists")
        number = shards_number or col.config.params.shard_number
        if self.metadata is not None:
            factor = replication_factor or col.config.params.replication_factor
            await self.metadata.create_shard_key(col.name, key, number, factor, timeout or CLUSTER_TIMEOUT)
            return
        await col.topology.add_shard_key(key, number)

    async def delete_shard_key(self, name: str, key: ShardKey, timeout: float | None = None) -> None:
        col = self.get(name)
        if key not in col.holder.shard_keys():
            raise NotFoundError(f"Shard key {key} not found in collection `{col.name}`")
        if self.metadata is not None:
            await self.metadata.delete_shard_key(col.name, key, timeout or CLUSTER_TIMEOUT)
            return
        await col.topology.drop_shard_key(key)

    async def change_vectors(
        self,
        name: str,
        vector: str,
        params: VectorParams | SparseVectorParams | None,
        timeout: float | None = None,
    ) -> None:
        """Add (``params``) or remove (None) a named vector: a rebuild of every replica, agreed
        through consensus in cluster mode."""
        col = self.get(name)
        if self.metadata is not None:
            config = col.schema.config_with_vector(vector, params)
            await self.metadata.update_collection(col.name, config, timeout or CLUSTER_TIMEOUT)
            return
        if params is None:
            await col.schema.delete_vector(vector)
        else:
            await col.schema.create_vector(vector, params)

    async def delete(self, name: str, timeout: float | None = None) -> bool:
        if self.metadata is not None:
            return await self.metadata.delete_collection(name, timeout or CLUSTER_TIMEOUT)
        return await self.delete_local(name)

    async def delete_local(self, name: str) -> bool:
        async with self._lock:
            col = self.collections.pop(name, None)
            if col is None:
                return False
            await col.drop()
            stale = [a for a, c in self.aliases.items() if c == name]
            for alias in stale:
                del self.aliases[alias]
            if stale:
                self._save_aliases()
            log.info("collection deleted", collection=name)
            return True

    async def replace_collection(self, name: str, prepared_dir: Path) -> Collection:
        """Swap in a collection whose files were prepared in ``prepared_dir`` (snapshot recovery).
        The new copy is opened before the old one is dropped; if it fails to open, nothing changes."""
        check_name(name)
        async with self._lock:
            final = self._collections_dir / _dir_name(name)
            staging = final.with_name(final.name + ".recovering")
            shutil.rmtree(staging, ignore_errors=True)
            shutil.move(str(prepared_dir), staging)
            try:
                probe = await Collection.load(staging, self.storage, self.env, self.epoch, True)
                await probe.close()
            except Exception:
                shutil.rmtree(staging, ignore_errors=True)
                raise
            old = self.collections.pop(name, None)
            if old is not None:
                await old.drop()
            shutil.rmtree(final, ignore_errors=True)
            staging.rename(final)
            col = await Collection.load(final, self.storage, self.env, self.epoch, self.single_peer)
            self.collections[name] = col
            return col

    # ------------------------------------------------------------------ aliases
    def set_aliases(self, aliases: dict[str, str]) -> None:
        self.aliases = dict(aliases)
        self._save_aliases()

    async def change_aliases(self, actions: Sequence[AliasOperationIn], timeout: float | None = None) -> None:
        """Apply alias operations all or nothing, in order, then persist ``aliases.json``;
        in cluster mode propose them through Raft instead (every peer applies them)."""
        if self.metadata is not None:
            await self.metadata.change_aliases(
                alias_actions([a.model_dump() for a in actions]), timeout or CLUSTER_TIMEOUT
            )
            return
        async with self._lock:
            new = dict(self.aliases)
            for action in actions:
                if isinstance(action, CreateAliasOp):
                    alias, target = action.create_alias.alias_name, action.create_alias.collection_name
                    check_name(alias, "alias name")
                    if target not in self.collections:
                        raise NotFoundError(f"Collection `{target}` doesn't exist!")
                    if alias in self.collections:
                        raise AlreadyExistsError(f"Collection `{alias}` already exists!")
                    new[alias] = target
                elif isinstance(action, DeleteAliasOp):
                    alias = action.delete_alias.alias_name
                    if alias not in new:
                        raise NotFoundError(f"Alias {alias} does not exists!")
                    del new[alias]
                else:
                    old, fresh = action.rename_alias.old_alias_name, action.rename_alias.new_alias_name
                    if old not in new:
                        raise NotFoundError(f"Alias {old} does not exists!")
                    check_name(fresh, "alias name")
                    if fresh in self.collections:
                        raise AlreadyExistsError(f"Collection `{fresh}` already exists!")
                    new[fresh] = new.pop(old)
            self.aliases = new
            self._save_aliases()

    def _save_aliases(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.root / "aliases.json", self.aliases)


def alias_actions(actions: list[dict[str, Any]]) -> list[Any]:
    """Qdrant's alias actions -> consensus alias actions (validated, naming the bad action)."""
    from qcluster.consensus.operations import AliasAction, AliasActionKind

    out = []
    for i, action in enumerate(actions):
        body = next(iter(action.values())) if isinstance(action, dict) and len(action) == 1 else None
        if not isinstance(body, dict):
            raise BadInputError("expected one of create_alias, delete_alias, rename_alias", f"actions[{i}]")
        if "create_alias" in action:
            out.append(
                AliasAction(
                    AliasActionKind.CREATE,
                    str(body.get("alias_name")),
                    collection=str(body.get("collection_name")),
                )
            )
        elif "delete_alias" in action:
            out.append(AliasAction(AliasActionKind.DELETE, str(body.get("alias_name"))))
        elif "rename_alias" in action:
            out.append(
                AliasAction(
                    AliasActionKind.RENAME,
                    str(body.get("old_alias_name")),
                    new_alias=str(body.get("new_alias_name")),
                )
            )
        else:
            raise BadInputError(f"unknown alias action {sorted(action)}", f"actions[{i}]")
    return out


def _dir_name(name: str) -> str:
    return name


def _check_free(name: str, collections: Mapping[str, Any], aliases: Mapping[str, str]) -> None:
    """A new collection may not take the name of a collection (409) or of an alias (400)."""
    if name in collections:
        raise AlreadyExistsError(f"Collection `{name}` already exists!")
    if name in aliases:
        raise BadInputError(
            f"Alias with name `{name}` already exists, a collection cannot take its name", "name"
        )
