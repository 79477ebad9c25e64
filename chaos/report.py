"""Reports: each campaign's summary JSON is kept in ``chaos/results/<campaign>.json`` (the latest
run), and ``CHAOS.md`` at the repo root is rebuilt from all of them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
CHAOS_MD = Path(__file__).parent.parent / "CHAOS.md"

HEADER = """# Chaos campaigns

Latest results of `make chaos` (`python -m chaos run`), rebuilt from `chaos/results/*.json` by
every run. Each campaign starts real peers, each in its own network namespace with its own address
and the standard ports, runs concurrent clients through random peers while faults are injected,
heals everything, waits for the replicas to converge, and checks the recorded history against the
state read from every replica (see `chaos/checker.py` for the invariants). Replay any run with
`python -m chaos run CAMPAIGN --seed SEED --duration S`.

Columns: operations sent / acknowledged (ok) / indeterminate (timeouts, 5xx); faults injected (by
kind); violations by kind (lost acknowledged writes, resurrected deletes, divergent replica groups,
other); time from the end of the faults until every replica group agrees and is Active.

Violations found by these campaigns and fixed in the product (each with a regression test):

- a full disk killed the peer with SIGBUS (pysyncobj's Raft journal wrote through a sparse mmap):
  the journal now grows into allocated blocks, so a full disk is an error the peer survives
  (`qcluster/consensus/journal.py`, `tests/unit/test_raft_journal.py`);
- one collection whose local files could not be opened (left half-deleted by an interrupted delete)
  stopped every later metadata reconcile on that peer, so its aliases never converged: the
  reconcile now carries on past it (`tests/unit/test_metadata_sync_reconcile.py`).

- a peer restarted by `kill -9` coordinated writes before it had caught up with the cluster
  state: with its old view it applied them to its own replica, which the cluster had marked Dead;
  the recovery then replayed the older writes it had missed on top, and points went back to older
  values on that replica only (lost + divergent, quick campaign seeds 1601/1602). Now a peer
  coordinates writes only once it caught up with the leader after its start (503 before), and a
  `wal_delta` recovery falls back to a full copy when the target holds a write applied ahead of
  ones it lacks (`tests/integration/test_local_shard.py`, and the quick campaign is strict in
  `tests/e2e/test_chaos_quick.py`);
- the metadata reconcile iterated the live collection map across awaits ("dictionary changed size
  during iteration" in the peers' logs): it walks a copy.
- a transfer source cut off right after its finish committed acknowledged writes its forward proxy
  could not deliver, so the new `Active` replica lacked them (quick campaign): a missed forward now
  marks the target `Dead` through consensus before the write is acknowledged, and the write fails
  when that cannot be agreed (`tests/unit/test_forward_proxy.py`);
- a recovery agreed while the previous transfer of the same shard to the same peer still waited for
  every peer to confirm its finish never got a driver, so its target stayed `Partial` (`points`
  campaign, not converged): it starts once the previous one ends
  (`tests/unit/test_transfer_driver_tasks.py`);
- during partitions, two coordinators with stale views each marked the other's replicas `Dead`
  after a failed write, until a shard had no `Active` replica left, and each acknowledged a write
  that no `Active` replica held (`points-partition` seed 7208: lost, resurrected, divergent). The
  proposal to mark a replica `Dead` now names the replicas that took the write, and consensus
  refuses it once none of them still takes writes: the write fails instead
  (`tests/unit/test_cluster_state.py`);
- a replica rebuilt by `stream_records` holds copies of points in its WAL, not the writes (no
  deletes), yet served `wal_delta` to another replica by replaying them: deletes that replica had
  missed never came (`points-partition` seed 7209: 29 resurrected points on an `Active` replica).
  The WAL now serves a replay only from after the transfer merged its clock map, a floor kept in
  the shard manifest (`tests/unit/test_wal_history.py`, `tests/integration/test_local_shard.py`).

"""


def save(report: dict[str, Any], results: Path = RESULTS) -> Path:
    results.mkdir(parents=True, exist_ok=True)
    path = results / f"{report['campaign']}.json"
    path.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    return path


def _faults(r: dict[str, Any]) -> str:
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(r["faults_by_kind"].items()))
    return f"{r['faults']} ({kinds})" if kinds else "0"


def _other(r: dict[str, Any]) -> str:
    rest = {k: n for k, n in r["violations_by_kind"].items() if k not in ("lost", "resurrected", "divergent")}
    return ", ".join(f"{k} {n}" for k, n in sorted(rest.items())) or "0"


def render(reports: list[dict[str, Any]]) -> str:
    lines = [
        "| campaign | seed | duration | faults | ops | acknowledged | indeterminate | lost | resurrected "
        "| divergent | other violations | time to converge |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    notes = []
    for r in sorted(reports, key=lambda r: r["campaign"]):
        conv = r["recovery"]
        converge = f"{r['recovery_s']} s" if conv.get("converged") else f"not within {conv.get('deadline')} s"
        if conv.get("points_not_converged"):
            converge += " (metadata only: point replicas left Dead)"
        lines.append(
            f"| {r['campaign']} | {r['seed']} | {r['duration_s']:.0f} s | {_faults(r)} | {r['operations']} "
            f"| {r['acknowledged']} | {r['indeterminate']} | {r['lost']} | {r['resurrected']} | {r['divergent']} "
            f"| {_other(r)} | {converge} |"
        )
        if r.get("expected_violations_note"):
            note = r["expected_violations_note"]
            if "partial_across_shards" in r["violations_by_kind"]:
                note += (
                    "; a batch upsert spanning both shards that failed on one shard (no writable replica"
                    " left) was applied on the other and answered 500 (partial_across_shards: atomic per"
                    " shard, as in Qdrant)"
                )
            notes.append(f"- `{r['campaign']}`: {note}.")
        if r.get("fault_mechanisms"):
            notes.append(f"- `{r['campaign']}` link faults: {', '.join(r['fault_mechanisms'])}.")
    text = HEADER + "\n".join(lines) + "\n"
    if notes:
        text += "\nNotes:\n\n" + "\n".join(notes) + "\n"
    return text


def rebuild(results: Path = RESULTS, out: Path = CHAOS_MD) -> None:
    reports = [json.loads(p.read_text()) for p in sorted(results.glob("*.json"))]
    out.write_text(render(reports))
