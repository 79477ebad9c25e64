"""Collection and full snapshot endpoints: create, list, download, delete, upload, recover."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlparse

import aiohttp
from aiohttp import web

from qcluster.api.actions import snapshots as actions
from qcluster.api.rest import accepted
from qcluster.api.rest.app import CONSENSUS_KEY, SETTINGS_KEY, TOC_KEY, ok
from qcluster.api.rest.parse import body
from qcluster.errors import BadInputError, BadRequestError, ForbiddenError, UnprocessableInputError
from qcluster.models.collections import SnapshotRecoverIn
from qcluster.shard_snapshots import Priority, ShardSnapshots, parse_priority
from qcluster.snapshots import Snapshots

SNAPSHOTS_KEY = web.AppKey("snapshots", Snapshots)
SHA256 = re.compile(r"[0-9a-fA-F]{64}")


def _snaps(request: web.Request) -> Snapshots:
    return request.app[SNAPSHOTS_KEY]


def _col_name(request: web.Request) -> str:
    return request.match_info["collection_name"]


async def create(request: web.Request) -> web.Response:
    name = _col_name(request)
    request.app[TOC_KEY].get(name)  # (a missing collection is a 404 now, not a failed task later)
    return await accepted.answer(
        request, lambda: _snaps(request).create_collection_snapshot(name), "collection snapshot"
    )


async def list_(request: web.Request) -> web.Response:
    return ok(request, actions.list_collection(request.app[TOC_KEY], _snaps(request), _col_name(request)))


async def download(request: web.Request) -> web.StreamResponse:
    col = request.app[TOC_KEY].get(_col_name(request))
    snaps = _snaps(request)
    return web.FileResponse(
        snaps.path_of(snaps.collection_dir(col.name), request.match_info["snapshot_name"])
    )


async def delete(request: web.Request) -> web.Response:
    snapshot = request.match_info["snapshot_name"]
    actions.delete_collection(request.app[TOC_KEY], _snaps(request), _col_name(request), snapshot)
    return accepted.done(request, True)


async def fetch_archive(location: str, into: Path, root: Path, api_key: str | None = None) -> Path:
    """The archive at an http(s) URL (downloaded into ``into``) or a file:// path, which must be
    absolute (or on localhost) and inside the snapshots directory ``root``: a client names
    archives there, never any file the peer can read (403 otherwise, as Qdrant)."""
    parsed = urlparse(location)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise BadRequestError(
                "Invalid snapshot URI, file path must be absolute or on localhost", "location"
            )
        named = Path(unquote(parsed.path))
        if not named.is_file():  # (checked first, in Qdrant's order)
            raise BadRequestError(f'Snapshot file "{named}" does not exist', "location")
        path = named.resolve()
        if not path.is_relative_to(root.resolve()):
            raise ForbiddenError(
                f"Forbidden: Snapshot file path must be inside the snapshots directory ({root})"
            )
        return path
    if parsed.scheme not in ("http", "https"):
        raise BadInputError("location: expected an http(s):// URL or a file:// path", "location")
    target = into / "download.snapshot"
    try:
        headers = {"api-key": api_key} if api_key else {}
        async with aiohttp.ClientSession() as session, session.get(location, headers=headers) as resp:
            if resp.status != 200:
                raise BadInputError(f"downloading {location} failed with HTTP {resp.status}", "location")
            with open(target, "wb") as fh:
                async for chunk in resp.content.iter_chunked(1 << 20):
                    fh.write(chunk)
    except aiohttp.ClientError as exc:
        raise BadInputError(f"downloading {location} failed: {exc}", "location") from exc
    return target


async def recover(request: web.Request) -> web.Response:
    """Replace (or create) the collection from a snapshot at an http(s) URL or a file:// path;
    with ``checksum`` (sha256) a mismatching archive is refused and nothing changes."""
    req = await body(request, SnapshotRecoverIn)
    snaps = _snaps(request)
    snaps.root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=snaps.root, prefix=".fetch-") as tmp:
        archive = await fetch_archive(req.location, Path(tmp), snaps.root, req.api_key)
        await _recover(request, archive, req.priority, req.checksum)
    return ok(request, True)


async def _recover(
    request: web.Request, archive: Path, priority: Priority | None, checksum: str | None
) -> None:
    consensus = request.app[CONSENSUS_KEY].get("service")
    if consensus is None:
        await _snaps(request).recover_collection(_col_name(request), archive, checksum)
        return
    sync = request.app[CONSENSUS_KEY].get("sync")
    shards = ShardSnapshots(_snaps(request), consensus, getattr(sync, "watchdog", None))
    await shards.recover_collection(request.app[TOC_KEY], _col_name(request), archive, priority, checksum)


async def receive_upload(request: web.Request, into: Path) -> Path:
    """The ``snapshot`` file of a multipart/form-data body, written into ``into``."""
    try:
        reader = await request.multipart()
    except (AssertionError, ValueError) as exc:
        raise BadInputError(
            f"expected a multipart/form-data body with a `snapshot` file: {exc}", "snapshot"
        ) from exc
    target = into / "upload.snapshot"
    found = False
    while True:
        part = await reader.next()
        if part is None:
            break
        if isinstance(part, aiohttp.BodyPartReader) and part.name == "snapshot":
            with open(target, "wb") as fh:
                while chunk := await part.read_chunk(1 << 20):
                    fh.write(chunk)
            found = True
    if not found:
        raise BadInputError("expected a `snapshot` file field in the multipart body", "snapshot")
    return target


def upload_checksum(request: web.Request) -> str | None:
    """The ``checksum`` query parameter of an upload, checked before the body is read."""
    checksum = request.query.get("checksum")
    if checksum is not None and not SHA256.fullmatch(checksum):
        raise UnprocessableInputError(
            f"[checksum: invalid_sha256_hash: expected 64 hexadecimal digits, got {checksum!r}]", "checksum"
        )
    return checksum


async def upload(request: web.Request) -> web.Response:
    checksum = upload_checksum(request)
    snaps = _snaps(request)
    snaps.root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=snaps.root, prefix=".upload-") as tmp:
        target = await receive_upload(request, Path(tmp))
        await _recover(request, target, parse_priority(request.query.get("priority")), checksum)
    return ok(request, True)


async def create_full(request: web.Request) -> web.Response:
    return await accepted.answer(request, _snaps(request).create_full_snapshot, "full snapshot")


async def list_full(request: web.Request) -> web.Response:
    return ok(request, actions.list_full(_snaps(request)))


async def download_full(request: web.Request) -> web.StreamResponse:
    snaps = _snaps(request)
    return web.FileResponse(snaps.path_of(snaps.full_dir(), request.match_info["snapshot_name"]))


async def delete_full(request: web.Request) -> web.Response:
    actions.delete_full(_snaps(request), request.match_info["snapshot_name"])
    return accepted.done(request, True)


def register(app: web.Application) -> None:
    app[SNAPSHOTS_KEY] = Snapshots(app[TOC_KEY], Path(app[SETTINGS_KEY].storage.snapshots_path))
    r = app.router
    base = "/collections/{collection_name}/snapshots"
    r.add_post(base, create)
    r.add_get(base, list_)
    r.add_post(base + "/upload", upload)
    r.add_put(base + "/recover", recover)
    r.add_get(base + "/{snapshot_name}", download)
    r.add_delete(base + "/{snapshot_name}", delete)
    r.add_post("/snapshots", create_full)
    r.add_get("/snapshots", list_full)
    r.add_get("/snapshots/{snapshot_name}", download_full)
    r.add_delete("/snapshots/{snapshot_name}", delete_full)
