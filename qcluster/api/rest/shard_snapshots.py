"""Shard snapshot endpoints: ``/collections/{c}/shards/{s}/snapshots`` (create, list, download,
delete, upload, recover) and ``GET /collections/{c}/shards/{s}/snapshot`` (a fresh archive,
streamed). They act on this peer's replica of the shard; a shard this peer holds no replica of is
a 404 naming the peers that do (see :mod:`qcluster.shard_snapshots`)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from aiohttp import web

from qcluster.api.rest import accepted
from qcluster.api.rest.app import CONSENSUS_KEY, TOC_KEY, ok
from qcluster.api.rest.parse import body
from qcluster.api.rest.snapshots import SNAPSHOTS_KEY, fetch_archive, receive_upload, upload_checksum
from qcluster.collection import Collection
from qcluster.models.collections import SnapshotRecoverIn
from qcluster.shard_snapshots import ShardSnapshots, parse_priority
from qcluster.types import parse_decimal

SHARD_SNAPSHOTS_KEY = web.AppKey("shard_snapshots", ShardSnapshots)


def _where(request: web.Request) -> tuple[ShardSnapshots, Collection, int]:
    snaps = request.app[SHARD_SNAPSHOTS_KEY]
    snaps.consensus = request.app[CONSENSUS_KEY].get("service")
    snaps.watchdog = getattr(request.app[CONSENSUS_KEY].get("sync"), "watchdog", None)
    col = request.app[TOC_KEY].get(request.match_info["collection_name"])
    return snaps, col, parse_decimal(request.match_info["shard_id"], "shard_id", "a shard number")


async def create(request: web.Request) -> web.Response:
    snaps, col, sid = _where(request)
    return await accepted.answer(request, lambda: snaps.create(col, sid), "shard snapshot")


async def list_(request: web.Request) -> web.Response:
    snaps, col, sid = _where(request)
    return ok(request, snaps.list(col, sid))


async def download(request: web.Request) -> web.StreamResponse:
    snaps, col, sid = _where(request)
    return web.FileResponse(snaps.path(col, sid, request.match_info["snapshot_name"]))


async def delete(request: web.Request) -> web.Response:
    snaps, col, sid = _where(request)
    snaps.delete(col, sid, request.match_info["snapshot_name"])
    return accepted.done(request, True)


async def stream(request: web.Request) -> web.StreamResponse:
    """A fresh archive of the replica, streamed and not kept."""
    snaps, col, sid = _where(request)
    root = request.app[SNAPSHOTS_KEY].root
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=".stream-") as tmp:
        archive = await snaps.stream_to_file(col, sid, Path(tmp))
        response = web.StreamResponse(
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Disposition": f'attachment; filename="{archive.name}"',
                "Content-Length": str(archive.stat().st_size),
            }
        )
        await response.prepare(request)
        with open(archive, "rb") as fh:
            while chunk := fh.read(1 << 20):
                await response.write(chunk)
        await response.write_eof()
        return response


async def recover(request: web.Request) -> web.Response:
    snaps, col, sid = _where(request)
    req = await body(request, SnapshotRecoverIn)
    root = request.app[SNAPSHOTS_KEY].root
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=".fetch-") as tmp:
        archive = await fetch_archive(req.location, Path(tmp), root, req.api_key)
        await snaps.recover(col, sid, archive, req.priority, req.checksum)
    return ok(request, True)


async def upload(request: web.Request) -> web.Response:
    checksum = upload_checksum(request)
    snaps, col, sid = _where(request)
    priority = parse_priority(request.query.get("priority"))
    root = request.app[SNAPSHOTS_KEY].root
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=".upload-") as tmp:
        archive = await receive_upload(request, Path(tmp))
        await snaps.recover(col, sid, archive, priority, checksum)
    return ok(request, True)


def register(app: web.Application) -> None:
    app[SHARD_SNAPSHOTS_KEY] = ShardSnapshots(app[SNAPSHOTS_KEY])
    r = app.router
    base = "/collections/{collection_name}/shards/{shard_id}"
    r.add_get(base + "/snapshot", stream)
    r.add_post(base + "/snapshots", create)
    r.add_get(base + "/snapshots", list_)
    r.add_post(base + "/snapshots/upload", upload)
    r.add_put(base + "/snapshots/recover", recover)
    r.add_get(base + "/snapshots/{snapshot_name}", download)
    r.add_delete(base + "/snapshots/{snapshot_name}", delete)
