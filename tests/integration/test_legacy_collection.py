"""A collection written before the data plane (shards routed by ``hash % n``, a config without a
routing scheme or shard list) opens unchanged and answers as before."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson

from qcluster.models.collections import CollectionConfig, CollectionParams
from qcluster.models.config import VectorParams
from qcluster.settings import StorageSettings, WalSettings
from qcluster.shards.base import ALL_PAYLOAD, CountRequest, ScrollRequest, SearchRequest, VectorSelector
from qcluster.shards.local_shard import LocalShard
from qcluster.shards.routing import split_ids
from qcluster.toc import TableOfContents

from .conftest import clustered, upsert_op


async def test_a_collection_from_before_the_ring_opens_and_answers_identically(tmp_path: Path) -> None:
    storage = StorageSettings(storage_path=str(tmp_path), wal=WalSettings(durability="os"))
    config = CollectionConfig(
        params=CollectionParams(vectors={"": VectorParams(size=8, distance="Dot")}, shard_number=3)
    )
    raw_config = config.model_dump(mode="json", exclude_none=True)
    assert "routing" not in raw_config["params"]
    col_dir = tmp_path / "collections" / "old"
    col_dir.mkdir(parents=True)
    (col_dir / "config.json").write_bytes(orjson.dumps({"name": "old", "config": raw_config}))
    ids = list(range(300))
    data = clustered(300, 8, seed=9)
    for sid, rows in split_ids(ids, 3).items():  # the old routing: hash % shard_number
        shard = await LocalShard.load_or_create(col_dir / "shards" / str(sid), config.shard_config(), storage)
        await shard.update(upsert_op([ids[r] for r in rows], data[rows], [{"i": ids[r]} for r in rows]))
        await shard.close()

    toc = TableOfContents(storage)
    await toc.load()
    try:
        col = toc.get("old")
        assert col.config.params.routing is None and sorted(col.holder.sets) == [0, 1, 2]
        assert await col.count(CountRequest()) == 300
        recs = await col.retrieve(ids, ALL_PAYLOAD, VectorSelector(True))
        assert [r.id for r in recs] == ids
        assert all(r.payload == {"i": r.id} for r in recs)
        assert all(np.allclose(r.vector[""], data[r.id]) for r in recs)  # type: ignore[index]
        page = await col.scroll(ScrollRequest(limit=300))
        assert [r.id for r in page.points] == ids
        hits = (await col.search([SearchRequest(vector=data[5], limit=300)]))[0]
        expected = sorted(ids, key=lambda i: -float(data[i] @ data[5]))
        assert [h.id for h in hits] == expected
        # new writes still route the old way: an existing id is overwritten, not duplicated
        await col.update(upsert_op([5], data[6:7], [{"i": 5, "v": 2}]))
        assert await col.count(CountRequest()) == 300
        assert (await col.retrieve([5], ALL_PAYLOAD, VectorSelector()))[0].payload == {"i": 5, "v": 2}
    finally:
        await toc.close()
