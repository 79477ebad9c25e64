"""Prometheus metrics of one peer, in Qdrant's names where Qdrant has one, served at ``/metrics``.

Request metrics are recorded by the REST error middleware (one call per request, label children
cached); collection gauges are refreshed from the table of contents when ``/metrics`` is scraped.
Each ``Metrics`` owns its registry, so tests and several in-process peers do not collide.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
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

import qcluster

CONTENT_TYPE = CONTENT_TYPE_LATEST
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass(frozen=True, slots=True)
class CollectionStats:
    name: str
    points: int
    vectors: int
    indexed_vectors: int
    segments: int


class Metrics:
    def __init__(self) -> None:
        disable_created_metrics()  # type: ignore[no-untyped-call]  # Qdrant has no *_created series
        self.registry = CollectorRegistry(auto_describe=True)
        self.started = time.time()
        r = self.registry
        info = Gauge("app_info", "Information about the qcluster server", ["name", "version"], registry=r)
        info.labels("qcluster", qcluster.__version__).set(1)
        Gauge("app_status_recovery_mode", "Whether the peer is in recovery mode", registry=r).set(0)
        self.uptime = Gauge("app_uptime_seconds", "Seconds since the peer started", registry=r)
        self.collections = Gauge("collections_total", "Number of collections", registry=r)
        self.vectors_total = Gauge(
            "collections_vector_total", "Total number of vectors in all collections", registry=r
        )
        self.points = Gauge("collection_points", "Points per collection", ["collection"], registry=r)
        self.indexed = Gauge(
            "collection_indexed_vectors", "Indexed vectors per collection", ["collection"], registry=r
        )
        self.segments = Gauge("collection_segments", "Segments per collection", ["collection"], registry=r)
        labels = ["method", "endpoint", "status"]
        self._responses = Counter("rest_responses", "REST responses", labels, registry=r)
        self._failures = Counter(
            "rest_responses_fail", "REST responses with a 4xx or 5xx status", labels, registry=r
        )
        self._duration = Histogram(
            "rest_responses_duration_seconds",
            "REST request duration",
            ["method", "endpoint"],
            buckets=_BUCKETS,
            registry=r,
        )
        self._children: dict[tuple[str, str, int], tuple[Any, Any, Any]] = {}
        self.cluster_enabled = Gauge("cluster_enabled", "Whether cluster mode is enabled", registry=r)
        self.cluster_peers = Gauge("cluster_peers_total", "Peers in the cluster state", registry=r)
        self.cluster_term = Gauge("cluster_term", "Current Raft term", registry=r)
        self.cluster_commit = Gauge("cluster_commit", "Raft commit index", registry=r)
        self.cluster_applied = Gauge("cluster_applied", "Raft log index applied on this peer", registry=r)
        self.cluster_pending = Gauge(
            "cluster_pending_operations_total", "Operations proposed here and not yet applied", registry=r
        )
        self.cluster_voter = Gauge("cluster_voter", "Whether this peer votes in Raft", registry=r)
        self.cluster_leader = Gauge(
            "cluster_leader_peer_id", "Peer id of the Raft leader (0: unknown)", registry=r
        )
        self.cluster_is_leader = Gauge(
            "cluster_is_leader", "Whether this peer is the Raft leader", registry=r
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

    def observe_request(self, method: str, endpoint: str, status: int, seconds: float) -> None:
        key = (method, endpoint, status)
        children = self._children.get(key)
        if children is None:
            fail = self._failures.labels(method, endpoint, str(status)) if status >= 400 else None
            children = (
                self._responses.labels(method, endpoint, str(status)),
                fail,
                self._duration.labels(method, endpoint),
            )
            self._children[key] = children
        ok, fail, duration = children
        ok.inc()
        if fail is not None:
            fail.inc()
        duration.observe(seconds)

    def observe_loop_lag(self, seconds: float) -> None:
        self._loop_lag.observe(seconds)
        self._lag_window = max(self._lag_window, seconds)

    def set_collections(self, stats: Iterable[CollectionStats]) -> None:
        stats = list(stats)
        self.uptime.set(time.time() - self.started)
        self.collections.set(len(stats))
        self.vectors_total.set(sum(s.vectors for s in stats))
        for gauge in (self.points, self.indexed, self.segments):
            gauge.clear()
        for s in stats:
            self.points.labels(s.name).set(s.points)
            self.indexed.labels(s.name).set(s.indexed_vectors)
            self.segments.labels(s.name).set(s.segments)

    def set_cluster(self, health: dict[str, Any] | None, peers: int) -> None:
        """Raft figures from the consensus service's ``health()`` (None: single-peer mode)."""
        self.cluster_enabled.set(0 if health is None else 1)
        if health is None:
            return
        self.cluster_peers.set(peers)
        self.cluster_term.set(health["term"])
        self.cluster_commit.set(health["commit"])
        self.cluster_applied.set(health["applied_index"])
        self.cluster_pending.set(health["pending_operations"])
        self.cluster_voter.set(1 if health["is_voter"] else 0)
        self.cluster_leader.set(health["leader_peer_id"])
        self.cluster_is_leader.set(1 if health["leader_peer_id"] == health["peer_id"] else 0)

    def exposition(self) -> bytes:
        self._loop_lag_max.set(self._lag_window)
        self._lag_window = 0.0
        out: bytes = generate_latest(self.registry)
        return out
