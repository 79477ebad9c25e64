from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from qcluster.errors import BadInputError, NotFoundError
from qcluster.models.config import ScalarQuantization, ScalarQuantizationConfig, ShardConfig, VectorParams
from qcluster.shards.base import (
    ALL_PAYLOAD,
    ALL_VECTORS,
    NO_PAYLOAD,
    NO_VECTORS,
    CountRequest,
    QuantizationSearchParams,
    ScrollRequest,
    SearchParams,
    SearchRequest,
)
from qcluster.shards.local_shard import LocalShard
from qcluster.shards.operations import (
    ClearPayload,
    DeletePayload,
    DeletePoints,
    DeleteVectors,
    NamedVectors,
    OverwritePayload,
    PointsBatch,
    PointSelector,
    SetPayload,
    UpdateVectors,
    UpsertPoints,
)

from .conftest import clustered, shard_config, storage, upsert_op, wait_optimized


def brute_force(data: np.ndarray, q: np.ndarray, distance: str, k: int) -> tuple[list[int], list[float]]:
    if distance == "Cosine":
        dn = data / np.linalg.norm(data, axis=1, keepdims=True)
        s = dn @ (q / np.linalg.norm(q))
        order = np.argsort(-s)
    elif distance == "Dot":
        s = data @ q
        order = np.argsort(-s)
    elif distance == "Euclid":
        s = np.sqrt(((data - q) ** 2).sum(axis=1))
        order = np.argsort(s)
    else:
        s = np.abs(data - q).sum(axis=1)
        order = np.argsort(s)
    return [int(i) for i in order[:k]], [float(s[i]) for i in order[:k]]


@pytest.mark.parametrize("distance", ["Cosine", "Dot", "Euclid", "Manhattan"])
async def test_distances_match_numpy(tmp_path: Path, distance: str) -> None:
    data = clustered(1500, 16, seed=1)
    shard = await LocalShard.load_or_create(
        tmp_path / "s", shard_config(16, distance, indexing_threshold=40), storage()
    )
    try:
        await shard.update(upsert_op(list(range(1500)), data))
        queries = clustered(20, 16, seed=2)
        # exact search (appendable + exact flag), then through the HNSW index once optimized
        for phase in ("exact", "indexed"):
            if phase == "indexed":
                await wait_optimized(shard)
                info = await shard.info()
                assert info.indexed_vectors_count == 1500
            recall = []
            for q in queries:
                want_ids, want_scores = brute_force(data, q, distance, 10)
                exact = phase == "exact"
                (hits,) = await shard.search(
                    [SearchRequest(vector=q, limit=10, params=SearchParams(exact=exact, hnsw_ef=128))]
                )
                got = [h.id for h in hits]
                if exact:
                    assert got == want_ids
                    assert np.allclose([h.score for h in hits], want_scores, rtol=1e-4, atol=1e-4)
                else:
                    scores = {i: s for i, s in zip(*brute_force(data, q, distance, 1500), strict=True)}
                    assert all(abs(scores[h.id] - h.score) < 1e-3 * max(1, abs(h.score)) for h in hits)
                recall.append(len(set(got) & set(want_ids)) / 10)
            assert np.mean(recall) >= 0.95, (phase, np.mean(recall))
    finally:
        await shard.close()


