"""Reconciling a peer's local metadata with the agreed state: one collection that fails to open
locally (an OSError from its files) must not hold back the others or the aliases (the chaos
metadata campaign saw a peer whose aliases never converged because every reconcile stopped at the
same half-deleted collection directory)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from qcluster.cluster.metadata_sync import MetadataSync
from qcluster.models.collections import CollectionConfig, CollectionParams, VectorParams


class FakeToc:
    def __init__(self) -> None:
        self.collections: dict[str, Any] = {}
        self.aliases: dict[str, str] = {}

    async def create_local(self, name: str, config: CollectionConfig, placement: Any, created_at: Any) -> Any:
        if name == "broken":
            raise FileNotFoundError("storage/collections/broken/segments/0/meta.json")
        col = SimpleNamespace(
            name=name, created_at=created_at, holder=SimpleNamespace(created_fresh=set(), sets={})
        )
        self.collections[name] = col
        return col

    def set_aliases(self, aliases: dict[str, str]) -> None:
        self.aliases = dict(aliases)


def _info() -> Any:
    params = CollectionParams(vectors={"": VectorParams(size=2, distance="Dot")})
    return SimpleNamespace(
        config=CollectionConfig(params=params).model_dump(mode="json"), created_at=1, shards={}
    )


async def test_one_broken_collection_does_not_block_the_rest() -> None:
    toc = FakeToc()
    sync = MetadataSync(toc)  # type: ignore[arg-type]
    state = SimpleNamespace(
        collections={name: _info() for name in ("a", "broken", "c")},
        aliases={"al": "a", "al2": "c"},
    )
    await sync.reconcile(state)  # type: ignore[arg-type]
    assert set(toc.collections) == {"a", "c"}
    assert toc.aliases == {"al": "a", "al2": "c"}
    await sync.close()
