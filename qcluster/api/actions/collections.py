"""Collection operations shared by the REST and gRPC surfaces: create, update, aliases, named
vectors. ``timeout`` (seconds) bounds the consensus round in cluster mode; ``bounds`` are the
request's ``service.limits`` (a config or shard key above them is a 400 naming the field)."""

from __future__ import annotations

from qcluster.api.actions.bounds import check_collection_count, check_config_bounds, check_new_shard_key
from qcluster.collection.read_scope import parse_shard_keys
from qcluster.errors import BadInputError, UnprocessableInputError
from qcluster.models.collections import (
    ChangeAliasesIn,
    CreateCollection,
    UpdateCollection,
    VectorNameConfigIn,
    config_after_update,
    config_from_create,
    with_vector,
)
from qcluster.models.config import SparseVectorParams, VectorParams
from qcluster.settings import LimitsSettings
from qcluster.toc import TableOfContents
from qcluster.types import ShardKey


async def create(
    toc: TableOfContents, name: str, req: CreateCollection, timeout: float | None, bounds: LimitsSettings
) -> None:
    if isinstance(req.vectors, dict) and not req.vectors and not req.sparse_vectors:
        raise UnprocessableInputError("[vectors: at least one vector must be configured]", "vectors")
    dense_names = set(req.vectors) if isinstance(req.vectors, dict) else {""}
    for sparse_name in req.sparse_vectors or {}:
        if not sparse_name:
            raise UnprocessableInputError(
                "[sparse_vectors: Sparse vector name cannot be empty]", "sparse_vectors"
            )
        if sparse_name in dense_names:
            raise UnprocessableInputError(
                "[sparse_vectors: Dense and sparse vector names must be unique - duplicate found with "
                f"'{sparse_name}']",
                "sparse_vectors",
            )
    config = config_from_create(req, default_shards=toc.default_shard_number(), defaults=toc.defaults())
    check_config_bounds(config, bounds)
    check_collection_count(toc, name)
    await toc.create(name, config, timeout)


async def update(
    toc: TableOfContents, name: str, req: UpdateCollection, timeout: float | None, bounds: LimitsSettings
) -> None:
    col = toc.get(name)
    config = config_after_update(col.config, req)
    check_config_bounds(config, bounds, col.config)
    await toc.update_config(col.name, config, timeout)


async def change_aliases(toc: TableOfContents, req: ChangeAliasesIn, timeout: float | None) -> None:
    await toc.change_aliases(req.actions, timeout)


def aliases(toc: TableOfContents, collection: str | None = None) -> list[tuple[str, str]]:
    """``(alias, collection)`` pairs in alias order: all, or those of one collection (by name or
    by alias)."""
    target = None if collection is None else toc.get(collection).name
    return [(a, c) for a, c in sorted(toc.aliases.items()) if target is None or c == target]


async def create_vector(
    toc: TableOfContents,
    collection: str,
    name: str,
    req: VectorNameConfigIn,
    timeout: float | None,
    bounds: LimitsSettings,
) -> None:
    """Add a named vector to an existing collection; existing points do not have it. A rebuild of
    every replica, agreed through consensus in cluster mode."""
    col = toc.get(collection)
    params: VectorParams | SparseVectorParams
    if req.sparse is not None:
        params = req.sparse
    elif req.dense is not None:
        params = VectorParams(size=req.dense.size, distance=req.dense.distance, datatype=req.dense.datatype)
    else:
        raise BadInputError('expected {"dense": {"size", "distance"}} or {"sparse": {}}', "dense")
    check_config_bounds(with_vector(col.config, name, params), bounds, col.config)
    await toc.change_vectors(col.name, name, params, timeout)


async def delete_vector(toc: TableOfContents, collection: str, name: str, timeout: float | None) -> None:
    await toc.change_vectors(toc.get(collection).name, name, None, timeout)


# ------------------------------------------------------------------------------ shard keys
def one_shard_key(raw: object) -> ShardKey:
    keys = parse_shard_keys(raw)
    if keys is None or len(keys) != 1:
        raise BadInputError(
            "shard_key: expected one shard key (a string or an unsigned integer)", "shard_key"
        )
    return keys[0]


async def create_shard_key(
    toc: TableOfContents,
    collection: str,
    raw_key: object,
    shards_number: int | None,
    replication_factor: int | None,
    timeout: float | None,
    bounds: LimitsSettings,
    placement: list[int] | None = None,
) -> None:
    key = one_shard_key(raw_key)
    check_new_shard_key(toc.get(collection), bounds, shards_number, replication_factor, placement)
    await toc.create_shard_key(collection, key, shards_number, replication_factor, timeout)


async def delete_shard_key(
    toc: TableOfContents, collection: str, raw_key: object, timeout: float | None
) -> None:
    await toc.delete_shard_key(collection, one_shard_key(raw_key), timeout)


def shard_keys(toc: TableOfContents, collection: str) -> list[ShardKey] | None:
    """The shard keys of a collection with custom sharding; None for automatic sharding."""
    col = toc.get(collection)
    if col.config.params.sharding_method != "custom":
        return None
    return list(col.holder.shard_keys())
