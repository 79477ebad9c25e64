"""Sparse search inside one segment, and the IDF statistics a shard gathers over its segments.

Scores are exact dot products (recall 1.0): the inverted index yields every point sharing a
dimension with the query; a filter, the deletion flags and ``score_threshold`` then mask that
candidate set, and the best ``k`` are picked. Only points sharing a dimension with the query are
results, as in Qdrant.

IDF (``modifier: idf``): each query weight is multiplied by ``ln((N - df + 0.5) / (df + 0.5) + 1)``
where ``N`` is the number of points holding a vector of that name and ``df`` the number holding the
dimension, both counted over the shard's live points (as Qdrant counts them over a shard), or over
the points matching the ``idf.corpus`` filter when the query gives one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from qcluster.shards.segment import Segment
from qcluster.shards.sparse.inverted import csr_doc_freq, score_csr
from qcluster.shards.sparse.topk import top_k
from qcluster.shards.sparse.vector import SparseVector

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]


# A sparse search reading at most this many postings (and rows scored from CSR) is cheap enough to
# run on the event loop (about a millisecond); a larger one goes to the search threads.
INLINE_POSTINGS = 100_000
SHORT_QUERY = 64  # IDF weights of a query this short are computed on Python floats


def inline_cost(segments: Sequence[Segment], name: str, query: SparseVector) -> int:
    """How many postings (and unindexed rows, counted as the values they hold) a search of
    ``query`` reads over ``segments``: what deciding between the loop and a thread weighs."""
    total = 0
    for seg in segments:
        store = seg.sparse.get(name)
        if store is not None and seg.offsets:  # (``offsets``: the live points)
            total += store.read_cost(query, seg.size)
    return total


_NO_SCORES: F32 = np.zeros(0, np.float32)
_NO_OFFSETS: I64 = np.zeros(0, np.int64)


def segment_scores(seg: Segment, name: str, query: SparseVector) -> tuple[F64, Mask]:
    """Dot product of ``query`` with every offset's vector, and which offsets share a dimension."""
    size = seg.size
    view = seg.sparse[name].view(size)
    if view.index is not None:
        scores, hit = view.index.score(query, size)
    else:
        scores, hit = np.zeros(size, np.float64), np.zeros(size, np.bool_)
    if len(view.tail):
        csr = view.tail_csr
        t_scores, t_hit = score_csr(query, csr.indptr, csr.parts[0], csr.parts[1])
        scores[view.tail] = t_scores
        hit[view.tail] = t_hit
    return scores, hit


def search_sparse(
    seg: Segment,
    name: str,
    query: SparseVector,
    k: int,
    filter_mask: Mask | None,
    threshold: float | None,
) -> tuple[F32, I64]:
    """Top ``k`` (scores, offsets) of one query in one segment, best first (then lower offset);
    fewer when fewer match."""
    size = seg.size
    store = seg.sparse.get(name)
    if size == 0 or store is None or k <= 0:
        return _NO_SCORES, _NO_OFFSETS
    view = store.view(size)
    index = view.index
    if index is not None and len(view.tail) == 0 and index.size == size:
        # an index covering every offset: only the query's postings are read (``topk.top_k``)
        allowed = seg.searchable_mask(name)
        if filter_mask is not None:
            allowed = filter_mask[:size] if allowed is None else allowed & filter_mask[:size]
        scores, offs = top_k(index, query, k, allowed, threshold)
        return scores.astype(np.float32), offs
    scores, ok = segment_scores(seg, name, query)
    base = seg.searchable_mask(name)
    if base is not None:
        ok &= base
    if filter_mask is not None:
        ok &= filter_mask[:size]
    if threshold is not None:
        ok &= scores >= threshold
    cand = np.flatnonzero(ok)
    if len(cand) == 0:
        return _NO_SCORES, _NO_OFFSETS
    cs = scores[cand]
    if len(cand) > k:
        part = np.argpartition(-cs, k - 1)[:k]
        cand, cs = cand[part], cs[part]
    order = np.lexsort((cand, -cs))  # best score first, then lower offset
    return cs[order].astype(np.float32), cand[order]


def doc_freq(
    seg: Segment, name: str, indices: npt.NDArray[np.uint32], corpus: Mask | None
) -> tuple[int, I64]:
    """(points holding a ``name`` vector, points holding each of ``indices``) among the live
    points of ``seg`` (within ``corpus`` when given)."""
    size = seg.size
    if size == 0 or name not in seg.sparse:
        return 0, np.zeros(len(indices), dtype=np.int64)
    view = seg.sparse[name].view(size)
    index = view.index
    whole = index is not None and index.size == size and len(view.tail) == 0
    if whole and corpus is None and seg.searchable_mask(name) is None:
        # every offset is live and holds a vector: the posting lengths are the counts
        assert index is not None
        return size, index.posting_lengths(indices)
    counted = seg.live_mask() & seg.vector_mask(name)
    if corpus is not None:
        counted = counted & corpus[:size]
    df = np.zeros(len(indices), dtype=np.int64)
    if view.index is not None:
        in_index = counted.copy()
        in_index[view.tail] = False
        df += view.index.doc_freq(indices, in_index)
    if len(view.tail):
        csr = view.tail_csr
        df += csr_doc_freq(indices, csr.indptr, csr.parts[0], counted[view.tail])
    return int(np.count_nonzero(counted)), df


def idf_weighted(query: SparseVector, points: int, df: I64) -> SparseVector:
    """``query`` with each value times its index's IDF (float64, rounded to float32 once)."""
    n = float(points)
    if len(query) <= SHORT_QUERY:  # the same float64 arithmetic without a chain of tiny numpy calls
        weighted = [
            v * math.log((n - d + 0.5) / (d + 0.5) + 1.0)
            for v, d in zip(query.values.tolist(), df.tolist(), strict=True)
        ]
        return SparseVector(query.indices, np.array(weighted, dtype=np.float32))
    dfs = df.astype(np.float64)
    idf = np.log((n - dfs + 0.5) / (dfs + 0.5) + 1.0)
    return SparseVector(query.indices, (query.values.astype(np.float64) * idf).astype(np.float32))


def shard_idf(
    segments: Sequence[Segment], name: str, query: SparseVector, corpus: Sequence[Mask | None] | None
) -> SparseVector:
    """``query`` with IDF-weighted values, statistics over ``segments``."""
    points = 0
    df: I64 | None = None
    for i, seg in enumerate(segments):
        if seg.size == 0 or name not in seg.sparse:
            continue
        p, d = doc_freq(seg, name, query.indices, None if corpus is None else corpus[i])
        points += p
        df = d if df is None else df + d
    return idf_weighted(query, points, np.zeros(len(query), dtype=np.int64) if df is None else df)