async def test_crud_and_payload_ops(tmp_path: Path) -> None:
    shard = await LocalShard.load_or_create(tmp_path / "s", shard_config(4, "Dot"), storage())
    try:
        vecs = np.eye(4, dtype=np.float32)
        uid = "5c56c793-69f3-4fbf-87e6-c4bf54c28c26"
        await shard.update(
            upsert_op([1, 2, 3, uid], vecs, [{"a": 1}, {"a": 2, "b": {"c": 1}}, None, {"u": True}])
        )
        await shard.update(SetPayload(PointSelector(ids=(1,)), {"x": 5}))
        await shard.update(SetPayload(PointSelector(ids=(2,)), {"d": 9}, key="b"))
        await shard.update(DeletePayload(PointSelector(ids=(2,)), ("a",)))
        await shard.update(OverwritePayload(PointSelector(ids=(3,)), {"only": 1}))
        await shard.update(ClearPayload(PointSelector(ids=(uid,))))
        with pytest.raises(NotFoundError):
            await shard.update(SetPayload(PointSelector(ids=(1, 999)), {"x": 6}))
        recs = {r.id: r for r in await shard.retrieve([1, 2, 3, uid, 999], ALL_PAYLOAD, ALL_VECTORS)}
        assert set(recs) == {1, 2, 3, uid}
        assert recs[1].payload == {"a": 1, "x": 5}  # the rejected op changed nothing
        assert recs[2].payload == {"b": {"c": 1, "d": 9}}
        assert recs[3].payload == {"only": 1}
        assert recs[uid].payload == {}
        assert recs[2].vector is not None and np.allclose(recs[2].vector[""], [0, 1, 0, 0])
        await shard.update(
            UpdateVectors(PointsBatch((1,), {"": NamedVectors(np.full((1, 4), 2, np.float32))}))
        )
        (hits,) = await shard.search([SearchRequest(vector=np.ones(4, np.float32), limit=1)])
        assert hits[0].id == 1 and hits[0].score == pytest.approx(8.0)
        await shard.update(DeleteVectors(PointSelector(ids=(1,)), ("",)))
        (hits,) = await shard.search([SearchRequest(vector=np.ones(4, np.float32), limit=10)])
        assert 1 not in {h.id for h in hits}
        await shard.update(DeletePoints(PointSelector(ids=(2, 12345))))
        assert await shard.count(CountRequest()) == 3
        page = await shard.scroll(ScrollRequest(limit=2))
        assert [r.id for r in page.points] == [1, 3] and page.next_page_offset == uid
        page = await shard.scroll(ScrollRequest(offset=uid, limit=2))
        assert [r.id for r in page.points] == [uid] and page.next_page_offset is None
    finally:
        await shard.close()


async def test_bad_vectors_rejected_before_write(tmp_path: Path) -> None:
    shard = await LocalShard.load_or_create(tmp_path / "s", shard_config(4, "Cosine"), storage())
    try:
        with pytest.raises(BadInputError, match="dim"):
            await shard.update(upsert_op([1], np.ones((1, 5), np.float32)))
        bad = np.ones((2, 4), np.float32)
        bad[1, 2] = np.nan
        with pytest.raises(BadInputError, match="finite"):
            await shard.update(upsert_op([1, 2], bad))
        with pytest.raises(BadInputError):
            await shard.update(
                UpsertPoints(PointsBatch((1,), {"nope": NamedVectors(np.ones((1, 4), np.float32))}))
            )
        assert await shard.count(CountRequest()) == 0
        assert shard.applied_version == 0
    finally:
        await shard.close()


async def test_reopen_restores_everything(tmp_path: Path) -> None:
    data = clustered(600, 8, seed=3)
    cfg = shard_config(8, "Euclid", indexing_threshold=5)
    shard = await LocalShard.load_or_create(tmp_path / "s", cfg, storage())
    await shard.update(upsert_op(list(range(600)), data, [{"n": i} for i in range(600)]))
    await wait_optimized(shard)
    await shard.update(DeletePoints(PointSelector(ids=tuple(range(0, 600, 3)))))
    await shard.update(SetPayload(PointSelector(ids=(1,)), {"late": True}))
    before = await shard.scroll(ScrollRequest(limit=1000, with_vector=ALL_VECTORS))
    await shard.close()
    shard = await LocalShard.load_or_create(tmp_path / "s", cfg, storage())
    try:
        after = await shard.scroll(ScrollRequest(limit=1000, with_vector=ALL_VECTORS))
        assert [r.id for r in after.points] == [r.id for r in before.points]
        assert [r.payload for r in after.points] == [r.payload for r in before.points]
        for a, b in zip(after.points, before.points, strict=True):
            assert a.vector is not None and b.vector is not None
            assert np.array_equal(a.vector[""], b.vector[""])
        assert (await shard.info()).points_count == 400
    finally:
        await shard.close()


