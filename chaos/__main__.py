"""``python -m chaos``: run chaos campaigns against real peers in network namespaces (root).

    python -m chaos list
    python -m chaos run [CAMPAIGN ...] [--quick] [--duration S] [--seed N] [--json PATH]
                        [--workdir DIR] [--no-save]
    python -m chaos check HISTORY FINAL_STATE_JSON

``run`` with no campaign runs them all; ``--quick`` runs the short campaign (about a minute).
Each run prints its seed; ``--seed`` replays it. Results go to ``chaos/results/`` and ``CHAOS.md``
unless ``--no-save`` (``--quick`` never saves). Exit status 1 when a violation was found that the
campaign does not expect, 2 when the machine cannot run namespaced peers.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

from chaos import checker, report
from chaos.campaign import CAMPAIGNS, QUICK, Campaign, Run
from chaos.history import load
from chaos.netns import unavailable_reason


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m chaos", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="list the campaigns")
    run = sub.add_parser("run", help="run campaigns")
    run.add_argument("campaigns", nargs="*", metavar="CAMPAIGN", help=f"any of {', '.join(CAMPAIGNS)}")
    run.add_argument("--quick", action="store_true", help="the short campaign (about a minute)")
    run.add_argument("--duration", type=float, help="seconds of faults per campaign")
    run.add_argument("--seed", type=int, help="replay a run")
    run.add_argument("--json", type=Path, help="write the summary (one campaign) or a list here")
    run.add_argument("--workdir", type=Path, help="keep peers' storage, logs and histories here")
    run.add_argument("--no-save", action="store_true", help="do not update chaos/results and CHAOS.md")
    chk = sub.add_parser("check", help="check a saved history against a saved final state")
    chk.add_argument("history", type=Path)
    chk.add_argument("final", type=Path)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.cmd == "list":
        for c in [QUICK, *CAMPAIGNS.values()]:
            print(f"{c.name:18} {c.duration:5.0f} s  faults: {', '.join(c.faults)}  -- {c.description}")
        return 0
    if args.cmd == "check":
        violations = checker.check(load(args.history), json.loads(args.final.read_text()))
        print(json.dumps({"violations": violations, "by_kind": checker.summarize(violations)}, indent=2))
        return 1 if violations else 0
    unknown = [n for n in args.campaigns if n not in CAMPAIGNS]
    if unknown:
        print(f"chaos: unknown campaign(s) {unknown}; known: {', '.join(CAMPAIGNS)}", file=sys.stderr)
        return 2
    reason = unavailable_reason()
    if reason:
        print(f"chaos: cannot run namespaced peers here: {reason}", file=sys.stderr)
        return 2
    campaigns: list[Campaign] = [QUICK] if args.quick else [CAMPAIGNS[n] for n in args.campaigns or CAMPAIGNS]
    if args.duration:
        campaigns = [dataclasses.replace(c, duration=args.duration) for c in campaigns]
    seed = args.seed if args.seed is not None else random.randrange(1, 10**6)
    root = args.workdir or Path(tempfile.mkdtemp(prefix="qcluster-chaos-"))
    reports: list[dict[str, Any]] = []
    for c in campaigns:
        r = Run(c, seed, root / c.name).execute()
        reports.append(r)
        if not args.quick and not args.no_save:
            report.save(r)
    if not args.quick and not args.no_save:
        report.rebuild()
    if args.json:
        args.json.write_text(json.dumps(reports[0] if len(reports) == 1 else reports, indent=2) + "\n")
    print(f"seed {seed}; peers' logs and histories in {root}", file=sys.stderr)
    return 1 if any(r["unexpected_violations"] for r in reports) else 0


if __name__ == "__main__":
    sys.exit(main())
