"""Point id -> shard id (pure). A stable hash, identical on every peer and across restarts."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence

from qcluster.types import PointId


def point_hash(pid: PointId) -> int:
    raw = pid.to_bytes(8, "little") if isinstance(pid, int) else uuid.UUID(pid).bytes
    return int.from_bytes(hashlib.blake2b(raw, digest_size=8).digest(), "little")


def shard_of(pid: PointId, shard_count: int) -> int:
    if shard_count <= 1:
        return 0
    return point_hash(pid) % shard_count


def split_ids(ids: Sequence[PointId], shard_count: int) -> dict[int, list[int]]:
    """Shard id -> positions in ``ids`` that route there (positions keep batch order)."""
    out: dict[int, list[int]] = {}
    for i, pid in enumerate(ids):
        out.setdefault(shard_of(pid, shard_count), []).append(i)
    return out
