"""Relevance feedback (``{"relevance_feedback": {target, feedback, strategy: {naive: {a, b, c}}}}``)
with Qdrant's naive formula.

Every ordered pair of feedback examples whose feedback scores differ (``confidence = score(p) -
score(n) > 0``) becomes a context pair weighted ``confidence ** b * c``; a point scores

    a * sim(target) + sum over pairs of weight * (sim(p) - sim(n))

(similarities larger-is-better, as ``vectors.Stored`` gives them). Feedback with no such pair (a
single example, or equal scores) leaves ``a * sim(target)``: with ``a = 1`` that is the nearest
query itself, answered by the same search so the scores are the same to the last bit.

Candidates come as for the example-based queries (``examples.py``): ANN searches around the target
and the pairs' higher-scored examples, then exact rescoring; with ``prefetch``, the prefetched
points. Feedback and target points named by id are excluded from the results.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

import numpy as np

from qcluster.collection.query import examples
from qcluster.collection.query.context import Hit, QueryContext, resolve_vectors
from qcluster.collection.query.vectors import QueryVector, Stored
from qcluster.errors import BadInputError, FormatError, UnprocessableInputError
from qcluster.types import PointId

FIELD = "query.relevance_feedback"


def _number(raw: Mapping[str, Any], key: str, where: str) -> float:
    value = raw.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FormatError(f"{where}.{key}: expected a number, got {value!r}", f"{where}.{key}")
    return float(value)


def parse(raw: Any) -> tuple[Any, list[tuple[Any, float]], tuple[float, float, float]]:
    """(target, [(example, score)], (a, b, c)), checked as Qdrant checks them, in its order."""
    if not isinstance(raw, Mapping) or "target" not in raw:
        raise BadInputError("relevance_feedback: expected {target, feedback, strategy}", FIELD)
    items = raw.get("feedback")
    if not isinstance(items, list):
        raise FormatError(f"{FIELD}.feedback: expected a list of {{example, score}}", f"{FIELD}.feedback")
    if not items:
        raise UnprocessableInputError(
            f"[{FIELD}.feedback: feedback elements must be non-empty]", f"{FIELD}.feedback"
        )
    feedback = []
    for i, item in enumerate(items):
        where = f"{FIELD}.feedback[{i}]"
        if not isinstance(item, Mapping) or "example" not in item:
            raise FormatError(f"{where}: expected {{example, score}}", where)
        feedback.append((item["example"], _number(item, "score", where)))
    strategy = raw.get("strategy")
    naive = strategy.get("naive") if isinstance(strategy, Mapping) else None
    if not isinstance(naive, Mapping):
        raise FormatError(f"{FIELD}.strategy: expected {{naive: {{a, b, c}}}}", f"{FIELD}.strategy")
    where = f"{FIELD}.strategy.naive"
    a, b, c = (_number(naive, k, where) for k in ("a", "b", "c"))
    if b < 0:  # (Qdrant names the field by its internal path)
        raise UnprocessableInputError(
            f"[internal.{where}.b: value {b} invalid, must be 0.0 or larger]", f"{where}.b"
        )
    return raw["target"], feedback, (a, b, c)


def pairs(
    vectors: list[QueryVector], scores: list[float], b: float, c: float
) -> list[tuple[QueryVector, QueryVector, float]]:
    """(higher-scored, lower-scored, weight) for every ordered pair whose scores differ."""
    out = []
    for i, j in itertools.permutations(range(len(vectors)), 2):
        confidence = scores[i] - scores[j]
        if confidence > 0:
            out.append((vectors[i], vectors[j], confidence**b * c))
    return out


async def relevance_feedback(ctx: QueryContext, raw: Any, prefetched: list[PointId] | None) -> list[Hit]:
    target_raw, feedback, (a, b, c) = parse(raw)
    items = [(target_raw, f"{FIELD}.target")]
    items += [(ex, f"{FIELD}.feedback[{i}].example") for i, (ex, _) in enumerate(feedback)]
    vecs, exclude = await resolve_vectors(ctx, items)
    target = vecs[0]
    weighted = pairs(vecs[1:], [score for _, score in feedback], b, c)
    if not weighted and a == 1.0:  # the nearest query itself
        if prefetched is not None:
            return await examples.nearest_over(ctx, [p for p in prefetched if p not in exclude], target)
        return await examples.nearest(ctx, target, exclude)

    def score(stored: Stored) -> examples.Arr:
        out: examples.Arr = a * np.asarray(stored.sims(target), dtype=np.float64)
        for p, n, weight in weighted:
            out = out + weight * (np.asarray(stored.sims(p), dtype=np.float64) - stored.sims(n))
        return out

    if prefetched is not None:
        ids = [p for p in prefetched if p not in exclude]
    else:
        seeds = [target, *{id(p): p for p, _, _ in weighted}.values()]
        ids = await examples.candidates(ctx, seeds, exclude)
    return await examples.rescore(ctx, ids, score)
