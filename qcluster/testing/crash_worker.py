"""Runs the crash workload against a LocalShard and prints ``ack <i>`` after each acknowledged op.

    python -m qcluster.testing.crash_worker PATH SEED START [COUNT]

Meant to be killed with SIGKILL at a random moment by a test, which then reopens the shard.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path

from qcluster.errors import NotFoundError
from qcluster.logging import setup_logging
from qcluster.models.config import OptimizersConfig, ShardConfig, VectorParams
from qcluster.settings import StorageSettings, WalSettings
from qcluster.shards.local_shard import LocalShard
from qcluster.testing.crash_workload import DIM, make_op


def crash_config() -> ShardConfig:
    """Tiny thresholds so sealing, indexing and merging all happen while the worker runs."""
    return ShardConfig(
        vectors={"": VectorParams(size=DIM, distance="Euclid")},
        optimizer_config=OptimizersConfig(
            indexing_threshold=1, flush_interval_sec=0, vacuum_min_vector_number=100
        ),
    )


def crash_storage(durability: str = "os") -> StorageSettings:
    return StorageSettings(wal=WalSettings(durability=durability))


async def main(path: Path, seed: int, start: int, count: int) -> None:
    setup_logging("WARNING")  # stdout carries only the protocol lines
    shard = await LocalShard.load_or_create(path, crash_config(), crash_storage())
    print("ready", flush=True)
    for i in range(start, start + count):
        with contextlib.suppress(NotFoundError):
            await shard.update(make_op(seed, i))
        print(f"ack {i}", flush=True)
    await shard.close()
    print("done", flush=True)


if __name__ == "__main__":
    args = sys.argv[1:]
    asyncio.run(main(Path(args[0]), int(args[1]), int(args[2]), int(args[3]) if len(args) > 3 else 10**9))
