"""Prometheus metrics of one peer, served at ``/metrics``, in the names and labels Qdrant uses so
that dashboards and alerts written for Qdrant keep working (docs/operations.md lists them).

Request metrics are recorded by the REST edge middleware (one call per request, label children
cached); the collection, replica, transfer and Raft figures are set from plain values when
``/metrics`` is scraped (see :mod:`qcluster.api.rest.metrics_scrape`). Each ``Metrics`` owns its
registry, so tests and several in-process peers do not collide.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

import qcluster
from qcluster.request_stats import RequestStats
from qcluster.shards import search_stats

CONTENT_TYPE = CONTENT_TYPE_LATEST
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# Qdrant records response timings for this status only (counts for every status).
TIMED_STATUS = 200


@dataclass(frozen=True, slots=True)
class CollectionStats:
    name: str
    points: int
    vectors: Mapping[str, int]  # vector name ("" for the unnamed one) -> vectors stored
    indexed_vectors: int
    segments: int


class SearchPlanCollector(Collector):
    """``qcluster_search_plans_total{plan}``: segment searches per plan the filtered-search planner
    chose (see ``shards/search_stats.py``), read from the process-wide counts at scrape time."""

    def collect(self) -> Iterable[CounterMetricFamily]:
        family = CounterMetricFamily(
            "qcluster_search_plans",
            "Segment searches (queries x segments) per search plan chosen by the planner",
            labels=["plan"],
        )
        for plan, count in search_stats.snapshot().items():
            family.add_metric([plan], count)
        yield family


@dataclass(frozen=True, slots=True)
class ReplicaStats:
    """One collection's replicas as the agreed state (or, on a single peer, the local shards) has
    them, and the transfers that touch this peer."""

    name: str
    active_per_shard: tuple[int, ...]
    states: Mapping[str, int] = field(default_factory=dict)  # replica state -> replicas
    transfers_in: int = 0
    transfers_out: int = 0


@dataclass(frozen=True, slots=True)
class TransferFigures:
    """One running transfer this peer sends, as its progress reports it."""

    collection: str
    shard_id: int
    to_peer: int
    method: str
    stage: str
    unit: str
    done: int
    total: int


class _Timings(Collector):
    """``<prefix>_responses_{avg,min,max}_duration_seconds`` per label set, as Qdrant reports them
    beside its histogram (gauges since the peer started)."""

    def __init__(self, prefix: str, labels: list[str]) -> None:
        self.prefix = prefix
        self.labels = labels
        self.stats: dict[tuple[str, ...], list[float]] = {}  # labels -> [count, sum, min, max]

    def observe(self, key: tuple[str, ...], seconds: float) -> None:
        s = self.stats.get(key)
        if s is None:
            self.stats[key] = [1, seconds, seconds, seconds]
            return
        s[0] += 1
        s[1] += seconds
        s[2] = min(s[2], seconds)
        s[3] = max(s[3], seconds)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        if not self.stats:
            return
        families = {
            what: GaugeMetricFamily(
                f"{self.prefix}_responses_{what}_duration_seconds",
                f"{what} response duration",
                labels=self.labels,
            )
            for what in ("avg", "min", "max")
        }
        for key, (count, total, low, high) in list(self.stats.items()):
            families["avg"].add_metric(list(key), total / count)
            families["min"].add_metric(list(key), low)
            families["max"].add_metric(list(key), high)
        yield from families.values()


class PerCollectionRequests(Collector):
    """``rest_responses_total`` / ``_fail_total`` / ``_avg_duration_seconds`` with a ``collection``
    label, from the figures kept per collection (``request_stats.py``)."""

    def __init__(self, stats: RequestStats) -> None:
        self.stats = stats

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        labels = ["method", "endpoint", "status", "collection"]
        total = CounterMetricFamily("rest_responses", "total number of responses", labels=labels)
        failed = CounterMetricFamily(
            "rest_responses_fail", "total number of responses with a 4xx or 5xx status", labels=labels
        )
        avg = GaugeMetricFamily("rest_responses_avg_duration_seconds", "avg response duration", labels=labels)
        for endpoint, status, collection, figures in self.stats.rows():
            method, path = endpoint.split(" ", 1)
            key = [method, path, status, collection]
            total.add_metric(key, figures.count)
            if figures.failed:
                failed.add_metric(key, figures.failed)
            avg.add_metric(key, figures.total / figures.count)
        yield from (total, failed, avg)


class Metrics:
    def __init__(self) -> None:
        disable_created_metrics()  # type: ignore[no-untyped-call]  # Qdrant has no *_created series
        self.registry = CollectorRegistry(auto_describe=True)
        self.started = time.time()
        r = self.registry
        # as Qdrant's dashboards read it (the API version served); this engine's own just below
        info = Gauge("app_info", "information about qdrant server", ["name", "version"], registry=r)
        info.labels("qdrant", qcluster.QDRANT_COMPAT_VERSION).set(1)
        build = Gauge("qcluster_build_info", "the qcluster release this peer runs", ["version"], registry=r)
        build.labels(qcluster.__version__).set(1)
        self.rest_stats = RequestStats()  # what ``GET /telemetry`` reports of the same requests
        self.grpc_stats = RequestStats()
        self.by_collection = RequestStats()  # ``/metrics?per_collection=true``
        Gauge("app_status_recovery_mode", "whether the peer is in recovery mode", registry=r).set(0)
        self.uptime = Gauge("app_uptime_seconds", "seconds since the peer started", registry=r)
        self._collection_gauges(r)
        self._request_metrics(r)
        self._cluster_gauges(r)
        r.register(SearchPlanCollector())

    # ------------------------------------------------------------------------- families
    def _collection_gauges(self, r: CollectorRegistry) -> None:
        self.collections = Gauge("collections_total", "number of collections", registry=r)
        self.vectors_total = Gauge(
            "collections_vector_total", "total number of vectors in all collections", registry=r
        )
        self.vectors = Gauge(
            "collection_vectors",
            "amount of vectors grouped by vector name",
            ["collection", "vector"],
            registry=r,
        )
        self.points = Gauge(
            "collection_points", "approximate amount of points per collection", ["id"], registry=r
        )
        self.indexed = Gauge(
            "collection_indexed_vectors", "vectors in an index, per collection", ["id"], registry=r
        )
        self.segments = Gauge("collection_segments", "segments per collection", ["id"], registry=r)
        self.active_min = Gauge(
            "collection_active_replicas_min",
            "minimum number of active replicas across all shards",
            registry=r,
        )
        self.active_max = Gauge(
            "collection_active_replicas_max",
            "maximum number of active replicas across all shards",
            registry=r,
        )
        self.dead = Gauge(
            "collection_dead_replicas", "total amount of shard replicas in non-active state", registry=r
        )
        self.replicas = Gauge(
            "collection_replicas", "shard replicas per collection and state", ["id", "state"], registry=r
        )
        self.transfers_in = Gauge(
            "collection_shard_transfer_incoming",
            "incoming shard transfers currently running",
            ["id"],
            registry=r,
        )
        self.transfers_out = Gauge(
            "collection_shard_transfer_outgoing",
            "outgoing shard transfers currently running",
            ["id"],
            registry=r,
        )
        progress_labels = ["id", "shard", "to_peer", "method", "stage", "unit"]
        self.transfer_done = Gauge(
            "qcluster_shard_transfer_done",
            "progress of the transfers this peer sends: work done in the current stage",
            progress_labels,
            registry=r,
        )
        self.transfer_total = Gauge(
            "qcluster_shard_transfer_total",
            "progress of the transfers this peer sends: work of the current stage (0: not known yet)",
            progress_labels,
            registry=r,
        )

    def _request_metrics(self, r: CollectorRegistry) -> None:
        labels = ["method", "endpoint", "status"]
        self._responses = Counter("rest_responses", "total number of responses", labels, registry=r)
        self._failures = Counter(
            "rest_responses_fail", "total number of responses with a 4xx or 5xx status", labels, registry=r
        )
        self._duration = Histogram(
            "rest_responses_duration_seconds",
            "response duration histogram",
            labels,
            buckets=_BUCKETS,
            registry=r,
        )
        self._timings = _Timings("rest", labels)
        r.register(self._timings)
        self._children: dict[tuple[str, str, int], tuple[Any, Any, Any]] = {}
        grpc_labels = ["endpoint", "status"]
        self._grpc_responses = Counter("grpc_responses", "total number of responses", grpc_labels, registry=r)
        self._grpc_duration = Histogram(
            "grpc_responses_duration_seconds",
            "response duration histogram",
            grpc_labels,
            buckets=_BUCKETS,
            registry=r,
        )
        self._grpc_timings = _Timings("grpc", grpc_labels)
        r.register(self._grpc_timings)

    def _cluster_gauges(self, r: CollectorRegistry) -> None:
        self.cluster_enabled = Gauge("cluster_enabled", "is cluster support enabled", registry=r)
        self.cluster_peers = Gauge("cluster_peers_total", "total number of cluster peers", registry=r)
        self.cluster_term = Gauge("cluster_term", "current cluster term", registry=r)
        self.cluster_commit = Gauge(
            "cluster_commit",
            "index of the last committed operation this peer knows of",
            ["peer_id"],
            registry=r,
        )
        self.cluster_applied = Gauge("cluster_applied", "Raft log index applied on this peer", registry=r)
        self.cluster_pending = Gauge(
            "cluster_pending_operations_total", "total number of pending operations for this peer", registry=r
        )
        self.cluster_voter = Gauge("cluster_voter", "is this peer a voter (1) or a learner (0)", registry=r)
        self.cluster_leader = Gauge(
            "cluster_leader_peer_id", "peer id of the Raft leader (0: unknown)", registry=r
        )
        self.cluster_is_leader = Gauge(
            "cluster_is_leader", "whether this peer is the Raft leader", registry=r
        )
        self.cluster_last_update = Gauge(
            "cluster_last_update_timestamp_seconds", "unix timestamp of the last consensus update", registry=r
        )
        self.cluster_working = Gauge(
            "cluster_working_state", "working state of the cluster", ["state"], registry=r
        )
        self._loop_lag = Histogram(
            "event_loop_lag_seconds",
            "How late the event loop woke a task that asked to sleep (loop_lag.py)",
            buckets=_LAG_BUCKETS,
            registry=r,
        )
        self._loop_lag_max = Gauge(
            "event_loop_lag_max_seconds", "Largest event loop lag since the previous scrape", registry=r
        )
        self._lag_window = 0.0

    # ------------------------------------------------------------------------- requests
    def observe_request(
        self, method: str, endpoint: str, status: int, seconds: float, collection: str | None = None
    ) -> None:
        self.rest_stats.observe(f"{method} {endpoint}", str(status), seconds, status >= 400)
        # (a refused request may name any collection, existing or not: those stay unlabelled)
        named = collection if collection and status < 400 else ""
        self.by_collection.observe(f"{method} {endpoint}", str(status), seconds, status >= 400, named)
        key = (method, endpoint, status)
        children = self._children.get(key)
        if children is None:
            labels = (method, endpoint, str(status))
            children = (
                self._responses.labels(*labels),
                self._failures.labels(*labels) if status >= 400 else None,
                self._duration.labels(*labels) if status == TIMED_STATUS else None,
            )
            self._children[key] = children
        ok, fail, duration = children
        ok.inc()
        if fail is not None:
            fail.inc()
        if duration is not None:
            duration.observe(seconds)
            self._timings.observe((method, endpoint, str(status)), seconds)

    def observe_loop_lag(self, seconds: float) -> None:
        self._loop_lag.observe(seconds)
        self._lag_window = max(self._lag_window, seconds)

    def observe_grpc(self, endpoint: str, status: str, seconds: float) -> None:
        """One answered call of the public gRPC API (``endpoint``: ``/qdrant.Points/Search``,
        ``status``: the gRPC code name, ``OK`` when it succeeded)."""
        self.grpc_stats.observe(endpoint, status, seconds, status != "OK")
        self._grpc_responses.labels(endpoint, status).inc()
        self._grpc_duration.labels(endpoint, status).observe(seconds)
        self._grpc_timings.observe((endpoint, status), seconds)

    # ------------------------------------------------------------------------- scrapes
    def set_collections(self, stats: Iterable[CollectionStats]) -> None:
        stats = list(stats)
        self.uptime.set(time.time() - self.started)
        self.collections.set(len(stats))
        self.vectors_total.set(sum(sum(s.vectors.values()) for s in stats))
        for gauge in (self.points, self.indexed, self.segments, self.vectors):
            gauge.clear()
        for s in stats:
            self.points.labels(s.name).set(s.points)
            self.indexed.labels(s.name).set(s.indexed_vectors)
            self.segments.labels(s.name).set(s.segments)
            for vector, count in s.vectors.items():
                self.vectors.labels(s.name, vector).set(count)

    def set_replicas(self, stats: Iterable[ReplicaStats]) -> None:
        stats = list(stats)
        active = [n for s in stats for n in s.active_per_shard]
        self.active_min.set(min(active, default=0))
        self.active_max.set(max(active, default=0))
        self.dead.set(sum(n for s in stats for state, n in s.states.items() if state != "Active"))
        for gauge in (self.replicas, self.transfers_in, self.transfers_out):
            gauge.clear()
        for s in stats:
            for state, n in s.states.items():
                self.replicas.labels(s.name, state).set(n)
            self.transfers_in.labels(s.name).set(s.transfers_in)
            self.transfers_out.labels(s.name).set(s.transfers_out)

    def set_transfer_progress(self, items: Iterable[TransferFigures]) -> None:
        """The outgoing transfers' current stage, one label set per transfer (gone once it ends)."""
        self.transfer_done.clear()
        self.transfer_total.clear()
        for t in items:
            labels = (t.collection, str(t.shard_id), str(t.to_peer), t.method, t.stage, t.unit)
            self.transfer_done.labels(*labels).set(t.done)
            self.transfer_total.labels(*labels).set(t.total)

    def set_cluster(self, health: dict[str, Any] | None, peers: int) -> None:
        """Raft figures from the consensus service's ``health()`` (None: single-peer mode)."""
        self.cluster_enabled.set(0 if health is None else 1)
        if health is None:
            return
        self.cluster_peers.set(peers)
        self.cluster_term.set(health["term"])
        self.cluster_commit.clear()
        self.cluster_commit.labels(str(health["peer_id"])).set(health["commit"])
        self.cluster_applied.set(health["applied_index"])
        self.cluster_pending.set(health["pending_operations"])
        self.cluster_voter.set(1 if health["is_voter"] else 0)
        self.cluster_leader.set(health["leader_peer_id"])
        self.cluster_is_leader.set(1 if health["leader_peer_id"] == health["peer_id"] else 0)
        working = health["consensus_thread_status"] == "working"
        self.cluster_working.labels("working").set(1 if working else 0)
        self.cluster_working.labels("stopped").set(0 if working else 1)
        if working:
            self.cluster_last_update.set(time.time())

    def exposition(self, per_collection: bool = False) -> bytes:
        """The text format; ``per_collection``: the REST request series labelled with the
        collection each request named (Qdrant's ``?per_collection=true``) in place of the global
        ones."""
        self._loop_lag_max.set(self._lag_window)
        self._lag_window = 0.0
        if not per_collection:
            out: bytes = generate_latest(self.registry)
            return out
        names = {
            s.name
            for family in self.registry.collect()
            for s in family.samples
            if not s.name.startswith("rest_")
        }
        rest = CollectorRegistry(auto_describe=True)
        rest.register(PerCollectionRequests(self.by_collection))
        return generate_latest(self.registry.restricted_registry(names)) + generate_latest(rest)
