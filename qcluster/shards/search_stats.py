"""Process-wide counts of the plans the segment search planner chose (served at ``/metrics`` as
``qcluster_search_plans_total{plan}``). Shards only count; the metrics module reads.

Plans (``segment_search.py``):
- ``unfiltered``: the ANN graph, no filter (deleted points masked out when there are any);
- ``exact``: exact scoring of the allowed points (small filters, unindexed segments, ``exact``);
- ``graph``: the main HNSW graph walked with the filter as a selector, beam widened;
- ``postfilter``: a plain walk of the main graph for ``k / share`` neighbours, keeping the allowed
  ones (filters that allow a large share of the segment);
- ``payload_graph``: the per-value graph of a keyword / integer / uuid / bool field;
- ``empty``: the filter matches nothing in the segment;
- ``fallback_short`` / ``fallback_region``: a walk re-planned to exact scoring because it came back
  short, or because the filter excludes the query's region (few allowed points among its plain
  neighbours, or probes of the allowed set closer than what it returned).
"""

from __future__ import annotations

import threading
from collections import Counter

PLANS = (
    "unfiltered",
    "exact",
    "graph",
    "postfilter",
    "payload_graph",
    "empty",
    "fallback_short",
    "fallback_region",
)
# One counter per thread that searches (only that thread writes it: no lock on the hot path);
# a snapshot adds them up. Counters outlive their threads, so counts never go down.
_local = threading.local()
_counters: list[Counter[str]] = []
_lock = threading.Lock()


def record(plan: str, queries: int = 1) -> None:
    try:
        counts: Counter[str] = _local.counts
    except AttributeError:
        counts = _local.counts = Counter()
        with _lock:
            _counters.append(counts)
    counts[plan] += queries


def snapshot() -> dict[str, int]:
    """Every plan with its count so far (zeros included)."""
    with _lock:
        counters = list(_counters)
    return {p: sum(c.get(p, 0) for c in counters) for p in PLANS}