async def test_sq8_rescoring_recall(tmp_path: Path) -> None:
    data = clustered(6000, 64, clusters=40, seed=5)
    cfg = ShardConfig(
        vectors={"": VectorParams(size=64, distance="Cosine")},
        quantization_config=ScalarQuantization(
            scalar=ScalarQuantizationConfig(quantile=0.99, always_ram=True)
        ),
        optimizer_config=shard_config(64).optimizer_config.model_copy(update={"indexing_threshold": 100}),
    )
    shard = await LocalShard.load_or_create(tmp_path / "s", cfg, storage())
    try:
        await shard.update(upsert_op(list(range(6000)), data))
        await wait_optimized(shard)
        queries = clustered(50, 64, clusters=40, seed=6)
        recalls = []
        for q in queries:
            want, _ = brute_force(data, q, "Cosine", 10)
            params = SearchParams(
                hnsw_ef=128, quantization=QuantizationSearchParams(rescore=True, oversampling=2.0)
            )
            (hits,) = await shard.search([SearchRequest(vector=q, limit=10, params=params)])
            recalls.append(len({h.id for h in hits} & set(want)) / 10)
        assert np.mean(recalls) >= 0.99
    finally:
        await shard.close()


async def test_snapshot_restore_identical(tmp_path: Path) -> None:
    data = clustered(800, 8, seed=7)
    cfg = shard_config(8, "Cosine", indexing_threshold=10)
    shard = await LocalShard.load_or_create(tmp_path / "s", cfg, storage())
    try:
        await shard.update(upsert_op(list(range(800)), data, [{"g": i % 7} for i in range(800)]))
        await wait_optimized(shard)
        await shard.update(upsert_op(list(range(800, 850)), data[:50]))  # some in the appendable segment
        await shard.update(DeletePoints(PointSelector(ids=(5, 6, 7))))
        archive = tmp_path / "snap.tar"
        await shard.create_snapshot(archive)
        await LocalShard.restore_snapshot(archive, tmp_path / "restored")
        copy = await LocalShard.load_or_create(tmp_path / "restored", cfg, storage())
        try:
            a = await shard.scroll(ScrollRequest(limit=10000, with_vector=ALL_VECTORS))
            b = await copy.scroll(ScrollRequest(limit=10000, with_vector=ALL_VECTORS))
            assert [(r.id, r.payload) for r in a.points] == [(r.id, r.payload) for r in b.points]
            assert all(
                np.array_equal(x.vector[""], y.vector[""]) for x, y in zip(a.points, b.points, strict=True)
            )  # type: ignore[index]
            q = data[3]
            assert [h.id for h in (await shard.search([SearchRequest(vector=q, limit=10)]))[0]] == [
                h.id for h in (await copy.search([SearchRequest(vector=q, limit=10)]))[0]
            ]
            # the restored shard keeps taking writes after the snapshot's WAL position
            await copy.update(DeletePoints(PointSelector(ids=(8,))))
            assert await copy.count(CountRequest()) == 846
        finally:
            await copy.close()
        with pytest.raises(BadInputError):
            await LocalShard.restore_snapshot(archive, tmp_path / "restored")  # not empty
        junk = tmp_path / "junk.tar"
        junk.write_bytes(b"not a tar")
        with pytest.raises(BadInputError):
            await LocalShard.restore_snapshot(junk, tmp_path / "other")
    finally:
        await shard.close()


