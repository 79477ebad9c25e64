"""kill -9 at random moments: every acknowledged write survives, nothing unacknowledged appears."""

from __future__ import annotations

import os
import random
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from qcluster.shards.base import ALL_PAYLOAD, ALL_VECTORS, ScrollRequest
from qcluster.shards.local_shard import LocalShard
from qcluster.shards.operations import UpdateOperation
from qcluster.testing.crash_worker import crash_config, crash_storage
from qcluster.testing.crash_workload import Model, make_op

SEED = 4242


def _touched(op: UpdateOperation) -> set[object]:
    sel = getattr(op, "selector", None)
    if sel is not None:
        return set(sel.ids or ())
    return set(op.batch.ids)  # type: ignore[union-attr]


def run_until_killed(path: Path, start: int, kill_after: int, deadline_s: float = 120.0) -> int:
    """Start the worker at op ``start``; SIGKILL it once it acknowledged ``kill_after`` more ops.
    Returns the last acknowledged op index (start - 1 if none)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "qcluster.testing.crash_worker", str(path), str(SEED), str(start)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    last = start - 1
    acks = 0
    buf = b""
    deadline = time.monotonic() + deadline_s
    try:
        while acks < kill_after:
            assert time.monotonic() < deadline, "worker made no progress"
            if not sel.select(timeout=1.0):
                continue
            chunk = os.read(proc.stdout.fileno(), 65536)
            assert chunk, "worker exited early"
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                if line.startswith(b"ack "):
                    last = int(line.split()[1])
                    acks += 1
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        # acks printed just before the kill are still in the pipe
        rest = buf + proc.stdout.read()
        for line in rest.split(b"\n"):
            if line.startswith(b"ack "):
                last = max(last, int(line.split()[1]))
        proc.stdout.close()
    return last


async def check_state(path: Path, last_acked: int) -> None:
    model = Model()
    for i in range(last_acked + 1):
        model.apply(make_op(SEED, i))
    in_flight = make_op(SEED, last_acked + 1)
    maybe = model.copy()
    maybe.apply(in_flight)
    uncertain = _touched(in_flight)
    shard = await LocalShard.load_or_create(path, crash_config(), crash_storage())
    try:
        page = await shard.scroll(
            ScrollRequest(limit=100_000, with_payload=ALL_PAYLOAD, with_vector=ALL_VECTORS)
        )
        got = {
            r.id: (
                tuple(float(x) for x in r.vector[""]) if r.vector and "" in r.vector else None,
                r.payload or None,
            )
            for r in page.points
        }
    finally:
        await shard.close()
    for pid in set(model.points) | set(got) | uncertain:
        options = []
        for m in (model, maybe) if pid in uncertain else (model,):
            want = m.points.get(pid)
            options.append(None if want is None else (want[0], want[1] or None))
        have = got.get(pid)
        assert any(
            (o is None and have is None)
            or (o is not None and have is not None and np.allclose(o[0], have[0]) and o[1] == have[1])
            for o in options
        ), f"point {pid}: have {have}, expected one of {options} (last acked op {last_acked})"


@pytest.mark.parametrize("rounds", [4])
async def test_kill9_keeps_acknowledged_writes(tmp_path: Path, rounds: int) -> None:
    rng = random.Random(7)
    path = tmp_path / "shard"
    start = 0
    for _ in range(rounds):
        last = run_until_killed(path, start, kill_after=rng.randint(20, 150))
        await check_state(path, last)
        start = last + 1


@pytest.mark.slow
async def test_kill9_soak(tmp_path: Path) -> None:
    rng = random.Random(8)
    path = tmp_path / "shard"
    start = 0
    for _ in range(25):
        last = run_until_killed(path, start, kill_after=rng.randint(1, 400))
        await check_state(path, last)
        start = last + 1
