"""The planner's payload-graph plan: a filter whose ``must`` matches one to ``MAX_VALUES`` values
of a field with payload graphs (``index/payload_graph.py``) walks those values' graphs.

::

    must: [{key: tenant, match: {value: t7}}, ...]  ─► graph of "tenant", block t7
      entry per value = its pivot nearest the query (scored exactly)
      walk level 0 from the entries, the whole filter (and the live mask) as the selector
      + points holding a value but linked in no block (payload changed after the build),
        scored exactly and merged
      short of min(k, allowed) ─► exact over the allowed points

The walk can only reach points of the chosen values, so a tenant or category filter correlated
with the vectors finds its nearest points where a walk of the main graph would be led away.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from qcluster.shards import search_stats
from qcluster.shards.distance import higher_is_better, score_matrix
from qcluster.shards.filters.conditions import FieldCondition, Filter, MatchAny, MatchValue
from qcluster.shards.index.exact import exact_rows
from qcluster.shards.index.payload_graph import PayloadGraph
from qcluster.shards.segment import Segment

if TYPE_CHECKING:
    from qcluster.shards.segment_search import Query

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]
MAX_VALUES = 4
WIDEN_BELOW_SHARE = 0.1
MAX_EF = 2048


@dataclass(frozen=True, slots=True)
class GraphChoice:
    graph: PayloadGraph
    condition: FieldCondition
    values: tuple[Any, ...]
    block: int  # points holding the values now


def choose(index: Any, flt: Filter, seg: Segment) -> GraphChoice | None:
    """The smallest value block of a ``must`` match condition that payload graphs cover."""
    graphs = index.payload_graphs
    if not graphs:
        return None
    best: GraphChoice | None = None
    for c in flt.must:
        if not isinstance(c, FieldCondition) or c.key not in graphs:
            continue
        check = c.check
        if isinstance(check, MatchValue):
            values: tuple[Any, ...] = (check.value,)
        elif isinstance(check, MatchAny) and 0 < len(check.any) <= MAX_VALUES:
            values = tuple(check.any)
        else:
            continue
        graph = graphs[c.key]
        fidx = seg.field_index(c.key)
        if fidx is None or not graph.covers(values) or graph.route(values) is None:
            continue
        block = fidx.estimate(c)
        if block is not None and (best is None or block < best.block):
            best = GraphChoice(graph, c, values, block)
    return best


def search(
    seg: Segment, index: Any, q: Query, choice: GraphChoice, mask: Mask, card: int, ef: int
) -> tuple[F32, I64]:
    """Walk the chosen values' graphs with ``mask`` as the selector (see the module docstring)."""
    route = choice.graph.route(choice.values)
    assert route is not None
    layer, pivots, codes = route
    vectors = seg.vectors[q.using]
    share = card / max(1, choice.block)
    if share < WIDEN_BELOW_SHARE:
        ef = min(max(ef, math.ceil(ef * WIDEN_BELOW_SHARE / share)), max(ef, MAX_EF))
    entries, entry_d = _entries(index, q, vectors, pivots)
    scores, offs = index.search(
        q.vectors,
        q.k,
        ef=ef,
        allowed=mask,
        quantization=q.params.quantization,
        originals=vectors,
        threshold=q.threshold,
        route=(layer, entries, entry_d),
    )
    holders = seg.field_index(choice.condition.key)
    now = None if holders is None else holders.offsets(choice.condition, seg.size)
    if now is not None:
        loose = choice.graph.unlinked(now, codes)
        loose = loose[mask[loose]] if len(loose) else loose
        if len(loose):
            extra = exact_rows(q.vectors, vectors, loose, q.k, q.distance, q.threshold)
            scores, offs = merge_results((scores, offs), extra, q.k, higher_is_better(q.distance))
    if q.threshold is None:
        short = np.flatnonzero((offs >= 0).sum(axis=1) < min(q.k, card))
        if len(short):
            search_stats.record("fallback_short", len(short))
            s2, o2 = exact_rows(q.vectors[short], vectors, np.flatnonzero(mask), q.k, q.distance)
            scores[short] = s2
            offs[short] = o2
    return scores, offs


def _entries(index: Any, q: Query, vectors: F32, pivots: I64) -> tuple[npt.NDArray[np.int32], F32]:
    """Per query and value, the value's pivot nearest the query (ids int32, FAISS distances)."""
    nv, width = pivots.shape
    flat = pivots.reshape(-1)
    valid = flat >= 0
    scores = np.full((len(q.vectors), len(flat)), np.nan, dtype=np.float32)
    scores[:, valid] = score_matrix(q.vectors, np.asarray(vectors[flat[valid]]), q.distance)
    per = scores.reshape(len(q.vectors), nv, width)
    high = higher_is_better(q.distance)
    keyed = np.where(np.isnan(per), -np.inf if high else np.inf, per)
    pick = keyed.argmax(axis=2) if high else keyed.argmin(axis=2)
    best = np.take_along_axis(per, pick[:, :, None], axis=2)[:, :, 0]
    ids = pivots[np.arange(nv)[None, :], pick].astype(np.int32)
    return np.ascontiguousarray(ids), np.ascontiguousarray(index.faiss_distance(best))


def merge_results(a: tuple[F32, I64], b: tuple[F32, I64], k: int, high: bool) -> tuple[F32, I64]:
    """The best ``k`` per row of two result sets over distinct offsets (-1 / nan slots last)."""
    scores = np.concatenate([a[0], b[0]], axis=1)
    offs = np.concatenate([a[1], b[1]], axis=1)
    keys = np.where(offs >= 0, -scores if high else scores, np.inf)
    order = np.argsort(keys, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, order, axis=1), np.take_along_axis(offs, order, axis=1)
