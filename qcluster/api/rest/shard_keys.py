"""Shard keys of collections with custom sharding: create, delete, list."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import Field

from qcluster.api.rest.app import TOC_KEY, ok
from qcluster.api.rest.parse import body, limits, query_int
from qcluster.collection.read_scope import parse_shard_keys
from qcluster.errors import BadInputError
from qcluster.models.bounds import refuse_above
from qcluster.models.common import Req
from qcluster.types import ShardKey


class CreateShardKeyIn(Req):
    shard_key: Any
    shards_number: int | None = Field(None, ge=1)
    replication_factor: int | None = Field(None, ge=1)
    placement: list[int] | None = None


class DropShardKeyIn(Req):
    shard_key: Any


def _one_key(raw: object) -> ShardKey:
    keys = parse_shard_keys(raw)
    if keys is None or len(keys) != 1:
        raise BadInputError(
            "shard_key: expected one shard key (a string or an unsigned integer)", "shard_key"
        )
    return keys[0]


def _timeout(request: web.Request) -> float | None:
    value = query_int(request, "timeout", minimum=1)
    return float(value) if value is not None else None


def refuse_new_key_above_bounds(
    request: web.Request,
    shards_number: int | None,
    replication_factor: int | None,
    placement: list[int] | None = None,
    field: str = "",
) -> None:
    """A new shard key's shards count toward the collection's ``max_shard_number`` (every key's
    do), its replication factor and placement toward ``max_replication_factor``; ``field``
    prefixes the names in the message (``create_sharding_key.``)."""
    col = request.app[TOC_KEY].get(request.match_info["collection_name"])
    bounds = limits(request)
    total = len(col.holder.sets) + (shards_number or col.config.params.shard_number)
    what = "the collection's number of shards"
    refuse_above(f"{field}shards_number", what, total, "max_shard_number", bounds)
    if replication_factor is not None:
        name = f"{field}replication_factor"
        refuse_above(name, "replication_factor", replication_factor, "max_replication_factor", bounds)
    if placement is not None:
        name = f"{field}placement"
        refuse_above(name, "number of peers", len(placement), "max_replication_factor", bounds)


async def create_shard_key(request: web.Request) -> web.Response:
    req = await body(request, CreateShardKeyIn)
    refuse_new_key_above_bounds(request, req.shards_number, req.replication_factor, req.placement)
    await request.app[TOC_KEY].create_shard_key(
        request.match_info["collection_name"],
        _one_key(req.shard_key),
        req.shards_number,
        req.replication_factor,
        _timeout(request),
    )
    return ok(request, True)


async def delete_shard_key(request: web.Request) -> web.Response:
    req = await body(request, DropShardKeyIn)
    await request.app[TOC_KEY].delete_shard_key(
        request.match_info["collection_name"], _one_key(req.shard_key), _timeout(request)
    )
    return ok(request, True)


async def list_shard_keys(request: web.Request) -> web.Response:
    col = request.app[TOC_KEY].get(request.match_info["collection_name"])
    if col.config.params.sharding_method != "custom":
        return ok(request, {"shard_keys": None})
    return ok(request, {"shard_keys": [{"key": k} for k in col.holder.shard_keys()]})


def register(app: web.Application) -> None:
    r = app.router
    r.add_put("/collections/{collection_name}/shards", create_shard_key)
    r.add_get("/collections/{collection_name}/shards", list_shard_keys)
    r.add_post("/collections/{collection_name}/shards/delete", delete_shard_key)
