"""Payload indexes of sealed segments are saved with them and loaded on restart, not rebuilt from
payloads; files that no longer match the payloads (changed since, damaged, half written) are
ignored and the index is rebuilt, so filters stay exact across restarts and crashes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from qcluster.shards.base import CountRequest
from qcluster.shards.local_shard import LocalShard
from qcluster.shards.operations import CreateFieldIndex, DeletePoints, PointSelector, SetPayload
from qcluster.shards.payload_index import FieldIndex

from .conftest import clustered, shard_config, storage, upsert_op, wait_optimized

N = 3000


def _payload(i: int) -> dict[str, Any]:
    return {
        "color": ["red", "green", "blue"][i % 3],
        "n": i % 100,
        "x": (i % 37) / 37.0,
        "tags": ["a", "b"] if i % 5 == 0 else "c",
    }


FILTERS = [
    {"must": [{"key": "color", "match": {"value": "red"}}]},
    {"must": [{"key": "n", "range": {"gte": 10, "lt": 20}}]},
    {"must": [{"key": "x", "range": {"lt": 0.25}}, {"key": "tags", "match": {"any": ["a"]}}]},
    {
        "must": [{"key": "n", "match": {"any": [1, 2, 3]}}],
        "must_not": [{"key": "color", "match": {"value": "blue"}}],
    },
]


async def _counts(shard: LocalShard) -> list[int]:
    return [await shard.count(CountRequest(filter=f)) for f in FILTERS]


async def _build(path: Path) -> list[int]:
    shard = await LocalShard.load_or_create(path, shard_config(8, indexing_threshold=1), storage())
    for key, schema in (("color", "keyword"), ("n", "integer"), ("x", "float"), ("tags", "keyword")):
        await shard.update(CreateFieldIndex(key, schema))
    await shard.update(upsert_op(list(range(N)), clustered(N, 8, seed=2), [_payload(i) for i in range(N)]))
    await wait_optimized(shard)
    counts = await _counts(shard)
    await shard.close()
    return counts


class _AddCounter:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        original = FieldIndex._add

        def counting(index: FieldIndex, offset: int, payload: dict[str, Any] | None) -> None:
            self.calls += 1
            original(index, offset, payload)

        monkeypatch.setattr(FieldIndex, "_add", counting)


async def test_sealed_payload_indexes_load_instead_of_rebuilding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "s"
    want = await _build(path)
    assert list((path / "segments").rglob("field-*.npz"))
    adds = _AddCounter(monkeypatch)
    shard = await LocalShard.load_or_create(path, shard_config(8, indexing_threshold=1), storage())
    try:
        assert adds.calls == 0  # every point is in a sealed segment: nothing rebuilt
        assert await _counts(shard) == want
        assert sum(want) > 0
    finally:
        await shard.close()


async def test_changed_or_damaged_index_files_are_rebuilt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "s"
    await _build(path)
    shard = await LocalShard.load_or_create(path, shard_config(8, indexing_threshold=1), storage())
    # changes to sealed points, then a crash before any flush: the WAL holds them
    await shard.update(SetPayload(PointSelector(ids=tuple(range(0, 300, 3))), {"color": "blue"}))
    await shard.update(DeletePoints(PointSelector(ids=tuple(range(1, 60)))))
    want = await _counts(shard)
    await shard.abandon()
    damaged = sorted((path / "segments").rglob("field-*.npz"))[0]
    damaged.write_bytes(b"not an index")
    (damaged.parent / (damaged.name + ".tmp")).write_bytes(b"half")
    adds = _AddCounter(monkeypatch)
    shard = await LocalShard.load_or_create(path, shard_config(8, indexing_threshold=1), storage())
    try:
        assert await _counts(shard) == want
        assert adds.calls > 0  # the damaged index rebuilt from payloads, the WAL replayed onto the rest
        await shard.flush()
    finally:
        await shard.close()
    adds.calls = 0
    shard = await LocalShard.load_or_create(path, shard_config(8, indexing_threshold=1), storage())
    try:
        assert await _counts(shard) == want
        assert adds.calls == 0  # saved again after the rebuild
        assert np.sum(want) > 0
    finally:
        await shard.close()
