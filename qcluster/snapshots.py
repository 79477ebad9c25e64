"""Collection and full snapshots: one tar archive each, with a sha256 checksum file beside it.

A collection snapshot holds ``config.json`` and ``shards/<id>.tar`` (each a LocalShard archive).
A full snapshot holds ``aliases.json`` and one collection snapshot per collection.
Archives are unpacked with tarfile's "data" filter (no absolute paths, links out, devices).
Recovery builds the new collection beside the old one and swaps it in only once it opened, so a
bad archive never destroys the collection it was meant to replace.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import shutil
import tarfile
import tempfile
import uuid
from pathlib import Path
from typing import Any

import orjson

from qcluster.collection import Collection
from qcluster.errors import BadInputError, NotFoundError
from qcluster.logging import get_logger
from qcluster.models.collections import CollectionConfig
from qcluster.shards.local_shard import LocalShard
from qcluster.toc import TableOfContents

log = get_logger(__name__)
SUFFIX = ".snapshot"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def describe(path: Path) -> dict[str, Any]:
    checksum_file = path.with_name(path.name + ".checksum")
    stat = path.stat()
    return {
        "name": path.name,
        "creation_time": dt.datetime.fromtimestamp(stat.st_mtime, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        "size": stat.st_size,
        "checksum": checksum_file.read_text().strip() if checksum_file.exists() else None,
    }


def _stamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d-%H-%M-%S")


def _finish(tmp: Path, target: Path) -> dict[str, Any]:
    digest = sha256_file(tmp)
    tmp.replace(target)
    target.with_name(target.name + ".checksum").write_text(digest)
    return describe(target)


class Snapshots:
    def __init__(self, toc: TableOfContents, root: Path):
        self.toc = toc
        self.root = root

    def collection_dir(self, name: str) -> Path:
        return self.root / name

    def full_dir(self) -> Path:
        return self.root / "full"

    # ------------------------------------------------------------------ create
    async def _pack_collection(self, col: Collection, target: Path) -> None:
        work = Path(tempfile.mkdtemp(dir=self.root, prefix=".pack-"))
        try:
            local = col.local_shards()
            keys = {sid: rs.shard_key for sid, rs in col.holder.sets.items()}
            (work / "config.json").write_bytes(
                orjson.dumps(
                    {
                        "name": col.name,
                        "config": col.config.model_dump(mode="json", exclude_none=True),
                        "shards": [[sid, keys.get(sid)] for sid in sorted(local)],
                    }
                )
            )
            for sid, shard in local.items():
                await shard.create_snapshot(work / "shards" / f"{sid}.tar")

            def pack() -> None:
                with tarfile.open(target, "w") as tar:
                    tar.add(work / "config.json", arcname="config.json")
                    for sid in sorted(local):
                        tar.add(work / "shards" / f"{sid}.tar", arcname=f"shards/{sid}.tar")

            await asyncio.to_thread(pack)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    async def create_collection_snapshot(self, name: str) -> dict[str, Any]:
        col = self.toc.get(name)
        folder = self.collection_dir(col.name)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{col.name}-{_stamp()}-{uuid.uuid4().hex[:8]}{SUFFIX}"
        tmp = target.with_name(target.name + ".tmp")
        await self._pack_collection(col, tmp)
        info = await asyncio.to_thread(_finish, tmp, target)
        log.info("collection snapshot created", collection=col.name, snapshot=target.name, size=info["size"])
        return info

    async def create_full_snapshot(self) -> dict[str, Any]:
        if not self.toc.collections:
            # Qdrant answers "ok" with an archive that restores nothing; say so instead.
            raise BadInputError("there are no collections on this peer: a full snapshot would be empty")
        folder = self.full_dir()
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"full-snapshot-{_stamp()}-{uuid.uuid4().hex[:8]}{SUFFIX}"
        tmp = target.with_name(target.name + ".tmp")
        work = Path(tempfile.mkdtemp(dir=self.root, prefix=".pack-"))
        try:
            names = sorted(self.toc.collections)
            for name in names:
                await self._pack_collection(self.toc.collections[name], work / f"{name}{SUFFIX}")
            (work / "aliases.json").write_bytes(orjson.dumps(self.toc.aliases))

            def pack() -> None:
                with tarfile.open(tmp, "w") as tar:
                    tar.add(work / "aliases.json", arcname="aliases.json")
                    for name in names:
                        tar.add(work / f"{name}{SUFFIX}", arcname=f"collections/{name}{SUFFIX}")

            await asyncio.to_thread(pack)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return await asyncio.to_thread(_finish, tmp, target)

    # ------------------------------------------------------------------ list / get / delete
    def list(self, folder: Path) -> list[dict[str, Any]]:
        if not folder.exists():
            return []
        return [describe(p) for p in sorted(folder.glob(f"*{SUFFIX}"))]

    def path_of(self, folder: Path, snapshot: str) -> Path:
        if "/" in snapshot or snapshot.startswith(".") or not snapshot.endswith(SUFFIX):
            raise NotFoundError(f"Snapshot {snapshot} not found")
        path = folder / snapshot
        if not path.exists():
            raise NotFoundError(f"Snapshot {snapshot} not found")
        return path

    def delete(self, folder: Path, snapshot: str) -> None:
        path = self.path_of(folder, snapshot)
        path.unlink()
        path.with_name(path.name + ".checksum").unlink(missing_ok=True)

    # ------------------------------------------------------------------ recover
    async def unpack_collection(
        self, archive: Path, staging: Path, checksum: str | None
    ) -> tuple[CollectionConfig, tuple[tuple[int, Any], ...], Path]:
        """Check and unpack a collection archive into ``staging``: (config, [(shard id, shard
        key)], the folder holding ``<shard id>.tar``). 400 naming what is wrong with it."""
        if checksum is not None:
            actual = await asyncio.to_thread(sha256_file, archive)
            if actual != checksum.lower():
                raise BadInputError(
                    f"Snapshot checksum mismatch: expected {checksum}, got {actual}", "checksum"
                )

        def unpack() -> dict[str, Any]:
            try:
                with tarfile.open(archive, "r") as tar:
                    tar.extractall(staging / "archive", filter="data")
            except (tarfile.TarError, OSError) as exc:
                raise BadInputError(f"not a valid collection snapshot: {exc}", "snapshot") from exc
            cfg_file = staging / "archive" / "config.json"
            if not cfg_file.exists():
                raise BadInputError("not a valid collection snapshot: it holds no config.json", "snapshot")
            raw: dict[str, Any] = orjson.loads(cfg_file.read_bytes())
            return raw

        raw = await asyncio.to_thread(unpack)
        config = CollectionConfig.model_validate(raw["config"])
        shards = raw.get("shards")
        if shards is None:  # archives made before shards had ids of their own
            shards = [[sid, None] for sid in range(config.params.shard_number)]
        folder = staging / "archive" / "shards"
        for sid, _key in shards:
            if not (folder / f"{int(sid)}.tar").exists():
                raise BadInputError(f"not a valid collection snapshot: shard {sid} is missing", "snapshot")
        return config, tuple((int(sid), key) for sid, key in shards), folder

    async def recover_collection(self, name: str, archive: Path, checksum: str | None) -> None:
        """Replace (or create) collection ``name`` from a collection snapshot archive (one peer;
        in a cluster see :meth:`ShardSnapshots.recover_collection`)."""
        staging = Path(tempfile.mkdtemp(dir=self.root, prefix=".restore-"))
        try:
            config, shards, folder = await self.unpack_collection(archive, staging, checksum)
            col_dir = staging / "collection"
            col_dir.mkdir()
            (col_dir / "config.json").write_bytes(
                orjson.dumps(
                    {
                        "name": name,
                        "config": config.model_dump(mode="json", exclude_none=True),
                        "shards": [[sid, key] for sid, key in shards],
                    }
                )
            )
            for sid, _key in shards:
                await LocalShard.restore_snapshot(folder / f"{sid}.tar", col_dir / "shards" / str(sid))
            await self.toc.replace_collection(name, col_dir)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        log.info("collection recovered from snapshot", collection=name, archive=archive.name)
