"""Reconciling a peer's local metadata with the agreed state: one collection that fails to open
locally must not hold back the others or the aliases (the chaos metadata campaign saw a peer whose
aliases never converged because every reconcile stopped at the same broken collection)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from qcluster.metadata_sync import MetadataSync
from qcluster.models.collections import CollectionConfig, CollectionParams, VectorParams


class FakeToc:
    def __init__(self) -> None:
        self.collections: dict[str, Any] = {}
        self.aliases: dict[str, str] = {}

    async def create_local(self, name: str, config: CollectionConfig) -> None:
        if name == "broken":
            raise FileNotFoundError("storage/collections/broken/segments/0/meta.json")
        self.collections[name] = config

    def set_aliases(self, aliases: dict[str, str]) -> None:
        self.aliases = dict(aliases)


def _config() -> dict[str, Any]:
    params = CollectionParams(vectors={"": VectorParams(size=2, distance="Dot")})
    return CollectionConfig(params=params).model_dump(mode="json")


async def test_one_broken_collection_does_not_block_the_rest() -> None:
    toc = FakeToc()
    sync = MetadataSync(toc)  # type: ignore[arg-type]
    state = SimpleNamespace(
        collections={name: SimpleNamespace(config=_config()) for name in ("a", "broken", "c")},
        aliases={"al": "a", "al2": "c"},
    )
    with pytest.raises(FileNotFoundError):
        await sync.reconcile(state)  # type: ignore[arg-type]
    assert set(toc.collections) == {"a", "c"}
    assert toc.aliases == {"al": "a", "al2": "c"}
