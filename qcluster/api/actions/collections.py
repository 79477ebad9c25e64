"""Collection operations shared by the REST and gRPC surfaces: create, update, aliases, named
vectors. ``timeout`` (seconds) bounds the consensus round in cluster mode."""

from __future__ import annotations

from qcluster.collection import Collection
from qcluster.errors import BadInputError, UnprocessableInputError
from qcluster.models.collections import (
    ChangeAliasesIn,
    CreateCollection,
    UpdateCollection,
    VectorNameConfigIn,
    config_after_update,
    config_from_create,
)
from qcluster.models.config import VectorParams
from qcluster.toc import TableOfContents


async def create(toc: TableOfContents, name: str, req: CreateCollection, timeout: float | None) -> None:
    if isinstance(req.vectors, dict) and not req.vectors:
        raise UnprocessableInputError("[vectors: at least one vector must be configured]", "vectors")
    config = config_from_create(req, default_shards=toc.default_shard_number(), defaults=toc.defaults())
    await toc.create(name, config, timeout)


async def update(toc: TableOfContents, name: str, req: UpdateCollection, timeout: float | None) -> None:
    col = toc.get(name)
    await toc.update_config(col.name, config_after_update(col.config, req), timeout)


async def change_aliases(toc: TableOfContents, req: ChangeAliasesIn, timeout: float | None) -> None:
    await toc.change_aliases(req.actions, timeout)


def aliases(toc: TableOfContents, collection: str | None = None) -> list[tuple[str, str]]:
    """``(alias, collection)`` pairs in alias order: all, or those of one collection (by name or
    by alias)."""
    target = None if collection is None else toc.get(collection).name
    return [(a, c) for a, c in sorted(toc.aliases.items()) if target is None or c == target]


async def create_vector(col: Collection, name: str, req: VectorNameConfigIn) -> None:
    """Add a named vector to an existing collection; existing points do not have it."""
    if req.sparse is not None:
        raise BadInputError("sparse vectors are not supported by qcluster", "sparse")
    if req.dense is None:
        raise BadInputError('expected {"dense": {"size", "distance"}}', "dense")
    params = VectorParams(size=req.dense.size, distance=req.dense.distance, datatype=req.dense.datatype)
    await col.create_vector(name, params)
