"""Before / after tables from two result files of the same benchmark (filtered or engine), each
run with qcluster and its peer engines side by side. The comparable figure across the two runs is
the per-run ratio to the peer engine (both runs share the machine, not its load).

    python bench/compare.py BEFORE.json AFTER.json [--labels before,after]

Standard library only; prints markdown.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def _f(v: Any, digits: int = 0) -> str:
    return "n/a" if v is None else f"{v:,.{digits}f}"


def _ratio(row: dict[str, Any]) -> str:
    med = row.get("ratio_vs_edge")
    if med is None:
        return "n/a"
    return f"{med:.2f}x ({row['ratio_vs_edge_min']:.2f} to {row['ratio_vs_edge_max']:.2f})"


def filtered(before: dict[str, Any], after: dict[str, Any], labels: tuple[str, str]) -> list[str]:
    b, a = labels
    lines = [
        f"| filter | selectivity | {b}: qcluster QPS / recall | {b}: qdrant-edge QPS | {b}: ratio | "
        f"{a}: qcluster QPS / recall | {a}: qdrant-edge QPS | {a}: ratio | {a}: short |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    rows_b = [*before.get("rows", []), before.get("unfiltered") or {}]
    rows_a = [*after.get("rows", []), after.get("unfiltered") or {}]
    for rb, ra in zip(rows_b, rows_a, strict=True):
        if not ra:
            continue
        lines.append(
            f"| {ra['kind']} | {ra['selectivity']:.1%} | {_f(rb.get('qps'))} / {_f(rb.get('recall_at_10'), 3)} | "
            f"{_f(rb.get('qdrant_edge_qps'))} | {_ratio(rb)} | {_f(ra.get('qps'))} / {_f(ra.get('recall_at_10'), 3)} | "
            f"{_f(ra.get('qdrant_edge_qps'))} | {_ratio(ra)} | {_f(ra.get('short_results'))} |"
        )
    return lines


def engine(before: dict[str, Any], after: dict[str, Any], labels: tuple[str, str]) -> list[str]:
    lines = [
        "| run | ef | qcluster QPS | qdrant-edge QPS | FAISS QPS | qcluster / qdrant-edge | qcluster / FAISS | recall@10 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, r in zip(labels, (before, after), strict=True):
        q, e, fa = r.get("qcluster") or {}, r.get("qdrant_edge") or {}, r.get("faiss") or {}
        for ef in (64, 128, 256):
            qe, ee, fe = q.get(f"ef{ef}") or {}, e.get(f"ef{ef}") or {}, fa.get(f"ef{ef}") or {}

            def spread(key: str, qe: dict[str, Any] = qe) -> str:
                s = qe.get(key) or {}
                if s.get("median") is None:
                    return "n/a"
                return f"{s['median']:.2f}x ({s['min']:.2f} to {s['max']:.2f})"

            lines.append(
                f"| {label} | {ef} | {_f(qe.get('qps'))} | {_f(ee.get('qps'))} | {_f(fe.get('qps'))} | "
                f"{spread('ratio_vs_qdrant_edge')} | {spread('ratio_vs_faiss')} | {_f(qe.get('recall_at_10'), 4)} |"
            )
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--labels", default="before,after")
    args = ap.parse_args()
    before, after = (json.loads(Path(p).read_text()) for p in (args.before, args.after))
    labels = tuple(args.labels.split(",", 1))
    assert len(labels) == 2
    kind = after.get("benchmark")
    table = filtered if kind == "filtered" else engine
    for m, label in ((before.get("machine") or {}, labels[0]), (after.get("machine") or {}, labels[1])):
        print(
            f"- {label}: commit {m.get('commit')}, {m.get('date')}, load average {_f(m.get('load_avg_1m'), 1)}"
        )
    print()
    print("\n".join(table(before, after, (labels[0], labels[1]))))


if __name__ == "__main__":
    main()