async def test_concurrent_updates_searches_during_optimization(tmp_path: Path) -> None:
    """Upserts, deletes and searches race the optimizer: nothing lost, duplicated or resurrected."""
    dim = 8
    cfg = shard_config(dim, "Euclid", indexing_threshold=2)  # seal every ~64 points: many merges
    shard = await LocalShard.load_or_create(tmp_path / "s", cfg, storage())
    rng = np.random.default_rng(11)
    expected: dict[int, np.ndarray] = {}
    try:

        async def writer() -> None:
            for round_ in range(60):
                ids = [int(x) for x in rng.choice(2000, 40, replace=False)]
                vecs = rng.standard_normal((40, dim)).astype(np.float32)
                await shard.update(upsert_op(ids, vecs, [{"r": round_}] * 40))
                for pid, v in zip(ids, vecs, strict=True):
                    expected[pid] = v
                dels = [int(x) for x in rng.choice(2000, 10, replace=False)]
                await shard.update(DeletePoints(PointSelector(ids=tuple(dels))))
                for pid in dels:
                    expected.pop(pid, None)

        async def searcher() -> None:
            for _ in range(100):
                (hits,) = await shard.search(
                    [SearchRequest(vector=rng.standard_normal(dim).astype(np.float32), limit=20)]
                )
                ids = [h.id for h in hits]
                assert len(ids) == len(set(ids)), "duplicate point in one result"
                await asyncio.sleep(0)

        await asyncio.gather(writer(), searcher(), searcher())
        await wait_optimized(shard)
        assert shard.optimizer.completed > 0, "the optimizer never ran during the test"
        page = await shard.scroll(ScrollRequest(limit=5000, with_vector=ALL_VECTORS))
        got = {r.id: r.vector[""] for r in page.points if r.vector is not None}
        assert set(got) == set(expected)
        for pid, vec in expected.items():
            assert np.array_equal(got[pid], vec), pid
        assert await shard.count(CountRequest()) == len(expected)
    finally:
        await shard.close()


async def test_wal_corruption_stops_only_that_shard(tmp_path: Path) -> None:
    """Mid-file WAL corruption: that shard refuses to open with a clear error; a torn tail is
    dropped and the shard opens with everything before it."""
    cfg = shard_config(4, "Dot")
    good = await LocalShard.load_or_create(tmp_path / "good", cfg, storage())
    bad = await LocalShard.load_or_create(tmp_path / "bad", cfg, storage())
    for shard in (good, bad):
        for i in range(5):
            await shard.update(upsert_op([i], np.ones((1, 4), np.float32)))
    # simulate a crash: stop the shards without their final checkpoint (the WAL holds the writes)
    for shard in (good, bad):
        await shard.abandon()
    (wal_file,) = sorted((tmp_path / "bad" / "wal").glob("*.wal"))
    raw = bytearray(wal_file.read_bytes())
    raw[30] ^= 0xFF
    wal_file.write_bytes(bytes(raw))
    from qcluster.errors import CorruptedStorageError

    with pytest.raises(CorruptedStorageError, match="last good version"):
        await LocalShard.load_or_create(tmp_path / "bad", cfg, storage())
    reopened = await LocalShard.load_or_create(tmp_path / "good", cfg, storage())
    try:
        assert await reopened.count(CountRequest()) == 5
    finally:
        await reopened.close()


async def test_an_idle_shard_flush_writes_nothing(tmp_path: Path) -> None:
    """A peer holds many shards and each flushes every few seconds: an idle one must not rewrite
    its files (measured: 300 idle collections x 3 shards took 23 % of a core, 4.5 % without)."""
    from qcluster.shards.local_open import MANIFEST

    shard = await LocalShard.load_or_create(tmp_path / "s", shard_config(4, "Dot"), storage())
    try:
        await shard.update(upsert_op(list(range(5)), np.ones((5, 4), dtype=np.float32)))
        await shard.flush()

        def stamps() -> dict[str, int]:
            return {
                str(p): p.stat().st_mtime_ns
                for p in (tmp_path / "s").rglob("*")
                if p.is_file() and "wal" not in p.parts
            }

        before = stamps()
        assert str(tmp_path / "s" / MANIFEST) in before
        await shard.flush()
        assert stamps() == before
        await shard.update(upsert_op([9], np.ones((1, 4), dtype=np.float32)))
        await shard.flush()
        after = stamps()
        assert after[str(tmp_path / "s" / MANIFEST)] != before[str(tmp_path / "s" / MANIFEST)]
    finally:
        await shard.close()


