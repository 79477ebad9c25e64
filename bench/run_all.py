"""Run every benchmark in its own virtual environment and record the results in BENCHMARKS.md.

    python bench/run_all.py [--quick]

Creates ``bench/.venv`` once (qcluster itself plus the reference engines qdrant-edge-py,
chromadb and the qdrant-client used for loading; never dependencies of the package), then runs
engine.py, filtered.py and rest.py with it and rewrites the results section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import venv
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
VENV = HERE / ".venv"
PY = VENV / "bin" / "python"
STAMP = VENV / ".bench-installed"
REFERENCE_PACKAGES = ["qdrant-edge-py>=0.9,<1", "chromadb>=1.5,<2", "qdrant-client==1.20.0"]
START, END = "<!-- results:start -->", "<!-- results:end -->"


def ensure_venv() -> None:
    if STAMP.exists():
        return
    print("creating bench/.venv with the reference engines (once)...", file=sys.stderr)
    venv.EnvBuilder(with_pip=True).create(VENV)
    subprocess.run([str(PY), "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
    subprocess.run([str(PY), "-m", "pip", "install", "-q", "-e", str(REPO), *REFERENCE_PACKAGES], check=True)
    STAMP.touch()


def fmt(v: object, digits: int = 0) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    return str(v)


def render(results: dict[str, dict]) -> str:
    lines = []
    e, f, r = results.get("engine"), results.get("filtered"), results.get("rest")
    any_res = e or f or r or {}
    m = any_res.get("machine", {})
    lines.append(
        f"Measured {m.get('date', '?')} on {m.get('nproc', '?')} cores ({m.get('cpu', '?')}), "
        f"Python {m.get('python', '?')}.\n"
    )
    if e:
        lines += [
            f"### Shard engine ({e['n']:,} x {e['dim']} clustered, cosine, M=16, ef_construct=100, one query per call)\n",
            "| engine | QPS ef64 | QPS ef128 | QPS ef256 | recall@10 ef128 | ingest pts/s | fully indexed (s) |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, key in (
            ("qcluster LocalShard", "qcluster"),
            ("raw FAISS HNSW", "faiss"),
            ("qdrant-edge-py", "qdrant_edge"),
        ):
            d = e.get(key, {})
            lines.append(
                f"| {name} | {fmt(d.get('ef64', {}).get('qps'))} | {fmt(d.get('ef128', {}).get('qps'))} | "
                f"{fmt(d.get('ef256', {}).get('qps'))} | {fmt(d.get('ef128', {}).get('recall_at_10'), 4)} | "
                f"{fmt(d.get('ingest_points_per_s'))} | {fmt(d.get('index_build_s'), 1)} |"
            )
        mem = e.get("memory_bytes_per_vector") or {}
        lines.append(
            f"\nIndex memory per vector: plain {fmt(mem.get('plain'))} B, SQ8 {fmt(mem.get('sq8'))} B, "
            f"PQ x16 {fmt(mem.get('pq'))} B. Reopen of the shard: {fmt(e.get('reopen_s'), 2)} s.\n"
        )
    if f:
        lines += [
            f"### Filtered search ({f['n']:,} points, ef 128, limit 10)\n",
            "| selectivity | correlated | qcluster recall | qcluster QPS | p50 / p99 ms | FAISS+selector recall | "
            "FAISS QPS | qdrant-edge recall | qdrant-edge QPS |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for row in f["rows"]:
            lines.append(
                f"| {row['selectivity']:.1%} | {row['correlated']} | {fmt(row['recall_at_10'], 3)} | "
                f"{fmt(row['qps'])} | {fmt(row['p50_ms'], 2)} / {fmt(row['p99_ms'], 2)} | "
                f"{fmt(row['faiss_recall_at_10'], 3)} | {fmt(row['faiss_qps'])} | "
                f"{fmt(row['qdrant_edge_recall_at_10'], 3)} | {fmt(row['qdrant_edge_qps'])} |"
            )
        lines.append(
            f"\nUnfiltered: qcluster {fmt(f.get('unfiltered_qps'))} QPS, qdrant-edge "
            f"{fmt(f.get('qdrant_edge_unfiltered_qps'))} QPS.\n"
        )
    if r:
        lines += [
            f"### REST ({r['n']:,} x 128, ef 128, lean keep-alive HTTP client in a separate process)\n",
            "| server | QPS 1 client | p99 ms 1 client | QPS 16 clients | recall@10 | ingest pts/s |",
            "|---|---|---|---|---|---|",
            f"| qcluster serve | {fmt(r.get('qps_1_client'))} | {fmt(r.get('p99_ms_1_client'), 2)} | "
            f"{fmt(r.get('qps_16_clients'))} | {fmt(r.get('recall_at_10'), 4)} | {fmt(r.get('ingest_points_per_s'))} |",
            f"| chroma run | {fmt(r.get('chroma_qps_1_client'))} | {fmt((r.get('chroma') or {}).get('p99_ms_1_client'), 2)} | "
            f"{fmt(r.get('chroma_qps_16_clients'))} | {fmt(r.get('chroma_recall_at_10'), 4)} | "
            f"{fmt(r.get('chroma_ingest_points_per_s'))} |",
            f"\nqdrant-client driving qcluster (1 client): {fmt(r.get('qdrant_client_qps_1_client'))} QPS; "
            f"qdrant-edge-py in process, no HTTP: {fmt(r.get('qdrant_edge_qps_1_client'))} QPS.\n",
        ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", choices=["engine", "filtered", "rest"], default=None)
    ap.add_argument("--render", action="store_true", help="only rewrite BENCHMARKS.md from bench/results")
    args = ap.parse_args()
    if not args.render:
        ensure_venv()
    out_dir = HERE / "results"
    out_dir.mkdir(exist_ok=True)
    suffix = "-quick" if args.quick else ""
    results: dict[str, dict] = {}
    for name in ("engine", "filtered", "rest"):
        path = out_dir / f"{name}{suffix}.json"
        if not args.render and args.only in (None, name):
            print(f"== {name}", file=sys.stderr)
            cmd = [str(PY), str(HERE / f"{name}.py"), "--json", str(path)] + (
                ["--quick"] if args.quick else []
            )
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        if path.exists():
            results[name] = json.loads(path.read_text())
    doc = REPO / "BENCHMARKS.md"
    text = doc.read_text() if doc.exists() else f"# Benchmarks\n\n{START}\n{END}\n"
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    section = f"{START}\n## Results{' (quick)' if args.quick else ''}\n\n{render(results)}\n{END}"
    doc.write_text(head + section + tail)
    print(f"results written to {doc}", file=sys.stderr)


if __name__ == "__main__":
    main()
