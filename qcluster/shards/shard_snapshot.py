"""A local shard's snapshot archive: one tar of the flushed shard (manifest + segments). The WAL
position it stands for is the manifest's version, its clock map the manifest's clocks."""

from __future__ import annotations

import shutil
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from qcluster.errors import BadInputError
from qcluster.logging import get_logger
from qcluster.shards.local_open import MANIFEST

log = get_logger(__name__)


class _Segment(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def path(self) -> Path: ...


def pack(shard_path: Path, segments: Sequence[_Segment], target: Path, version: int) -> None:
    """Write the archive of a just-flushed shard (on its update thread: writes wait meanwhile)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    with tarfile.open(tmp, "w") as tar:
        tar.add(shard_path / MANIFEST, arcname=MANIFEST)
        for seg in segments:
            tar.add(seg.path, arcname=f"segments/{seg.id}")
    tmp.replace(target)
    log.info("shard snapshot created", path=str(shard_path), target=str(target), version=version)


def unpack(archive: Path, path: Path) -> None:
    """Unpack a shard archive into ``path`` (which must be empty or absent); nothing is left
    behind when the archive is not a shard snapshot."""
    if path.exists() and any(path.iterdir()):
        raise BadInputError(f"cannot restore into non-empty directory {path}")
    path.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive, "r") as tar:
            tar.extractall(path, filter="data")
    except (tarfile.TarError, OSError) as exc:
        shutil.rmtree(path, ignore_errors=True)
        raise BadInputError(f"snapshot archive {archive.name} is not a valid shard snapshot: {exc}") from exc
    if not (path / MANIFEST).exists():
        shutil.rmtree(path, ignore_errors=True)
        raise BadInputError(f"snapshot archive {archive.name} holds no shard manifest")
