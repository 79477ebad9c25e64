"""Point id -> shard id (pure). Stable hashes, identical on every peer and across restarts.

Two schemes, recorded per collection (``params.routing`` in its config) so data on disk keeps the
routing it was written with:

``hash_mod`` (collections created before the data plane spread shards over peers; the default
when the config names no scheme): ``point_hash(id) % shard_count``.

``ring`` (every new collection): a consistent-hash ring of ``RING_SLOTS`` equal arcs (virtual
nodes). A point lands on the arc its hash falls in (the top bits of the hash); each arc belongs
to one shard. The arc table for ``n`` shards is built from the table for ``n - 1``: the new shard
takes arcs from every existing shard until each holds ``RING_SLOTS / n`` (+-1). So

* balance is exact up to one arc (1/16384 of the ring), not the few-percent spread of randomly
  placed virtual nodes, and
* growing ``n -> n + 1`` moves only the arcs the new shard takes: ``1 / (n + 1)`` of the ids,
  all of them onto the new shard (what resharding needs).

Which arcs move at each step is decided by a fixed pseudo-random order of the arcs (seeded by the
step), so the table is a pure function of ``n``: every peer computes the same one.

Custom sharding routes within the shards of the point's shard key: the ring for ``m`` shards over
that key's shard ids, in ascending order.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Sequence
from functools import lru_cache
from typing import Literal

import numpy as np
import numpy.typing as npt

from qcluster.types import PointId

RoutingScheme = Literal["hash_mod", "ring"]
LEGACY_SCHEME: RoutingScheme = "hash_mod"
CURRENT_SCHEME: RoutingScheme = "ring"
RING_BITS = 14
RING_SLOTS = 1 << RING_BITS
MAX_RING_SHARDS = RING_SLOTS


def point_hash(pid: PointId) -> int:
    raw = pid.to_bytes(8, "little") if isinstance(pid, int) else uuid.UUID(pid).bytes
    return int.from_bytes(hashlib.blake2b(raw, digest_size=8).digest(), "little")


def _hashes(ids: Sequence[PointId]) -> npt.NDArray[np.uint64]:
    return np.fromiter((point_hash(p) for p in ids), dtype=np.uint64, count=len(ids))


def _grow(table: npt.NDArray[np.int32], shard_count: int) -> npt.NDArray[np.int32]:
    """The table for ``shard_count`` shards from the one for ``shard_count - 1``."""
    table = table.copy()
    new = shard_count - 1
    # Each old shard keeps floor or ceil of SLOTS/n; the lowest shard indexes keep the ceil.
    base, extra = divmod(RING_SLOTS, shard_count)
    quota = np.full(new, base, dtype=np.int64)
    quota[: min(extra, new)] += 1
    excess = np.bincount(table, minlength=new) - quota
    order = np.random.default_rng(shard_count).permutation(RING_SLOTS)
    owners = table[order]
    # Rank of each arc among its owner's arcs, in the step's pseudo-random order.
    by_owner = np.argsort(owners, kind="stable")
    sorted_owners = owners[by_owner]
    starts = np.searchsorted(sorted_owners, np.arange(new))
    rank = np.empty(RING_SLOTS, dtype=np.int64)
    rank[by_owner] = np.arange(RING_SLOTS) - starts[sorted_owners]
    table[order[rank < excess[owners]]] = new
    return table


# The newest table built and its shard count: growing from it is cheaper than from one shard.
_LATEST: list[npt.NDArray[np.int32]] = [np.zeros(RING_SLOTS, dtype=np.int32)]
_LATEST_COUNT = [1]
_BUILD_LOCK = threading.Lock()


@lru_cache(maxsize=64)
def ring_table(shard_count: int) -> npt.NDArray[np.int32]:
    """Arc -> shard index (0..shard_count-1) for ``shard_count`` shards (a read-only array).
    Built step by step from one shard; a few ms per step, so warm large counts off the loop."""
    if not 1 <= shard_count <= MAX_RING_SHARDS:
        raise ValueError(f"shard count must be in [1, {MAX_RING_SHARDS}], got {shard_count}")
    with _BUILD_LOCK:
        count, table = _LATEST_COUNT[0], _LATEST[0]
        if count > shard_count:
            count, table = 1, np.zeros(RING_SLOTS, dtype=np.int32)
        while count < shard_count:
            count += 1
            table = _grow(table, count)
        _LATEST_COUNT[0], _LATEST[0] = count, table
    out = table.copy()
    out.flags.writeable = False
    return out


class Router:
    """Routes point ids to ``shard_ids`` (the ids, in ascending order, of the shards a point may go to)."""

    def __init__(self, scheme: RoutingScheme, shard_ids: Sequence[int]):
        if not shard_ids:
            raise ValueError("a router needs at least one shard")
        self.scheme = scheme
        self.shard_ids = np.asarray(sorted(shard_ids), dtype=np.int64)
        self._table = ring_table(len(shard_ids)) if scheme == "ring" else None

    def _index(self, hashes: npt.NDArray[np.uint64]) -> npt.NDArray[np.int64]:
        n = len(self.shard_ids)
        if n == 1:
            return np.zeros(len(hashes), dtype=np.int64)
        if self._table is None:
            return (hashes % np.uint64(n)).astype(np.int64)
        return self._table[(hashes >> np.uint64(64 - RING_BITS)).astype(np.int64)].astype(np.int64)

    def shard_of(self, pid: PointId) -> int:
        return int(self.shard_ids[self._index(_hashes([pid]))[0]])

    def split(self, ids: Sequence[PointId]) -> dict[int, list[int]]:
        """Shard id -> positions in ``ids`` that route there (positions keep batch order)."""
        if len(self.shard_ids) == 1:
            return {int(self.shard_ids[0]): list(range(len(ids)))} if ids else {}
        idx = self._index(_hashes(ids))
        out: dict[int, list[int]] = {}
        for i, k in enumerate(idx.tolist()):
            out.setdefault(int(self.shard_ids[k]), []).append(i)
        return out


def shard_of(pid: PointId, shard_count: int, scheme: RoutingScheme = LEGACY_SCHEME) -> int:
    if shard_count <= 1:
        return 0
    return Router(scheme, range(shard_count)).shard_of(pid)


def split_ids(
    ids: Sequence[PointId], shard_count: int, scheme: RoutingScheme = LEGACY_SCHEME
) -> dict[int, list[int]]:
    """Shard id -> positions in ``ids`` that route there (positions keep batch order)."""
    return Router(scheme, range(max(1, shard_count))).split(ids)
