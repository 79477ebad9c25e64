"""qdrant-client over gRPC vs over REST against the same ``qcluster serve`` peer, side by side:
batch upsert points/s and single-query search QPS, the median of several rounds.

    python bench/grpc_api.py [--quick] [--json PATH] [--rounds R] [--dataset clustered|minilm] [--n N]

One peer, two clients in this process: ``QdrantClient(prefer_grpc=False)`` (REST) and
``QdrantClient(prefer_grpc=True)`` (gRPC). Every round runs both transports, in alternating order,
on equal work:

- upsert: the dataset through ``client.upload_collection`` (qdrant-client's bulk path: numpy
  vectors, a small payload per point, ``wait=true`` per batch) into a fresh collection with
  indexing off, at the client's default batch size (64) and at 256 points per batch. The peer runs
  with ``storage.wal.durability=os``: an fsync costs both transports the same and on a shared disk
  varies run to run, so the figure is the API path (client encoding, transport, decoding, WAL +
  segment write);
- search: Q single queries, one at a time (``client.query_points``, limit 10, hnsw_ef 128), on one
  indexed collection loaded once; recall@10 is checked for both.

Full: 50k x 128 points, 2,000 queries, 5 rounds; --quick: 10k points, 500 queries, 3 rounds.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import fmt_row, machine, progress, say, ticker, unavailable, write_json
from bench.datasets import Dataset, load, recall_at_k

BATCHES = (64, 256)  # qdrant-client's default batch size for uploads, and a larger one
EF = 128
TRANSPORTS = ("rest", "grpc")


def _clients(srv: Any) -> dict[str, Any]:
    from qdrant_client import QdrantClient

    kw: dict[str, Any] = {
        "url": srv.url,
        "grpc_port": srv.grpc_port,
        "timeout": 120,
        "check_compatibility": False,
    }
    return {t: QdrantClient(prefer_grpc=t == "grpc", **kw) for t in TRANSPORTS}


def _upsert_round(client: Any, ds: Dataset, name: str, batch: int) -> float:
    """Points per second for the whole dataset into a fresh, unindexed collection."""
    from qdrant_client import models

    client.create_collection(
        name,
        vectors_config=models.VectorParams(size=ds.dim, distance=models.Distance.COSINE),
        optimizers_config=models.OptimizersConfigDiff(indexing_threshold=0),
    )
    payloads = [{"i": i, "tag": f"t{i % 10}"} for i in range(ds.n)]
    t0 = time.perf_counter()
    client.upload_collection(
        name, vectors=ds.base, payload=payloads, ids=list(range(ds.n)), batch_size=batch, wait=True
    )
    rate = ds.n / (time.perf_counter() - t0)
    if client.count(name, exact=True).count != ds.n:
        raise RuntimeError(f"{name}: not every point arrived")
    client.delete_collection(name)
    return rate


def _search_round(client: Any, ds: Dataset, name: str, label: str) -> tuple[float, float]:
    """(queries per second, recall@10) for single queries, one at a time."""
    from qdrant_client import models

    params = models.SearchParams(hnsw_ef=EF)
    queries = ds.queries.tolist()
    found: list[list[int]] = []
    step = max(1, len(queries) // 10)
    t0 = time.perf_counter()
    for i, q in enumerate(queries):
        found.append(
            [int(p.id) for p in client.query_points(name, query=q, limit=10, search_params=params).points]
        )
        if i % step == 0 or i == len(queries) - 1:
            progress(label, i + 1, len(queries))
    qps = len(queries) / (time.perf_counter() - t0)
    return qps, recall_at_k(found, ds.gt)


def _load_search_collection(client: Any, ds: Dataset, name: str) -> None:
    from qdrant_client import models

    # indexed once, as one segment: sealed when the last point is in, whatever the dataset size
    threshold_kb = max(1, ds.n * ds.dim * 4 // 1024)
    client.create_collection(
        name,
        vectors_config=models.VectorParams(size=ds.dim, distance=models.Distance.COSINE),
        optimizers_config=models.OptimizersConfigDiff(indexing_threshold=threshold_kb),
    )
    client.upload_collection(name, vectors=ds.base, ids=list(range(ds.n)), batch_size=1000, wait=True)
    deadline = time.monotonic() + 900
    while True:
        info = client.get_collection(name)
        if info.indexed_vectors_count and info.indexed_vectors_count >= ds.n and info.status.value == "green":
            return
        if time.monotonic() > deadline:
            raise TimeoutError("search collection not indexed after 900 s")
        time.sleep(0.2)


def run(ds: Dataset, rounds: int, tmp: Path) -> dict[str, Any]:
    from qcluster.testing.server import ServerProcess

    with ticker("qcluster serve start"):
        srv = ServerProcess(tmp / "peer", env={"QDRANT__STORAGE__WAL__DURABILITY": "os"}).start()
    try:
        clients = _clients(srv)
        keys = [f"upsert_batch_{b}" for b in BATCHES] + ["search_qps"]
        runs: dict[str, dict[str, list[float]]] = {key: {t: [] for t in TRANSPORTS} for key in keys}
        recall: dict[str, float] = {}
        with ticker("search collection: load + index"):
            _load_search_collection(clients["rest"], ds, "search")
        for r in range(rounds):
            order = TRANSPORTS if r % 2 == 0 else TRANSPORTS[::-1]
            for t in order:
                for b in BATCHES:
                    with ticker(f"round {r + 1}/{rounds} {t} upsert, batch {b}"):
                        rate = _upsert_round(clients[t], ds, f"up-{t}-{b}-{r}", b)
                    runs[f"upsert_batch_{b}"][t].append(rate)
                    say(f"    {t} upsert, batch {b}: {rate:,.0f} points/s")
                qps, rec = _search_round(clients[t], ds, "search", f"round {r + 1}/{rounds} {t} search")
                runs["search_qps"][t].append(qps)
                recall[t] = rec
                say(f"    {t} search: {qps:,.0f} QPS, recall@10 {rec:.4f}")
        for c in clients.values():
            c.close()
    finally:
        srv.stop()
    out: dict[str, Any] = {"runs": runs, "recall_at_10": recall}
    for key, per in runs.items():
        out[key] = {t: statistics.median(v) for t, v in per.items()}
        out[key]["ratio"] = out[key]["grpc"] / out[key]["rest"]
    return out


def summary(r: dict[str, Any]) -> str:
    widths = [30, 12, 12, 10]
    lines = [fmt_row(["median of rounds", "REST", "gRPC", "gRPC/REST"], widths)]
    rows = [(f"upsert pts/s, batch {b}", f"upsert_batch_{b}") for b in BATCHES]
    for label, key in (*rows, ("search QPS, 1 client", "search_qps")):
        d = r.get(key) or {}
        lines.append(fmt_row([label, d.get("rest"), d.get("grpc"), f"{d.get('ratio', 0):.2f}x"], widths))
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="10k points, 500 queries, 3 rounds")
    ap.add_argument("--json", default=None, help="write the results here")
    ap.add_argument("--dataset", choices=["clustered", "minilm"], default="clustered")
    ap.add_argument("--n", type=int, default=None, help="number of points (clustered only)")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument(
        "--skip-qcluster", action="store_true", help="(accepted for run_all; nothing else to run)"
    )
    args = ap.parse_args()
    n = args.n or (10_000 if args.quick else 50_000)
    nq = 500 if args.quick else 2000
    rounds = args.rounds or (3 if args.quick else 5)
    with ticker("data + exact ground truth"):
        ds = load(args.dataset, n, nq)
    tmp = Path(tempfile.mkdtemp(prefix="qbench-grpc-"))
    started = time.perf_counter()
    try:
        result = run(ds, rounds, tmp) if not args.skip_qcluster else {}
    except Exception as exc:
        result = unavailable("qcluster", exc)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result.update(
        benchmark="grpc_api",
        dataset=ds.name,
        n=ds.n,
        dim=ds.dim,
        queries=len(ds.queries),
        rounds=rounds,
        batches=list(BATCHES),
        durability="os",
        ef=EF,
        quick=args.quick,
        machine=machine(),
        elapsed_s=time.perf_counter() - started,
    )
    if "error" not in result and result.get("search_qps"):
        say("\n" + summary(result))
    write_json(args.json, result)


if __name__ == "__main__":
    # SIGTERM (a timeout) unwinds like Ctrl-C, so the peer this run started is stopped
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    main()
