"""The quick chaos campaign end to end: three peers in their own network namespaces, clients
through random peers, kill -9, pauses, partitions and slow/lossy links, then the checker over the
history and every replica's final state. Needs root, ``ip``, ``tc`` and ``nft``: skipped otherwise.

Metadata (collections, aliases, keys) must come out with no violation, and every acknowledged point
write must be on every Active replica. Until Dead replicas are recovered (``RECOVERY``: shard
transfers), a replica marked Dead during the faults stays Dead and behind: the checker must report
exactly that (not Active, divergent); once recovery lands, nothing at all. The long campaigns run
with ``make chaos`` and ``-m slow``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from chaos.campaign import CAMPAIGNS, DATA_PLANE, QUICK, RECOVERY, Run
from chaos.netns import unavailable_reason

REASON = unavailable_reason()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"namespaced chaos: {REASON}")


def test_quick_campaign(tmp_path: Path) -> None:
    report = Run(dataclasses.replace(QUICK, duration=20.0), seed=1601, workdir=tmp_path).execute()
    assert set(report["fault_kinds"]) == {"kill", "pause", "partition", "netem"}
    assert report["acknowledged"] > 100, report
    assert report["unexpected_violations"] == 0, report["violations"]
    assert report["recovery"]["converged"], report["recovery"]
    found = set(report["violations_by_kind"])
    if DATA_PLANE and RECOVERY:
        assert not found, report["violations"]
    elif DATA_PLANE:
        assert found <= {"not_active", "divergent"}, report["violations"]
        assert all(str(v.get("group", "pt:")).startswith("pt:") for v in report["violations"])
    else:
        assert report["lost"] > 0 and report["divergent"] >= 1, report["violations_by_kind"]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CAMPAIGNS))
def test_campaign_soak(tmp_path: Path, name: str) -> None:
    report = Run(dataclasses.replace(CAMPAIGNS[name], duration=120.0), seed=16, workdir=tmp_path).execute()
    assert report["unexpected_violations"] == 0, report["violations"]
