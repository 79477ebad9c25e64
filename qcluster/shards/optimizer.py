"""Background optimizations of one shard: index, merge, vacuum.

Each job has three steps::

    plan     [update thread]    pick the job; seal the appendable segment if it passed
                                indexing_threshold; for merges, start change tracking on sources
    build    [optimizer thread] read immutable vectors, build FAISS indexes / the merged segment
    commit   [update thread]    replay tracked changes (deletes, payloads, vector removals) onto
                                the result, swap it in atomically, retire the sources

Searches never see a half-built index: an index is attached in one assignment, and a merged
segment replaces its sources in one list swap. Writes during a build land in the sources and are
carried over at commit, so nothing is lost, duplicated or resurrected. Cancellation (shard close)
abandons the build; the sources stay as they were and tracking is switched off.

Policy: ``indexing_threshold`` (KB of vectors, 0 = never index) seals the appendable segment;
sealed segments merge toward ``default_segment_number`` (0 = auto: one large indexed segment,
which gives the best single-query latency), never past ``max_segment_size`` (KB); merging extends
the largest segment's HNSW graph with the others' points instead of rebuilding it; a segment whose
deleted share passes ``deleted_threshold`` (with at least ``vacuum_min_vector_number`` deleted) is
rebuilt from its live points.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from qcluster.logging import get_logger
from qcluster.shards import graph_builder, segment_store
from qcluster.shards.base import OptimizationProgress
from qcluster.shards.ragged import Csr, concat_csr
from qcluster.shards.segment import Segment, new_segment
from qcluster.shards.workers import Lane

if TYPE_CHECKING:
    from qcluster.shards.local_shard import LocalShard

log = get_logger(__name__)


@dataclass
class Job:
    kind: str  # "indexing" | "merge" | "vacuum" | "payload_graphs"
    sources: list[Segment]
    base: Segment | None = None
    graphs: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # vector -> key -> spec
    # (key, "tenant" | "principal") ordering the rebuilt rows; on an indexing job: rebuild the
    # segment in that order rather than index it in place
    layout: tuple[str, str] | None = None
    progress: OptimizationProgress = field(default_factory=lambda: OptimizationProgress("", [], 0, 0, 0.0))
    snapshot: list[Any] = field(default_factory=list)

    @property
    def rebuilds(self) -> bool:
        """The job builds a new segment replacing its sources (merge, vacuum, laid-out indexing)."""
        return self.kind in ("merge", "vacuum") or (self.kind == "indexing" and self.layout is not None)


class Optimizer:
    def __init__(self, shard: LocalShard):
        self.shard = shard
        self._event = asyncio.Event()
        self._stopped = False
        self._pool = Lane(shard.workers.optimize)  # index builds: one at a time per shard
        self._running: Job | None = None
        self.pending = False
        self.error: str | None = None
        self.completed = 0
        self._requested = 0  # wake-ups asked for
        self._handled = 0  # wake-ups fully planned (no job left at that moment)

    def wake(self) -> None:
        self._requested += 1
        self._event.set()

    def stop(self) -> None:
        self._stopped = True
        self._event.set()

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def progress(self) -> list[OptimizationProgress]:
        job = self._running
        return [] if job is None else [job.progress]

    @property
    def idle(self) -> bool:
        """No job running and every wake-up so far has been planned to the end."""
        return self._running is None and not self.pending and self._handled == self._requested

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stopped:
            await self._event.wait()
            self._event.clear()
            target = self._requested
            while not self._stopped:
                try:
                    job: Job | None = await self.shard.in_update(self._plan)
                except Exception as exc:
                    self.error = f"planning failed: {exc}"
                    log.error("optimization planning failed", error=str(exc), path=str(self.shard.path))
                    job = None
                if job is None:
                    self.pending = False
                    self._handled = target
                    break
                self._running = job
                try:
                    result = await loop.run_in_executor(self._pool, self._build, job)
                    if self._stopped:
                        await self.shard.in_update(self._abandon, job)
                        return
                    await self.shard.in_update(self._commit, job, result)
                    self.completed += 1
                    self.error = None
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    self.error = f"{job.kind} failed: {exc}"
                    log.error(
                        "optimization failed; sources kept",
                        kind=job.kind,
                        error=str(exc),
                        path=str(self.shard.path),
                    )
                    await self.shard.in_update(self._abandon, job)
                    self.pending = False
                    self._handled = target
                    break
                finally:
                    self._running = None

    # ------------------------------------------------------------------ plan (update thread)
    def _target_segments(self) -> int:
        n = self.shard.config.optimizer_config.default_segment_number
        return n if n > 0 else 1

    def _plan(self) -> Job | None:
        shard = self.shard
        cfg = shard.config.optimizer_config
        segs = shard.set.segments
        app = segs[-1]
        threshold_kb = cfg.indexing_threshold if cfg.indexing_threshold is not None else 10000
        if threshold_kb > 0 and app.live_count > 0 and app.vector_bytes() >= threshold_kb * 1024:
            fresh = new_segment(shard.path / "segments", shard.config)
            shard.set.new_field_indexes(fresh)
            segment_store.seal(app)
            segs.append(fresh)
            log.info("segment sealed", segment=app.id, points=app.live_count, path=str(shard.path))
        sealed = segs[:-1]
        names = list(shard.config.dense_dims())
        layout = graph_builder.layout_field(shard.set.field_schemas)
        for seg in sealed:
            if threshold_kb > 0 and _unindexed(seg, names) and seg.live_count > 0:
                self.pending = True
                # Indexed for the first time under a tenant / principal field: rebuilt in that
                # order (Qdrant's tenant-first layout: a tenant's vectors are read contiguously
                # when it is scored exactly), as merges and vacuums lay out their rows.
                relayout = layout is not None and not seg.indexes and seg.live_count > 1
                return self._start(Job("indexing", [seg], layout=layout if relayout else None))
        for seg in sealed:
            deleted = seg.deleted_count
            if (
                seg.size
                and deleted >= cfg.vacuum_min_vector_number
                and deleted / seg.size > cfg.deleted_threshold
            ):
                self.pending = True
                return self._start(Job("vacuum", [seg]))
        if len(sealed) > self._target_segments():
            limit_kb = cfg.max_segment_size
            ordered = sorted(sealed, key=lambda s: s.size, reverse=True)
            sources: list[Segment] = []
            total = 0
            for seg in ordered if limit_kb is None else reversed(ordered):
                kb = seg.vector_bytes() / 1024
                if limit_kb is not None and sources and total + kb > limit_kb:
                    continue
                sources.append(seg)
                total += int(kb)
            if len(sources) >= 2:
                base: Segment | None = max(sources, key=lambda s: s.size)
                if base is not None and (
                    any(n not in base.indexes for n in names)
                    or base.deleted_count > cfg.deleted_threshold * base.size
                ):
                    base = None
                self.pending = True
                return self._start(Job("merge", sources, base=base))
        # last: a segment about to be merged gets its payload graphs as part of the merge
        specs = {n: graph_builder.wanted(shard.config, shard.set.field_schemas, n) for n in names}
        for seg in sealed:
            todo = {}
            for n in names:
                graph_builder.drop_unwanted(seg, n, specs[n])
                keys = graph_builder.stale(seg, n, specs[n])
                if keys:
                    todo[n] = {k: specs[n][k] for k in keys}
            if todo and seg.live_count > 0:
                self.pending = True
                return self._start(Job("payload_graphs", [seg], graphs=todo))
        return None

    def _start(self, job: Job) -> Job:
        points = sum(s.live_count for s in job.sources)
        job.progress = OptimizationProgress(job.kind, [s.id for s in job.sources], points, 0, time.time())
        if job.rebuilds:
            job.layout = graph_builder.layout_field(self.shard.set.field_schemas)
            job.graphs = {
                n: graph_builder.wanted(self.shard.config, self.shard.set.field_schemas, n)
                for n in self.shard.config.vectors
            }
            for seg in job.sources:
                seg.touched = set()
            # Everything the build reads, taken at one instant on the update thread.
            for seg in job.sources:
                rows = np.arange(seg.size) if seg is job.base else np.flatnonzero(seg.live_mask())
                job.snapshot.append(
                    (
                        seg,
                        rows,
                        [seg.ids[int(r)] for r in rows],
                        [seg.payloads[int(r)] for r in rows],
                        seg.deleted[rows].copy(),
                        seg.versions[rows].copy(),
                        {n: seg.has_vec[n][rows].copy() for n in seg.names},
                    )
                )
        log.info("optimization planned", kind=job.kind, segments=len(job.sources), points=points)
        return job

    # ------------------------------------------------------------------ build (optimizer thread)
    def _threads(self) -> int:
        n = self.shard.config.optimizer_config.max_optimization_threads
        cores = os.cpu_count() or 1
        return min(n, cores) if n else cores  # more threads than cores only costs memory

    def _report(self, job: Job) -> Any:
        def cb(done: int, total: int) -> None:
            job.progress.done = done
            job.progress.points = total

        return cb

    def _build(self, job: Job) -> Any:
        from qcluster.shards.index import VectorIndex

        cfg = self.shard.config
        if job.kind == "payload_graphs":
            seg = job.sources[0]
            return {
                name: (seg.indexes[name], self._graphs(job, seg, seg.indexes[name], name, list(specs)))
                for name, specs in job.graphs.items()
                if name in seg.indexes
            }
        if not job.rebuilds:  # indexing in place
            seg = job.sources[0]
            built: dict[str, Any] = {}
            for name, store in seg.sparse.items():
                if store.index is None:
                    built[name] = store.build_index(seg.size)
            for name in cfg.dense_dims():
                if name in seg.indexes:
                    continue
                built[name] = VectorIndex.build(
                    np.asarray(seg.vectors[name][: seg.size]),
                    cfg.vectors[name].distance,
                    cfg.hnsw_for(name),
                    cfg.quantization_for(name),
                    threads=self._threads(),
                    progress=self._report(job),
                )
            for fidx in list(seg.field_indexes.values()):
                fidx.prepare()
            return built  # payload graphs follow as their own job
        return self._build_merged(job)

    def _graphs(self, job: Job, seg: Segment, index: Any, name: str, keys: list[str]) -> dict[str, Any]:
        specs = job.graphs.get(name, {})
        keys = [k for k in keys if k in specs]
        if not keys:
            return {}
        return graph_builder.build(seg, index, name, keys, specs, self._threads(), self._report(job))

    def _build_merged(self, job: Job) -> Segment:
        from qcluster.shards.index import VectorIndex

        cfg = self.shard.config
        dims = cfg.dense_dims()
        seg = new_segment(self.shard.path / "segments", cfg, appendable=False, capacity=1)
        snaps = sorted(job.snapshot, key=lambda s: 0 if s[0] is job.base else 1)
        seg.ids = [pid for snap in snaps for pid in snap[2]]
        seg.payloads = [p for snap in snaps for p in snap[3]]
        seg.deleted = np.concatenate([snap[4] for snap in snaps])
        seg.versions = np.concatenate([snap[5] for snap in snaps])
        seg.size = len(seg.ids)
        base_rows = len(snaps[0][1]) if job.base is not None else 0
        for name in seg.names:
            seg.has_vec[name] = np.concatenate([snap[6][name] for snap in snaps])
        for name in dims:
            seg.vectors[name] = np.concatenate([np.asarray(snap[0].vectors[name])[snap[1]] for snap in snaps])
        for name, store in (*seg.multi.items(), *seg.sparse.items()):
            store.csr = concat_csr(
                [snap[0].ragged(name).as_csr(snap[0].size).rows_of(snap[1]) for snap in snaps]
            )
        order = graph_builder.layout_order(seg.payloads, base_rows, job.layout)
        if order is not None:  # tenant-first (or principal-ordered) layout of the new rows
            seg.ids = [seg.ids[i] for i in order.tolist()]
            seg.payloads = [seg.payloads[i] for i in order.tolist()]
            seg.deleted, seg.versions = seg.deleted[order], seg.versions[order]
            for name in seg.names:
                seg.has_vec[name] = seg.has_vec[name][order]
            for name in dims:
                seg.vectors[name] = seg.vectors[name][order]
            for store in (*seg.multi.values(), *seg.sparse.values()):
                store.csr = Csr(*store.as_csr(seg.size).rows_of(order))
        for store in seg.sparse.values():
            store.index = store.build_index(seg.size)
        seg.offsets = {pid: off for off, pid in enumerate(seg.ids) if not seg.deleted[off]}
        segment_store.seal(seg)
        for name in dims:
            if job.base is not None and name in job.base.indexes:
                extra = np.asarray(seg.vectors[name][base_rows:])
                seg.indexes[name] = job.base.indexes[name].extended(
                    extra, threads=self._threads(), progress=self._report(job)
                )
            else:
                seg.indexes[name] = VectorIndex.build(
                    np.asarray(seg.vectors[name]),
                    cfg.vectors[name].distance,
                    cfg.hnsw_for(name),
                    cfg.quantization_for(name),
                    threads=self._threads(),
                    progress=self._report(job),
                )
        self.shard.set.new_field_indexes(seg)
        for fidx in seg.field_indexes.values():
            fidx.prepare()
        for name, index in seg.indexes.items():
            for graph in self._graphs(job, seg, index, name, list(job.graphs.get(name, {}))).values():
                index.with_payload_graph(graph)
        return seg

    # ------------------------------------------------------------------ commit (update thread)
    def _commit(self, job: Job, result: Any) -> None:
        shard = self.shard
        if job.kind == "payload_graphs":
            seg = job.sources[0]
            for name, (index, graphs) in result.items():
                current = seg.indexes.get(name)
                if current is None or current is not index:
                    continue  # the index was replaced meanwhile: plan again
                for graph in graphs.values():
                    current.with_payload_graph(graph)
            seg.dirty = True
            log.info(
                "payload graphs built",
                segment=seg.id,
                fields=sorted(k for g in job.graphs.values() for k in g),
            )
            return
        if not job.rebuilds:  # indexing in place
            seg = job.sources[0]
            for name, index in result.items():
                if name in seg.sparse:
                    seg.sparse[name].index = index
                else:
                    seg.indexes[name] = index
            seg.dirty = True
            log.info("segment indexed", segment=seg.id, points=seg.live_count, path=str(shard.path))
            return
        new: Segment = result
        for src in job.sources:
            for off in sorted(src.touched or ()):
                pid = src.ids[off]
                if src.deleted[off]:
                    new.delete(pid, int(src.versions[off]))
                    continue
                noff = new.offsets.get(pid)
                if noff is None:
                    continue
                new.set_payload_at(noff, src.payloads[off], int(src.versions[off]))
                for name in new.names:
                    if not src.has_vec[name][off] and new.has_vec[name][noff]:
                        new.delete_vectors_at(noff, (name,), int(src.versions[off]))
            src.touched = None
        segs = shard.set.segments
        kept = [s for s in segs[:-1] if s not in job.sources]
        shard.set.segments = [*kept, new, segs[-1]]
        new.dirty = True
        shard.flusher.retire(job.sources)
        log.info(
            {"merge": "segments merged", "vacuum": "segment vacuumed"}.get(
                job.kind, "segment indexed in layout order"
            ),
            into=new.id,
            sources=len(job.sources),
            points=new.live_count,
            path=str(shard.path),
        )

    def _abandon(self, job: Job) -> None:
        for src in job.sources:
            src.touched = None


def _unindexed(seg: Segment, dense: list[str]) -> bool:
    """A sealed segment still lacks a dense (FAISS) or a sparse (inverted) index."""
    return any(n not in seg.indexes for n in dense) or any(s.index is None for s in seg.sparse.values())
