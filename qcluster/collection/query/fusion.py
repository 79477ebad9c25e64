"""Pure re-ranking functions: reciprocal rank fusion, distribution-based score fusion, maximal
marginal relevance. Inputs are ranked lists of (point id, score); outputs are (point id, score)
best first, ties broken by the order the points were first seen."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from qcluster.errors import BadInputError
from qcluster.types import PointId

Ranked = Sequence[tuple[PointId, float]]
DEFAULT_RRF_K = 2


def rrf(
    lists: Sequence[Ranked], k: int = DEFAULT_RRF_K, weights: Sequence[float] | None = None
) -> list[tuple[PointId, float]]:
    """Reciprocal rank fusion: a point at 0-based position ``p`` of a list with weight ``w`` gains
    ``1 / ((p + 1) / w + k - 1)`` (``1 / (p + k)`` at weight 1); input scores are ignored."""
    if weights is not None and len(weights) != len(lists):
        raise BadInputError(
            f"Number of weights in RRF should match number of pre-fetches: got {len(weights)}, "
            f"expected {len(lists)}",
            "query.rrf.weights",
        )
    totals: dict[PointId, float] = {}
    for li, ranked in enumerate(lists):
        weight = 1.0 if weights is None else float(weights[li])
        for pos, (pid, _) in enumerate(ranked):
            gain = 0.0 if weight <= 0 else 1.0 / ((pos + 1) / weight + k - 1)
            totals[pid] = totals.get(pid, 0.0) + gain
    return sorted(totals.items(), key=lambda kv: -kv[1])


def _distribution_normalised(ranked: Ranked) -> list[tuple[PointId, float]]:
    """Scores mapped by ``(s - (mean - 3 sd)) / 6 sd`` (sample sd); a single point scores 0.5."""
    if len(ranked) < 2:
        return [(pid, 0.5) for pid, _ in ranked]
    scores = np.array([s for _, s in ranked], dtype=np.float64)
    mean = float(scores.mean())
    sd = float(scores.std(ddof=1))
    lo, hi = mean - 3 * sd, mean + 3 * sd
    if hi == lo:
        return [(pid, 0.5) for pid, _ in ranked]
    return [(pid, (s - lo) / (hi - lo)) for pid, s in ranked]


def dbsf(lists: Sequence[Ranked]) -> list[tuple[PointId, float]]:
    """Distribution-based score fusion: normalise each list by its mean +- 3 standard deviations,
    then sum the normalised scores of each point."""
    totals: dict[PointId, float] = {}
    for ranked in lists:
        for pid, score in _distribution_normalised(ranked):
            totals[pid] = totals.get(pid, 0.0) + score
    return sorted(totals.items(), key=lambda kv: -kv[1])


def mmr(
    relevance: npt.NDArray[np.floating[Any]],
    similarities_to: Callable[[int], npt.NDArray[np.floating[Any]]],
    diversity: float,
    limit: int,
) -> list[int]:
    """Maximal marginal relevance over candidates ``0..n-1``; returns candidate indices in pick
    order (callers report each point's own query score, as Qdrant does).

    ``relevance[i]``: similarity of candidate i to the query; ``similarities_to(i)``: similarity
    of every candidate to candidate i (both larger-is-better; asked only for picked candidates,
    so memory stays O(n)). The first pick is the most relevant; then each pick maximises
    ``(1 - diversity) * relevance - diversity * max(similarity to the picked)``.
    """
    n = len(relevance)
    if n == 0 or limit <= 0:
        return []
    first = int(np.argmax(relevance))
    picked = [first]
    available = np.ones(n, dtype=bool)
    available[first] = False
    closest = np.asarray(similarities_to(first), dtype=np.float64)
    for _ in range(min(limit, n) - 1):
        score = (1.0 - diversity) * relevance - diversity * closest
        score = np.where(available, score, -math.inf)
        best = int(np.argmax(score))
        picked.append(best)
        available[best] = False
        closest = np.maximum(closest, similarities_to(best))
    return picked
