"""Run every benchmark in the benchmark virtual environment and record the results.

    python bench/run_all.py [--quick] [--only engine|filtered|memory|rest|grpc_api|consensus|cluster|transfer]
                            [--skip-qcluster] [--no-doc]

1. Creates ``bench/.venv`` once (qcluster installed editable, plus the benchmark-only reference
   packages qdrant-edge-py, chromadb, faiss-cpu and the pinned qdrant-client used for loading;
   none of them is a dependency of the package). A stamp file records what was installed, so a
   second run installs nothing unless this list or pyproject.toml changed.
2. Runs every benchmark of ``BENCHMARKS`` with that interpreter (``--quick`` passed through),
   each bounded by a timeout; their JSON goes to ``bench/results/<name>[-quick].json``.
3. Rewrites the section of BENCHMARKS.md between ``<!-- results:start -->`` and
   ``<!-- results:end -->`` from every results file present (full-size and quick runs are kept
   apart, each with its date and machine).

Standard library only, so any Python 3.11 can start it (the Makefile uses .venv/bin/python).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
import venv
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
VENV = HERE / ".venv"
PY = VENV / "bin" / "python"
STAMP = VENV / ".bench-stamp"
REFERENCE_PACKAGES = [
    "qdrant-edge-py>=0.9,<1",
    "chromadb>=1.5,<2",
    "faiss-cpu>=1.8,<2",
    "qdrant-client==1.20.0",
]
BENCHMARKS = ("engine", "filtered", "memory", "rest", "grpc_api", "consensus", "cluster", "transfer")
TIMEOUT_S = {True: 300, False: 3600}  # per benchmark, quick / full
START, END = "<!-- results:start -->", "<!-- results:end -->"


def log(msg: str) -> None:
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


def _stamp_text() -> str:
    h = hashlib.sha256()
    h.update("\n".join(REFERENCE_PACKAGES).encode())
    h.update((REPO / "pyproject.toml").read_bytes())
    return h.hexdigest()


def ensure_venv() -> None:
    """Create/refresh bench/.venv; idempotent (nothing is installed when the stamp matches)."""
    want = _stamp_text()
    if PY.exists() and STAMP.exists() and STAMP.read_text().strip() == want:
        return
    if not PY.exists():
        log("creating bench/.venv (once) ...")
        venv.EnvBuilder(with_pip=True).create(VENV)
    log("installing qcluster (editable) and the reference engines into bench/.venv ...")
    t0 = time.perf_counter()
    subprocess.run([str(PY), "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
    subprocess.run(
        [str(PY), "-m", "pip", "install", "--progress-bar", "off", "-e", str(REPO), *REFERENCE_PACKAGES],
        check=True,
    )
    STAMP.write_text(want + "\n")
    log(f"bench/.venv ready in {time.perf_counter() - t0:.0f} s")


def run_benchmark(name: str, quick: bool, extra: list[str]) -> Path | None:
    out = HERE / "results" / f"{name}{'-quick' if quick else ''}.json"
    out.parent.mkdir(exist_ok=True)
    cmd = [str(PY), str(HERE / f"{name}.py"), "--json", str(out), *(["--quick"] if quick else []), *extra]
    log(f"\n=== {name}{' (quick)' if quick else ''}: {' '.join(cmd[1:])}")
    t0 = time.perf_counter()
    try:
        subprocess.run(cmd, check=True, timeout=TIMEOUT_S[quick], cwd=REPO)
    except subprocess.TimeoutExpired:
        log(f"=== {name}: timed out after {TIMEOUT_S[quick]} s")
        return None
    except subprocess.CalledProcessError as exc:
        log(f"=== {name}: failed with exit code {exc.returncode}")
        return None
    log(f"=== {name}: done in {time.perf_counter() - t0:.0f} s -> {out.relative_to(REPO)}")
    return out


# ------------------------------------------------------------------ BENCHMARKS.md rendering


def f(v: Any, digits: int = 0) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float | int) and not isinstance(v, bool):
        return f"{v:,.{digits}f}"
    return str(v)


def ratio(a: Any, b: Any) -> str:
    return f"{a / b:.2f}x" if isinstance(a, float | int) and isinstance(b, float | int) and b else "n/a"


def errors(r: dict[str, Any], keys: tuple[str, ...]) -> list[str]:
    return [f"\n*{r[k]['error']}*" for k in keys if isinstance(r.get(k), dict) and "error" in r[k]]


def header(r: dict[str, Any]) -> str:
    m = r.get("machine", {})
    return (
        f"{r.get('dataset', 'clustered (an earlier generator)')}, {f(r.get('n'))} points x {r.get('dim', '?')}, "
        f"{f(r.get('queries'))} queries; measured {m.get('date', '?')} on {m.get('nproc', '?')} cores "
        f"({m.get('cpu', '?')}), Python {m.get('python', '?')}, load {f(m.get('load_avg_1m'), 1)}."
    )


def render_engine(r: dict[str, Any]) -> list[str]:
    def at(d: dict[str, Any], key: str, ef: int = 128) -> Any:
        return (d.get(f"ef{ef}") or {}).get(key)

    lines = [
        "#### Shard engine (`bench/engine.py`): one query per call, M=16, ef_construct=100, cosine\n",
        header(r) + "\n",
        "| engine | QPS ef64 | QPS ef128 | QPS ef256 | recall@10 ef64 / 128 / 256 | p99 ms ef128 "
        "| ingest pts/s | fully indexed s | reopen s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, key in (
        ("qcluster LocalShard", "qcluster"),
        ("raw FAISS HNSW", "faiss"),
        ("qdrant-edge-py", "qdrant_edge"),
    ):
        d = r.get(key) or {}
        recalls = " / ".join(f(at(d, "recall_at_10", ef), 4) for ef in (64, 128, 256))
        lines.append(
            f"| {name} | {f(at(d, 'qps', 64))} | {f(at(d, 'qps'))} | {f(at(d, 'qps', 256))} | {recalls} | "
            f"{f(at(d, 'p99_ms'), 2)} | {f(d.get('ingest_points_per_s'))} | {f(d.get('index_build_s'), 1)} | "
            f"{f(d.get('reopen_s'), 2)} |"
        )
    q, fa, e = r.get("qcluster") or {}, r.get("faiss") or {}, r.get("qdrant_edge") or {}
    qm, fm = q.get("memory_bytes_per_vector") or {}, fa.get("memory_bytes_per_vector") or {}

    def per_run(other: str) -> str:
        spread = (q.get("ef128") or {}).get(f"ratio_vs_{other}") or {}
        if spread.get("median") is None:
            return ratio(at(q, "qps"), at(fa if other == "faiss" else e, "qps"))
        return f"{spread['median']:.2f}x ({spread['min']:.2f} to {spread['max']:.2f})"

    reps = r.get("repeats")
    lines += [
        "",
        (
            f"Medians of {reps} interleaved repeats (per-repeat ratios, min to max in brackets). "
            if reps
            else ""
        )
        + f"Search QPS at ef 128: qcluster / FAISS = {per_run('faiss')} (target >= 0.8x), "
        f"qcluster / qdrant-edge = {per_run('qdrant_edge')} (target >= 1.2x).",
        "Index memory per vector in bytes (graph + vectors or codes): "
        f"qcluster plain {f(qm.get('plain'))} / SQ8 {f(qm.get('sq8'))} / PQ x16 {f(qm.get('pq'))} "
        f"(SQ8 = {ratio(qm.get('sq8'), qm.get('plain'))} of plain, target <= 0.45x; payload graphs of a "
        f"20-tenant keyword field add {f(qm.get('payload_graph_20_tenants'))}; built on "
        f"{f(r.get('memory_sample'))} points); FAISS plain {f(fm.get('plain'))} / SQ8 {f(fm.get('sq8'))} / "
        f"PQ x16 {f(fm.get('pq'))} (all points); qdrant-edge (no memory figure exposed): segments on disk "
        f"{f(e.get('disk_bytes_per_vector'))}.",
        *errors(r, ("qcluster", "faiss", "qdrant_edge")),
        "",
    ]
    return lines


def _spread(row: dict[str, Any], key: str) -> str:
    lo, hi = row.get(f"{key}_min"), row.get(f"{key}_max")
    if lo is None or hi is None:
        return f(row.get(key))
    return f"{f(row.get(key))} ({f(lo)} to {f(hi)})"


def render_filtered(r: dict[str, Any]) -> list[str]:
    reps = r.get("repeats")
    lines = [
        f"#### Filtered search (`bench/filtered.py`): ef {r.get('ef', 128)}, limit 10\n",
        header(r)
        + (f" Medians of {reps} interleaved repeats (min to max in brackets)." if reps else "")
        + (f" Commit {r['machine']['commit']}." if r.get("machine", {}).get("commit") else "")
        + "\n",
        "| filter | selectivity | matching | qcluster recall | qcluster QPS | short | qdrant-edge recall | "
        "qdrant-edge QPS | qcluster / qdrant-edge | FAISS+selector recall | FAISS QPS |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    rows = list(r.get("rows", []))
    if r.get("unfiltered"):
        rows.append(r["unfiltered"])
    for row in rows:
        kind = row.get("kind") or ("correlated" if row.get("correlated") else "random")
        ratio_txt = ratio(row.get("qps"), row.get("qdrant_edge_qps"))
        if row.get("ratio_vs_edge") is not None:
            ratio_txt = f"{row['ratio_vs_edge']:.2f}x"
            if row.get("ratio_vs_edge_min") is not None:
                ratio_txt += f" ({row['ratio_vs_edge_min']:.2f} to {row['ratio_vs_edge_max']:.2f})"
        lines.append(
            f"| {kind} | {row['selectivity']:.1%} | {f(row.get('matching'))} | {f(row.get('recall_at_10'), 3)} | "
            f"{_spread(row, 'qps')} | {f(row.get('short_results'))} | "
            f"{f(row.get('qdrant_edge_recall_at_10'), 3)} | {_spread(row, 'qdrant_edge_qps')} | {ratio_txt} | "
            f"{f(row.get('faiss_recall_at_10'), 3)} | {f(row.get('faiss_qps'))} |"
        )
    qinfo = (r.get("engines_info") or {}).get("qcluster") or {}
    graphs = qinfo.get("payload_graph_bytes_per_vector") or {}
    values = qinfo.get("payload_graph_values") or {}
    if qinfo:
        linked = ", ".join(
            f"{k} {f(v)} B ({values.get(k, 0)} values linked)" for k, v in graphs.items() if values.get(k)
        )
        lines += [
            "",
            f"qcluster index memory per vector: main graph + vectors {f(qinfo.get('index_bytes_per_vector'))} B; "
            f"payload graphs: {linked or 'none (no value block above the exact-search limit)'}.",
        ]
    lines += [
        "",
        '"short": queries answered with fewer than 10 hits although at least 10 points matched. '
        '"zipf tenants": query i filters on tenant i % 100 of 100 Zipf-sized tenants (`is_tenant` index '
        'in both engines); "largest tenant": the biggest of them.',
    ]
    if not r.get("unfiltered"):
        lines.append(
            f"Unfiltered QPS: qcluster {f(r.get('unfiltered_qps'))}, FAISS {f(r.get('faiss_unfiltered_qps'))}, "
            f"qdrant-edge {f(r.get('qdrant_edge_unfiltered_qps'))}."
        )
    errs = r.get("errors") or {}
    lines += [f"\n*{v['error']}*" for v in errs.values() if isinstance(v, dict) and "error" in v]
    lines += [*errors(r, ("qcluster", "faiss", "qdrant_edge")), ""]
    return lines


def _pick(d: dict[str, Any], *keys: str) -> Any:
    return next((d[k] for k in keys if d.get(k) is not None), None)


def render_rest(r: dict[str, Any]) -> list[str]:
    c, e = r.get("chroma") or {}, r.get("qdrant_edge") or {}
    # qcluster's figures are the top-level keys issue #4 names (present in every version)
    q = {
        "qps_1_client": r.get("qps_1_client"),
        "p50_ms_1": r.get("p50_ms_1_client"),
        "p99_ms_1": r.get("p99_ms_1_client"),
        "qps_16_clients": r.get("qps_16_clients"),
        "p99_ms_16": r.get("p99_ms_16_clients"),
        "recall_at_10": r.get("recall_at_10"),
        "ingest_points_per_s": r.get("ingest_points_per_s"),
    }
    lines = [
        f"#### REST (`bench/rest.py`): ef {r.get('ef', 128)}, lean keep-alive HTTP client in a separate process\n",
        header(r) + "\n",
        "| server | QPS 1 client | p50 / p99 ms 1 client | QPS 16 clients | p99 ms 16 clients | recall@10 | ingest pts/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, d in (("qcluster serve", q), ("chroma run", c)):
        lines.append(
            f"| {name} | {f(d.get('qps_1_client'))} | {f(d.get('p50_ms_1'), 2)} / "
            f"{f(_pick(d, 'p99_ms_1', 'p99_ms_1_client'), 2)} | {f(d.get('qps_16_clients'))} | "
            f"{f(d.get('p99_ms_16'), 1)} | {f(d.get('recall_at_10'), 4)} | {f(d.get('ingest_points_per_s'))} |"
        )
    lines.append(
        f"| qdrant-edge-py, in process (no HTTP) | {f(e.get('qps_1_client'))} | "
        f"{f(e.get('p50_ms_1'), 2)} / {f(e.get('p99_ms_1'), 2)} | n/a | n/a | {f(e.get('recall_at_10'), 4)} | "
        f"{f(e.get('ingest_points_per_s'))} |"
    )
    lines += [
        "",
        f"qdrant-client driving qcluster (1 client, as users see it): {f(r.get('qdrant_client_qps_1_client'))} QPS. "
        f"qcluster / chroma: {ratio(q['qps_1_client'], c.get('qps_1_client'))} with 1 client, "
        f"{ratio(q['qps_16_clients'], c.get('qps_16_clients'))} with 16 (target >= 2x); "
        f"16 / 1 clients: {ratio(q['qps_16_clients'], q['qps_1_client'])} (target >= 1.5x). "
        "qcluster is loaded through qdrant-client, chroma through its REST API.",
        *errors(r, ("qcluster", "chroma", "qdrant_edge")),
        "",
    ]
    return lines


def render_grpc_api(r: dict[str, Any]) -> list[str]:
    rounds = r.get("rounds", "?")
    lines = [
        "#### qdrant-client over gRPC vs over REST (`bench/grpc_api.py`): one `qcluster serve` peer\n",
        header(r) + f" Median of {rounds} rounds, transports alternating.\n",
        "| through qdrant-client | REST | gRPC (`prefer_grpc=True`) | gRPC / REST |",
        "|---|---|---|---|",
    ]
    rows = [
        (f"upsert pts/s, `upload_collection`, batch {b}", f"upsert_batch_{b}") for b in r.get("batches", [])
    ]
    for label, key in (*rows, ("search QPS, `query_points`, 1 client, ef 128", "search_qps")):
        d = r.get(key) or {}
        lines.append(
            f"| {label} | {f(d.get('rest'))} | {f(d.get('grpc'))} | {ratio(d.get('grpc'), d.get('rest'))} |"
        )
    rec = r.get("recall_at_10") or {}
    up = [(r.get(f"upsert_batch_{b}") or {}).get("ratio") for b in r.get("batches", [])]
    lines += [
        "",
        f"recall@10: REST {f(rec.get('rest'), 4)}, gRPC {f(rec.get('grpc'), 4)} (the same engine answers both). "
        f"Targets: gRPC upsert >= 2x REST ({', '.join(f'{u:.2f}x' for u in up if u) or 'n/a'}), "
        f"search QPS >= REST ({ratio((r.get('search_qps') or {}).get('grpc'), (r.get('search_qps') or {}).get('rest'))}). "
        f"The peer runs with `storage.wal.durability={r.get('durability', 'os')}` (no fsync per batch): the figures are "
        "the API path, client encoding to storage write.",
        *errors(r, ()),
        "",
    ]
    if "error" in r:
        lines.insert(-1, f"*{r['error']}*")
    return lines


def render_consensus(r: dict[str, Any]) -> list[str]:
    m = r.get("machine", {})
    fo = r.get("failover") or {}
    lines = [
        f"#### Consensus (`bench/consensus.py`): {r.get('peers', 3)} `qcluster serve` peers on 127.0.0.1, over REST\n",
        f"{f(r.get('creates'))} operations per row; measured {m.get('date', '?')} on {m.get('nproc', '?')} cores "
        f"({m.get('cpu', '?')}), Python {m.get('python', '?')}.\n",
        "| operation | sent to | p50 ms | p99 ms | max ms |",
        "|---|---|---|---|---|",
    ]
    for label, key in (
        ("create collection (returns once every replica peer created it)", "create_collection"),
        ("metadata key write (one Raft round)", "metadata_write"),
    ):
        for target in ("leader", "follower"):
            d = r.get(f"{key}_{target}") or {}
            lines.append(
                f"| {label} | {target} | {f(d.get('p50_ms'), 1)} | {f(d.get('p99_ms'), 1)} | {f(d.get('max_ms'), 1)} |"
            )
    single = r.get("metadata_write_single_peer")
    if single:
        lines.append(
            f"| metadata key write, one-peer cluster | the peer | {f(single.get('p50_ms'), 1)} | "
            f"{f(single.get('p99_ms'), 1)} | {f(single.get('max_ms'), 1)} |"
        )
    lines += [
        "",
        f"Leader kill -9, {f(fo.get('kills'))} times: survivors agree on a new leader after "
        f"{f(fo.get('new_leader_p50_ms'))} ms p50 / {f(fo.get('new_leader_max_ms'))} ms max; a metadata write "
        f"through a survivor succeeds after {f(fo.get('write_ok_p50_ms'))} ms p50 / "
        f"{f(fo.get('write_ok_max_ms'))} ms max (target: within 3 s).",
        "",
    ]
    return lines


def render_cluster(r: dict[str, Any]) -> list[str]:
    s, c = r.get("single") or {}, r.get("cluster") or {}
    m = r.get("machine", {})
    lines = [
        f"#### Cluster (`bench/cluster.py`): 3 peers, {r.get('shards', 6)} shards, replication factor "
        f"{r.get('replication_factor', 2)}, next to one peer with the same {r.get('shards', 6)} shards\n",
        f"{r.get('dataset', '?')}: {f(r.get('n'))} x {r.get('dim', '?')}, {f(r.get('queries'))} queries, ef 128; "
        f"median of {r.get('repeats', '?')} runs; measured {m.get('date', '?')} on {m.get('nproc', '?')} cores.\n",
        "| setup | QPS | p50 ms | p99 ms | recall@10 |",
        "|---|---|---|---|---|",
    ]
    for label, d in (
        ("one peer, 1 client", s.get("1_client") or {}),
        ("cluster through one peer, 1 client", c.get("1_client") or {}),
        ("one peer, 16 clients", s.get("16_clients") or {}),
        ("cluster through one peer, 16 clients", c.get("16_clients") or {}),
        ("cluster spread over 3 peers, 16 clients", c.get("16_clients_spread") or {}),
    ):
        lines.append(
            f"| {label} | {f(d.get('qps'))} | {f(d.get('p50_ms'), 2)} | {f(d.get('p99_ms'), 2)} | "
            f"{f(d.get('recall_at_10'), 4)} |"
        )
    lines += [
        "",
        f"Upsert (batches of 500, wait=true, through one peer): one peer {f(s.get('upsert_points_per_s'))} "
        f"points/s; cluster {f(c.get('upsert_points_per_s_wcf1'))} with write_consistency_factor 1, "
        f"{f(c.get('upsert_points_per_s_wcf2'))} with 2 "
        f"({ratio(c.get('upsert_points_per_s_wcf1'), s.get('upsert_points_per_s'))} of one peer; target >= 0.5x). "
        f"Search p50 through the cluster minus one peer: "
        f"{f((r.get('cluster_p50_ms') or 0) - (r.get('single_p50_ms') or 0), 2)} ms (target <= 1 ms).",
        "",
    ]
    return lines


def render_transfer(r: dict[str, Any]) -> list[str]:
    c, h = r.get("copies") or {}, r.get("heal") or {}
    m = r.get("machine", {})
    lines = [
        f"#### Shard transfers (`bench/transfer.py`): 3 peers, one shard of {f(r.get('n'))} x {r.get('dim', '?')} "
        f"({f(r.get('vector_mb'), 1)} MB of vectors)\n",
        f"Median of {r.get('repeats', '?')} runs; measured {m.get('date', '?')} on {m.get('nproc', '?')} cores; "
        "time from the request until the new replica is Active.\n",
        "| method | seconds | points/s | MB/s |",
        "|---|---|---|---|",
    ]
    for method in ("stream_records", "snapshot", "wal_delta"):
        d = c.get(method) or {}
        lines.append(
            f"| {method} | {f(d.get('seconds'), 2)} | {f(d.get('points_per_s'))} | {f(d.get('mb_per_s'), 1)} |"
        )
    wd, sr = (h.get("wal_delta") or {}).get("seconds"), (h.get("stream_records") or {}).get("seconds")
    lines += [
        "",
        f"Healing a replica that missed {f(h.get('missed_updates'))} updates (1 %): wal_delta {f(wd, 2)} s, "
        f"stream_records {f(sr, 2)} s ({ratio(sr, wd)} faster by wal_delta; target >= 10x).",
        "",
    ]
    return lines


def render_memory(r: dict[str, Any]) -> list[str]:
    e = r.get("engines") or {}
    lines = [
        "#### Memory as served (`bench/memory.py`): each engine in its own process\n",
        header(r),
        f"Resident memory of the process above its baseline (interpreter, libraries, data loaded), "
        f"per vector; median (min-max) of {r.get('repeats', '?')} processes per engine. Peak: during "
        "the build; serving: after the queries, garbage collected.\n",
        "| engine | peak bytes/vector | serving bytes/vector | build s | recall@10 |",
        "|---|---|---|---|---|",
    ]
    for key, name in (
        ("qcluster", "qcluster LocalShard"),
        ("faiss", "raw FAISS HNSW"),
        ("qdrant_edge", "qdrant-edge-py"),
    ):
        d = e.get(key) or {}
        if "error" in d or not d:
            lines.append(f"| {name} | {d.get('error', 'not run')} | | | |")
            continue
        lines.append(
            f"| {name} | {f(d.get('peak_bytes_per_vector'))} ({f(d.get('peak_bytes_per_vector_min'))}-"
            f"{f(d.get('peak_bytes_per_vector_max'))}) | {f(d.get('serving_bytes_per_vector'))} "
            f"({f(d.get('serving_bytes_per_vector_min'))}-{f(d.get('serving_bytes_per_vector_max'))}) | "
            f"{f(d.get('build_s'), 1)} | {f(d.get('recall_at_10'), 3)} |"
        )
    q, edge = (
        (e.get("qcluster") or {}).get("serving_bytes_per_vector"),
        (e.get("qdrant_edge") or {}).get("serving_bytes_per_vector"),
    )
    lines += ["", f"qcluster serves in {ratio(q, edge)} the memory of qdrant-edge per vector.", ""]
    return lines


RENDER = {
    "engine": render_engine,
    "filtered": render_filtered,
    "memory": render_memory,
    "rest": render_rest,
    "grpc_api": render_grpc_api,
    "consensus": render_consensus,
    "cluster": render_cluster,
    "transfer": render_transfer,
}


SIZES = ((False, "Full size (`make bench`)"), (True, "Quick (`make bench-quick`)"))


def previous_blocks(section: str) -> dict[tuple[bool, str], str]:
    """The blocks of an existing results section by (quick, benchmark): kept for benchmarks whose
    JSON is not in ``bench/results/`` (results recorded before the JSON was kept, or on another
    machine), so rewriting the section never drops them."""
    out: dict[tuple[bool, str], str] = {}
    for quick, title in SIZES:
        start = section.find(f"### {title}")
        if start < 0:
            continue
        end = section.find("\n### ", start + 4)
        part = section[start : end if end >= 0 else len(section)]
        pieces = part.split("\n#### ")[1:]
        for piece in pieces:
            for name in BENCHMARKS:
                if f"`bench/{name}.py`" in piece.split("\n", 1)[0]:
                    out[(quick, name)] = "#### " + piece.rstrip() + "\n"
    return out


def render(previous: dict[tuple[bool, str], str] | None = None) -> str:
    out = ["## Results\n", "Written by `bench/run_all.py` from `bench/results/*.json`.\n"]
    for quick, title in SIZES:
        blocks: list[str] = []
        for name in BENCHMARKS:
            path = HERE / "results" / f"{name}{'-quick' if quick else ''}.json"
            if path.exists():
                try:
                    blocks += RENDER[name](json.loads(path.read_text()))
                except (ValueError, KeyError, TypeError) as exc:
                    blocks.append(f"*{path.name}: unreadable ({exc})*\n")
            elif previous and (quick, name) in previous:
                blocks.append(previous[(quick, name)])
        if blocks:
            out += [f"### {title}\n", *blocks]
    return "\n".join(out).rstrip() + "\n"


def write_doc() -> Path:
    doc = REPO / "BENCHMARKS.md"
    text = doc.read_text() if doc.exists() else f"# Benchmarks\n\n{START}\n{END}\n"
    if START not in text or END not in text:
        text = text.rstrip() + f"\n\n{START}\n{END}\n"
    head, _, rest = text.partition(START)
    old, _, tail = rest.partition(END)
    doc.write_text(f"{head}{START}\n{render(previous_blocks(old))}{END}{tail}")
    return doc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes (each benchmark in a few minutes)")
    ap.add_argument("--only", choices=BENCHMARKS, action="append", help="run only these (repeatable)")
    ap.add_argument("--skip-qcluster", action="store_true", help="reference engines only")
    ap.add_argument("--no-doc", action="store_true", help="do not rewrite BENCHMARKS.md")
    args = ap.parse_args()
    ensure_venv()
    extra = ["--skip-qcluster"] if args.skip_qcluster else []
    failed = [name for name in args.only or BENCHMARKS if run_benchmark(name, args.quick, extra) is None]
    if not args.no_doc:
        log(f"\nresults section rewritten in {write_doc().relative_to(REPO)}")
    if failed:
        log(f"failed: {', '.join(failed)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
