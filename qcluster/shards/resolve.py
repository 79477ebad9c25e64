"""Merging the answers of several replicas of one shard into one (read ``consistency`` > 1), pure.

Qdrant's rules: a read asked with ``consistency`` goes to several replicas and keeps what enough
of them agree on. ``ALL``: a point must be in every answer; ``MAJORITY``: in more than half. Among
the variants of one point (replicas that disagree on its payload or vectors), the one most answers
hold wins; a tie goes to the earliest answer (the local replica comes first). Point versions are
WAL positions of each replica, so they are not compared across replicas: content is.

Answers arrive in the caller's order of replicas; the representative of a point is taken from the
first answer that holds the winning variant.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from enum import Enum
from typing import Any, TypeVar

import numpy as np
import orjson

from qcluster.shards.base import Record, ScoredPoint, ScrollResult
from qcluster.shards.sparse.vector import SparseVector
from qcluster.types import PointId, point_id_sort_key

T = TypeVar("T")


class Condition(Enum):
    ALL = "all"
    MAJORITY = "majority"


def _enough(count: int, total: int, condition: Condition) -> bool:
    return count == total if condition is Condition.ALL else count * 2 > total


def _content(payload: Any, vector: Any) -> bytes:
    vec = None
    if vector:
        vec = {name: _vector_key(v) for name, v in sorted(vector.items())}
    return orjson.dumps([payload, vec], option=orjson.OPT_SORT_KEYS)


def _vector_key(v: Any) -> Any:
    """A vector as comparable JSON: dense and multi-vectors by their bytes (shape included), a
    sparse vector by its indices' and values' bytes."""
    if isinstance(v, SparseVector):
        return ["sparse", v.indices.tobytes().hex(), v.values.tobytes().hex()]
    if hasattr(v, "tobytes"):
        return [list(np.shape(v)), v.tobytes().hex()]
    return v


def _resolve_points(
    answers: Sequence[Sequence[T]],
    key: Callable[[T], PointId],
    variant: Callable[[T], Hashable],
    condition: Condition,
) -> list[T]:
    """The points enough answers hold, each as its winning variant, in the first answer's order
    (then the order of later answers for points the first lacks)."""
    total = len(answers)
    variants: dict[PointId, Counter[Hashable]] = {}
    first: dict[tuple[PointId, Hashable], T] = {}
    order: dict[PointId, None] = {}
    for answer in answers:
        seen_here: set[PointId] = set()
        for item in answer:
            pid = key(item)
            if pid in seen_here:
                continue
            seen_here.add(pid)
            v = variant(item)
            variants.setdefault(pid, Counter())[v] += 1
            first.setdefault((pid, v), item)
            order.setdefault(pid, None)
    out: list[T] = []
    for pid in order:
        counts = variants[pid]
        if not _enough(sum(counts.values()), total, condition):
            continue
        best = max(counts.items(), key=lambda kv: kv[1])[0]  # max keeps the first of equals
        out.append(first[(pid, best)])
    return out


def resolve_search(
    answers: Sequence[list[list[ScoredPoint]]], condition: Condition
) -> list[list[ScoredPoint]]:
    """Per query: the points enough replicas returned (by id; scores of one point match across
    replicas up to index approximations), kept in the first answer's order."""
    if len(answers) == 1:
        return answers[0]
    queries = len(answers[0])
    out = []
    for q in range(queries):
        per = [a[q] for a in answers]
        out.append(_resolve_points(per, lambda p: p.id, lambda p: _content(p.payload, p.vector), condition))
    return out


def resolve_records(answers: Sequence[list[Record]], condition: Condition) -> list[Record]:
    if len(answers) == 1:
        return answers[0]
    return _resolve_points(answers, lambda r: r.id, lambda r: _content(r.payload, r.vector), condition)


def resolve_scroll(answers: Sequence[ScrollResult], condition: Condition) -> ScrollResult:
    """Pages from several replicas: the agreed points, and the smallest next offset any replica
    gave (a replica whose page ended earlier must not let points of the others be skipped)."""
    if len(answers) == 1:
        return answers[0]
    points = _resolve_points(
        [a.points for a in answers], lambda r: r.id, lambda r: _content(r.payload, r.vector), condition
    )
    offsets = [a.next_page_offset for a in answers if a.next_page_offset is not None]
    nxt = min(offsets, key=point_id_sort_key) if offsets else None
    if nxt is not None:  # the rest belongs to the next page
        limit = point_id_sort_key(nxt)
        points = [p for p in points if point_id_sort_key(p.id) < limit]
    return ScrollResult(points, nxt)


def resolve_count(answers: Sequence[int], condition: Condition) -> int:
    """The count most replicas give; without a majority, the largest (no acknowledged point is
    hidden by a lagging replica)."""
    value, votes = Counter(answers).most_common(1)[0]
    return value if votes * 2 > len(answers) else max(answers)


def resolve_first(answers: Sequence[T], condition: Condition) -> T:
    """Aggregates that do not merge point by point (facets, info): the first replica's answer."""
    return answers[0]
