"""Snapshot listing and deletion shared by the REST and gRPC surfaces (a collection is named by its
name or an alias; its snapshots live under its real name)."""

from __future__ import annotations

from typing import Any

from qcluster.snapshots import Snapshots
from qcluster.toc import TableOfContents


def list_collection(toc: TableOfContents, snaps: Snapshots, collection: str) -> list[dict[str, Any]]:
    return snaps.list(snaps.collection_dir(toc.get(collection).name))


def delete_collection(toc: TableOfContents, snaps: Snapshots, collection: str, snapshot: str) -> None:
    snaps.delete(snaps.collection_dir(toc.get(collection).name), snapshot)


def list_full(snaps: Snapshots) -> list[dict[str, Any]]:
    return snaps.list(snaps.full_dir())


def delete_full(snaps: Snapshots, snapshot: str) -> None:
    snaps.delete(snaps.full_dir(), snapshot)
