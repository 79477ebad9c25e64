"""The quick chaos campaign end to end: three peers in their own network namespaces, clients
through random peers, kill -9, pauses, partitions and slow/lossy links, then the checker over the
history and every replica's final state. Needs root, ``ip``, ``tc`` and ``nft``: skipped otherwise.

Metadata (collections, aliases, keys), Raft leaders, peer processes and point data must come out
with no violation: every acknowledged write on every replica once recovery returned them to
Active. The long campaigns run with ``make chaos`` and ``-m slow``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from chaos import checker
from chaos.campaign import CAMPAIGNS, QUICK, Run
from chaos.history import load
from chaos.netns import unavailable_reason

REASON = unavailable_reason()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"namespaced chaos: {REASON}")


def test_quick_campaign(tmp_path: Path) -> None:
    report = Run(dataclasses.replace(QUICK, duration=20.0), seed=1601, workdir=tmp_path).execute()
    assert set(report["fault_kinds"]) == {"kill", "pause", "partition", "netem"}
    assert report["acknowledged"] > 100, report
    # metadata, leaders, crashes: strict
    final = json.loads((tmp_path / "final.json").read_text())
    meta = {**final, "replicas": [r for r in final["replicas"] if r["group"] == "meta"], "inactive": []}
    meta["recovery"] = {}
    records = [r for r in load(tmp_path / "history.jsonl") if not _touches_points(r)]
    assert checker.check(records, meta) == []
    # point data: every invariant, Dead replicas recovered and converged (strict)
    assert report["violations"] == [], report["violations"][:5]
    assert report["unexpected_violations"] == 0, report["violations"]


def _touches_points(record: dict[str, object]) -> bool:
    effects = record.get("effects") or {}
    return isinstance(effects, dict) and any(str(o).startswith("pt:") for o in effects)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CAMPAIGNS))
def test_campaign_soak(tmp_path: Path, name: str) -> None:
    report = Run(dataclasses.replace(CAMPAIGNS[name], duration=120.0), seed=16, workdir=tmp_path).execute()
    assert report["unexpected_violations"] == 0, report["violations"]
