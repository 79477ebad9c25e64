"""Shard keys of collections with custom sharding: create, delete, list."""

from __future__ import annotations

from aiohttp import web

from qcluster.api.actions import collections as actions
from qcluster.api.rest.app import TOC_KEY, ok
from qcluster.api.rest.parse import body, limits, query_int
from qcluster.models.collections import CreateShardKeyIn, DropShardKeyIn


def _timeout(request: web.Request) -> float | None:
    value = query_int(request, "timeout", minimum=1)
    return float(value) if value is not None else None


async def create_shard_key(request: web.Request) -> web.Response:
    req = await body(request, CreateShardKeyIn)
    await actions.create_shard_key(
        request.app[TOC_KEY],
        request.match_info["collection_name"],
        req.shard_key,
        req.shards_number,
        req.replication_factor,
        _timeout(request),
        limits(request),
        req.placement,
    )
    return ok(request, True)


async def delete_shard_key(request: web.Request) -> web.Response:
    req = await body(request, DropShardKeyIn)
    await actions.delete_shard_key(
        request.app[TOC_KEY], request.match_info["collection_name"], req.shard_key, _timeout(request)
    )
    return ok(request, True)


async def list_shard_keys(request: web.Request) -> web.Response:
    keys = actions.shard_keys(request.app[TOC_KEY], request.match_info["collection_name"])
    return ok(request, {"shard_keys": None if keys is None else [{"key": k} for k in keys]})


def register(app: web.Application) -> None:
    r = app.router
    r.add_put("/collections/{collection_name}/shards", create_shard_key)
    r.add_get("/collections/{collection_name}/shards", list_shard_keys)
    r.add_post("/collections/{collection_name}/shards/delete", delete_shard_key)
