"""Initial shard placement, computed before proposing (the state only records it).

Rules: every shard gets ``min(replication_factor, len(peers))`` replicas on distinct peers; among
the peers, replica counts of the new collection differ by at most one; when ``existing_load`` is
given, the least-loaded peers are filled first (ties go round-robin from the shard id, so equal
peers share the work). Pure and deterministic.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from qcluster.errors import BadInputError


def default_shard_number(peers: Iterable[int]) -> int:
    """Qdrant's default for a distributed collection: one shard per peer."""
    return max(1, len(set(peers)))


def plan_placement(
    peers: Iterable[int],
    shard_number: int | None,
    replication_factor: int,
    existing_load: Mapping[int, int] | None = None,
    first_shard_id: int = 0,
) -> dict[int, tuple[int, ...]]:
    """Shard id -> the peers holding a replica (first listed: the least loaded)."""
    candidates = sorted(set(peers))
    if not candidates:
        raise BadInputError("no peers to place shards on", "peers")
    if shard_number is None:
        shard_number = default_shard_number(candidates)
    if shard_number < 1:
        raise BadInputError(f"shard_number must be at least 1, got {shard_number}", "shard_number")
    if replication_factor < 1:
        raise BadInputError(
            f"replication_factor must be at least 1, got {replication_factor}", "replication_factor"
        )
    replicas = min(replication_factor, len(candidates))
    base = dict(existing_load or {})
    new_count = dict.fromkeys(candidates, 0)
    n = len(candidates)
    placement: dict[int, tuple[int, ...]] = {}
    for offset in range(shard_number):
        sid = first_shard_id + offset
        # Order: fewest replicas of this collection, then lowest existing load, then round-robin.
        ranked = sorted(
            range(n),
            key=lambda i: (new_count[candidates[i]], base.get(candidates[i], 0), (i - sid) % n),
        )
        chosen = tuple(candidates[i] for i in ranked[:replicas])
        for peer in chosen:
            new_count[peer] += 1
        placement[sid] = chosen
    return placement
