"""The planner's plan counts reach ``/metrics`` (``qcluster_search_plans_total{plan}``)."""

from __future__ import annotations

from qcluster.metrics import Metrics
from qcluster.shards import search_stats


def _value(text: str, plan: str) -> float:
    line = next(
        ln for ln in text.splitlines() if ln.startswith(f'qcluster_search_plans_total{{plan="{plan}"}}')
    )
    return float(line.rsplit(" ", 1)[1])


def test_plan_counts_are_exposed_for_every_plan() -> None:
    metrics = Metrics()
    before = metrics.exposition().decode()
    assert all(f'plan="{p}"' in before for p in search_stats.PLANS)
    search_stats.record("payload_graph", 3)
    search_stats.record("fallback_region")
    after = metrics.exposition().decode()
    assert _value(after, "payload_graph") == _value(before, "payload_graph") + 3
    assert _value(after, "fallback_region") == _value(before, "fallback_region") + 1
    assert _value(after, "exact") == _value(before, "exact")