async def test_a_resent_tagged_write_is_applied_once_also_after_restart(tmp_path: Path) -> None:
    from qcluster.shards.clock import ClockTag

    data = clustered(20, 8, seed=3)
    shard = await LocalShard.load_or_create(tmp_path / "s", shard_config(8), storage())
    tag = ClockTag(5, 0, 100)
    await shard.update(upsert_op(list(range(10)), data[:10]), tag=tag)
    # A re-send of the same write (a retry, a forward proxy) after a later change: skipped.
    await shard.update(DeletePoints(PointSelector(ids=(1,))), tag=ClockTag(5, 0, 101))
    before = shard.applied_version
    await shard.update(upsert_op(list(range(10)), data[:10]), tag=tag)
    assert shard.applied_version == before
    assert await shard.count(CountRequest()) == 9
    clocks = await shard.replay.clock_map()
    assert clocks.seen(ClockTag(5, 0, 101)) and not clocks.seen(ClockTag(5, 0, 102))
    await shard.abandon()  # a crash: the clock map comes back from the WAL records' tags
    again = await LocalShard.load_or_create(tmp_path / "s", shard_config(8), storage())
    assert (await again.replay.clock_map()) == clocks
    await again.update(upsert_op([1], data[:1]), tag=ClockTag(5, 0, 101))
    assert await again.count(CountRequest()) == 9
    await again.close()  # a clean stop: the clock map is in the checkpoint
    third = await LocalShard.load_or_create(tmp_path / "s", shard_config(8), storage())
    assert (await third.replay.clock_map()) == clocks
    await third.close()


async def test_wal_delta_refuses_a_target_that_applied_a_later_write_first(tmp_path: Path) -> None:
    """A replica that took a write directly while it lacked older ones (a coordinator with a stale
    view) cannot be caught up by replaying the older ones over it: the value of a point both touch
    would go back. The source says so (None: copy the shard instead); in order it replays."""
    from qcluster.shards.clock import ClockMap, ClockTag

    data = clustered(4, 8, seed=5)
    source = await LocalShard.load_or_create(tmp_path / "src", shard_config(8), storage())
    await source.update(upsert_op([1], data[:1], [{"w": 1}]), tag=ClockTag(7, 0, 1))
    await source.update(upsert_op([1], data[1:2], [{"w": 2}]), tag=ClockTag(8, 0, 1))  # target lacks
    await source.update(upsert_op([1], data[2:3], [{"w": 3}]), tag=ClockTag(9, 0, 1))  # target has
    in_order = ClockMap({(7, 0): 1})
    pinned = await source.replay.pin_for_replay(in_order)
    assert pinned is not None and pinned[1] == 2  # replay from the first write it lacks
    source.replay.unpin_wal(pinned[0])
    out_of_order = ClockMap({(7, 0): 1, (9, 0): 1})
    assert await source.replay.pin_for_replay(out_of_order) is None
    await source.close()


