"""The distance matrix (``/points/search/matrix/pairs|offsets``): a sample of the points matching a
filter, and for each sampled point its ``limit`` nearest neighbours among the sample.

Steps: list the ids matching the filter that hold a ``using`` vector; draw ``sample`` of them at
random (all when there are fewer), in id order; read their vectors; one batch search per point
restricted to the sample (``has_id``), itself excluded. Scores are the shards' own, as a nearest
query reports them.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from qcluster.collection.collection import Collection
from qcluster.collection.query.context import has_vector
from qcluster.errors import BadInputError
from qcluster.shards.base import NO_PAYLOAD, ScrollRequest, SearchParams, SearchRequest, VectorSelector
from qcluster.types import DEFAULT_VECTOR, PointId, point_id_sort_key

DEFAULT_SAMPLE = 10
DEFAULT_LIMIT = 3


@dataclass(slots=True)
class Matrix:
    ids: list[PointId]
    # (row index in ids, column index in ids, score), rows in id order, best neighbour first
    entries: list[tuple[int, int, float]]


async def search_matrix(
    col: Collection,
    *,
    flt: Mapping[str, Any] | None,
    sample: int | None,
    limit: int | None,
    using: str | None,
) -> Matrix:
    name = using or DEFAULT_VECTOR
    if not has_vector(col, name):
        raise BadInputError(f"Not existing vector name error: {name}", "using")
    sample = DEFAULT_SAMPLE if sample is None else sample
    limit = DEFAULT_LIMIT if limit is None else limit
    cond: dict[str, Any] = {"must": [{"has_vector": name}]}
    if flt is not None:
        cond["must"].append(flt)
    listed = await col.scroll(ScrollRequest(limit=2**62, filter=cond, with_payload=NO_PAYLOAD))
    ids = [r.id for r in listed.points]
    if len(ids) > sample:
        ids = random.sample(ids, sample)
    ids.sort(key=point_id_sort_key)
    if len(ids) < 2:
        return Matrix(ids, [])
    recs = await col.retrieve(ids, NO_PAYLOAD, VectorSelector(True, (name,)))
    vectors = {r.id: r.vector[name] for r in recs if r.vector and name in r.vector}
    ids = [pid for pid in ids if pid in vectors]
    requests = [
        SearchRequest(
            vector=vectors[pid],
            using=name,
            limit=limit + 1,
            filter={"must": [{"has_id": ids}]},
            params=SearchParams(exact=True),
        )
        for pid in ids
    ]
    results = await col.search(requests)
    position = {pid: i for i, pid in enumerate(ids)}
    entries: list[tuple[int, int, float]] = []
    for row, (pid, hits) in enumerate(zip(ids, results, strict=True)):
        kept = [h for h in hits if h.id != pid][:limit]
        entries.extend((row, position[h.id], h.score) for h in kept)
    return Matrix(ids, entries)
