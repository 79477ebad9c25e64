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


async def create_shard_key(request: web.Request) -> web.Response:
    req = await body(request, CreateShardKeyIn)
    col = request.app[TOC_KEY].get(request.match_info["collection_name"])
    bounds = limits(request)
    number = req.shards_number or col.config.params.shard_number
    total = len(col.holder.sets) + number  # every key's shards count toward the collection's
    refuse_above("shards_number", "the collection's number of shards", total, "max_shard_number", bounds)
    if req.replication_factor is not None:
        refuse_above(
            "replication_factor",
            "replication_factor",
            req.replication_factor,
            "max_replication_factor",
            bounds,
        )
    if req.placement is not None:
        refuse_above("placement", "number of peers", len(req.placement), "max_replication_factor", bounds)
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