async def test_a_replica_filled_by_copies_serves_no_wal_delta_to_one_that_missed_a_delete(
    tmp_path: Path,
) -> None:
    """A replica rebuilt by stream_records holds copies of the points alive at the copy, not the
    writes: a replica that missed a delete meanwhile must get a full copy from it, not a replay
    of the copies (which would bring the deleted point back); also after a restart."""
    from qcluster.shards.clock import ClockMap

    data = clustered(4, 8, seed=6)
    copied = await LocalShard.load_or_create(tmp_path / "b", shard_config(8), storage())
    # the source had: upsert 1..4 (tick 1), delete 4 (tick 2); the copies are of 1..3
    await copied.apply_records([(upsert_op([1, 2, 3], data[:3]), None)])
    assert await copied.replay.pin_for_replay(ClockMap({(7, 0): 1})) is None  # not merged yet
    await copied.replay.merge_clocks(ClockMap({(7, 0): 2}))
    await copied.flush()
    missed_delete = ClockMap({(7, 0): 1})
    assert await copied.replay.pin_for_replay(missed_delete) is None
    pinned = await copied.replay.pin_for_replay(ClockMap({(7, 0): 2}))
    assert pinned is not None and pinned[1] == copied.applied_version + 1  # nothing to replay
    copied.replay.unpin_wal(pinned[0])
    await copied.close()
    again = await LocalShard.load_or_create(tmp_path / "b", shard_config(8), storage())
    assert await again.replay.pin_for_replay(missed_delete) is None
    await again.close()


async def test_three_hundred_shards_share_the_peers_threads(tmp_path: Path) -> None:
    """A peer holding many shards runs them on its shared pools: the thread count stays that of
    the pools, not a few per shard."""
    import threading

    from qcluster.shards.workers import shared

    data = clustered(2, 8, seed=9)
    shards = []
    for i in range(300):
        shard = await LocalShard.load_or_create(tmp_path / f"s{i}", shard_config(8), storage())
        await shard.update(upsert_op([i], data[:1]))
        shards.append(shard)
    await asyncio.gather(*(s.count(CountRequest()) for s in shards))
    sizes = shared(storage().performance).sizes
    pool_threads = sizes.update + sizes.search + sizes.io + sizes.optimize
    assert threading.active_count() <= pool_threads + 20, threading.active_count()
    assert [await s.count(CountRequest()) for s in shards[:3]] == [1, 1, 1]
    await asyncio.gather(*(s.close() for s in shards))


@pytest.mark.parametrize("limit", [3, 80])  # the few-hits merge and the numpy merge
async def test_one_query_pages_skip_deleted_points_and_carry_payloads(tmp_path: Path, limit: int) -> None:
    """One indexed segment, points deleted after indexing: a page (offset + limit) equals the
    brute-force order without the deleted points, with or without payloads and vectors."""
    data = clustered(600, 8, seed=5)
    shard = await LocalShard.load_or_create(
        tmp_path / "s", shard_config(8, "Dot", indexing_threshold=40), storage()
    )
    try:
        await shard.update(upsert_op(list(range(600)), data, [{"i": i} for i in range(600)]))
        await wait_optimized(shard)
        gone = list(range(0, 600, 3))
        await shard.update(DeletePoints(PointSelector(ids=tuple(gone))))
        alive = np.array(sorted(set(range(600)) - set(gone)))
        assert len([s for s in shard.set.segments if s.live_count]) == 1  # the one-segment merge
        q = clustered(1, 8, seed=6)[0]
        order = alive[np.argsort(-(data[alive] @ q), kind="stable")]
        for offset in (0, 2):
            want = [int(i) for i in order[offset : offset + limit]]
            for payload in (False, True):
                (hits,) = await shard.search(
                    [
                        SearchRequest(
                            vector=q,
                            limit=limit,
                            offset=offset,
                            params=SearchParams(exact=True),
                            with_payload=ALL_PAYLOAD if payload else NO_PAYLOAD,
                            with_vector=ALL_VECTORS if payload else NO_VECTORS,
                        )
                    ]
                )
                assert [h.id for h in hits] == want
                assert all(h.version > 0 for h in hits)
                if payload:
                    assert all(h.payload == {"i": h.id} and h.vector is not None for h in hits)
                else:
                    assert all(h.payload is None and h.vector is None for h in hits)
    finally:
        await shard.close()
