"""Sparse benchmark data: BM25 term weights over a synthetic Zipf corpus (or real sentences), the
queries, and the exact ground truth by brute-force dot products.

Synthetic corpus (deterministic for a seed):
- a vocabulary of 30,000 terms whose frequencies follow a Zipf-Mandelbrot law (the frequency of
  the r-th commonest term ~ 1 / (r + 2.7)^1.07, the classic fit to word counts); term ids are a
  random permutation of the ranks, so ids say nothing about frequency;
- a document draws tokens from that law until it holds its number of distinct terms (uniform in
  50..200); the counts are the term frequencies (tf), the token count its length;
- BM25 (k1 = 1.2, b = 0.75) weighs each term: ``tf (k1 + 1) / (tf + k1 (1 - b + b len / avglen))``,
  times ``idf = ln((N - df + 0.5) / (df + 0.5) + 1)`` (Qdrant's formula) in the plain dot-product
  form; the ``idf`` form keeps the tf part only and lets the engine apply IDF (``modifier: idf``).
Queries: 3 to 12 terms (short queries commoner, as in search logs), picked from a fresh document
of the same law, each term with a chance in proportion to its BM25 weight there (the informative
words a user would type), value 1.0 each.

Real corpus (optional): the sentences of the MiniLM set (``base_texts.jsonl`` /
``query_texts.jsonl``), lower-cased word tokens less the commonest English function words, the
same BM25 weighting.

Ground truth: every document's exact score in float64, term by term over a column (CSC) view of
the documents built here with numpy (no engine code involved). Recall counts a returned document as right when its exact score is at
least the k-th best exact score (less a relative 1e-5, float32 rounding): documents tied at the
cut are all right.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.common import progress

VOCAB = 30_000
ZIPF_S, ZIPF_Q = 1.07, 2.7
NNZ = (50, 200)
QUERY_TERMS = (3, 12)
K1, B = 1.2, 0.75
TIE_REL = 1e-5  # float32 storage and float32 sums in the engines: ties within rounding


@dataclass(frozen=True)
class SparseSet:
    """Documents in CSR form (``indptr``, ``indices`` ascending per row, ``values`` float32, the
    dot-product form), the tf-only values (``tf_values``, the IDF form), and the queries (sorted
    term ids, values 1.0)."""

    name: str
    indptr: np.ndarray
    indices: np.ndarray
    values: np.ndarray
    tf_values: np.ndarray
    queries: list[np.ndarray]

    @property
    def n(self) -> int:
        return len(self.indptr) - 1

    @property
    def nnz(self) -> int:
        return len(self.indices)

    def row(self, i: int, idf_form: bool = False) -> tuple[list[int], list[float]]:
        lo, hi = int(self.indptr[i]), int(self.indptr[i + 1])
        vals = self.tf_values if idf_form else self.values
        return self.indices[lo:hi].tolist(), vals[lo:hi].tolist()

    def doc_freq(self) -> np.ndarray:
        return np.bincount(self.indices, minlength=int(self.indices.max()) + 1 if self.nnz else 0)

    def idf(self) -> np.ndarray:
        """Qdrant's IDF per term id over all documents."""
        df = self.doc_freq().astype(np.float64)
        n = float(self.n)
        out: np.ndarray = np.log((n - df + 0.5) / (df + 0.5) + 1.0)
        return out


# ---------------------------------------------------------------------------------------------
# BM25
# ---------------------------------------------------------------------------------------------
def _bm25(rows: Sequence[tuple[np.ndarray, np.ndarray]], name: str, queries: list[np.ndarray]) -> SparseSet:
    """CSR of the documents given as (sorted term ids, tf) rows; BM25 values with and without IDF."""
    lengths = np.array([int(tf.sum()) for _, tf in rows], dtype=np.float64)
    avg = float(lengths.mean()) if len(rows) else 1.0
    counts = np.array([len(t) for t, _ in rows], dtype=np.int64)
    indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    indices = np.concatenate([t for t, _ in rows]).astype(np.uint32) if rows else np.zeros(0, np.uint32)
    tf = np.concatenate([f for _, f in rows]).astype(np.float64) if rows else np.zeros(0)
    norm = np.repeat(K1 * (1.0 - B + B * lengths / avg), counts)
    tf_part = tf * (K1 + 1.0) / (tf + norm)
    df = np.bincount(indices, minlength=int(indices.max()) + 1 if len(indices) else 0).astype(np.float64)
    n = float(len(rows))
    idf = np.log((n - df + 0.5) / (df + 0.5) + 1.0)
    values = (tf_part * idf[indices]).astype(np.float32)
    return SparseSet(name, indptr, indices, values, tf_part.astype(np.float32), queries)


# ---------------------------------------------------------------------------------------------
# synthetic Zipf corpus
# ---------------------------------------------------------------------------------------------
class ZipfText:
    """Documents of Zipf-distributed tokens over ``VOCAB`` terms (see the module doc)."""

    def __init__(self, seed: int = 11) -> None:
        rng = np.random.default_rng(seed)
        p = 1.0 / (np.arange(1, VOCAB + 1) + ZIPF_Q) ** ZIPF_S
        self.cdf = np.cumsum(p / p.sum())
        self.term_of_rank = rng.permutation(VOCAB).astype(np.uint32)

    def doc(self, rng: np.random.Generator, distinct: int) -> tuple[np.ndarray, np.ndarray]:
        """(sorted term ids, tf) of one document with ``distinct`` terms (fewer if the draws run
        out, which the generous draw count makes rare)."""
        draws = np.searchsorted(self.cdf, rng.random(distinct * 4))
        np.minimum(draws, VOCAB - 1, out=draws)
        _, first = np.unique(draws, return_index=True)
        first.sort()
        end = int(first[distinct]) if len(first) > distinct else len(draws)
        ranks, tf = np.unique(draws[:end], return_counts=True)
        terms = self.term_of_rank[ranks]
        order = np.argsort(terms)
        return terms[order], tf[order]


def query_from(rng: np.random.Generator, terms: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """3..12 of a document's terms (short queries commoner), each picked with a chance in
    proportion to its weight; sorted term ids."""
    lo, hi = QUERY_TERMS
    sizes = np.arange(lo, hi + 1)
    p = 1.0 / sizes
    size = min(len(terms), int(rng.choice(sizes, p=p / p.sum())))
    w = np.asarray(weights, dtype=np.float64)
    picked = rng.choice(len(terms), size=size, replace=False, p=w / w.sum())
    return np.sort(terms[picked]).astype(np.uint32)


def synthetic(n: int, nq: int, seed: int = 11) -> SparseSet:
    text = ZipfText(seed)
    rng = np.random.default_rng(seed + 1)
    lo, hi = NNZ
    sizes = rng.integers(lo, hi + 1, n + nq)
    rows = []
    step = max(1, (n + nq) // 50)
    for i, size in enumerate(sizes.tolist()):
        rows.append(text.doc(rng, size))
        if i % step == 0 or i == n + nq - 1:
            progress("sparse corpus (Zipf, BM25)", i + 1, n + nq)
    docs = _bm25(rows[:n], f"zipf-{n // 1000}k-30k-terms", [])
    # queries: terms of fresh documents, weighed by their BM25 weight (IDF over the corpus)
    idf = docs.idf()
    queries = []
    for terms, tf in rows[n:]:
        known = terms[terms < len(idf)]
        tfk = tf[terms < len(idf)]
        queries.append(query_from(rng, known, tfk / (tfk + K1) * idf[known] + 1e-9))
    return SparseSet(docs.name, docs.indptr, docs.indices, docs.values, docs.tf_values, queries)


# ---------------------------------------------------------------------------------------------
# real sentences (optional)
# ---------------------------------------------------------------------------------------------
WORD = re.compile(r"[a-z0-9]+")
# the commonest English function words, dropped as keyword search pipelines do (fastembed's BM25
# drops a longer list)
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "from",
        "has",
        "have",
        "he",
        "her",
        "his",
        "i",
        "in",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "she",
        "that",
        "the",
        "their",
        "they",
        "this",
        "to",
        "was",
        "we",
        "were",
        "what",
        "when",
        "which",
        "who",
        "will",
        "with",
        "you",
        "your",
    ]
)


def _words(text: str) -> list[str]:
    return [w for w in WORD.findall(text.lower()) if w not in STOPWORDS]


def _texts(path: Path) -> list[str]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    rows.sort(key=lambda r: int(r["row"]))
    return [str(r["text"]) for r in rows]


def sentences(folder: Path, nq: int) -> SparseSet:
    """BM25 over the MiniLM sentences (``base_texts.jsonl``); queries: the words of
    ``query_texts.jsonl`` found in the corpus (queries with none are left out)."""
    vocab: dict[str, int] = {}
    rows = []
    for text in _texts(folder / "base_texts.jsonl"):
        words = _words(text)
        ids = np.array([vocab.setdefault(w, len(vocab)) for w in words], dtype=np.int64)
        terms, tf = np.unique(ids, return_counts=True)
        rows.append((terms.astype(np.uint32), tf))
    queries = []
    for text in _texts(folder / "query_texts.jsonl"):
        ids = sorted({vocab[w] for w in _words(text) if w in vocab})
        if ids:
            queries.append(np.array(ids, dtype=np.uint32))
        if len(queries) >= nq:
            break
    return _bm25(rows, f"minilm-sentences-{len(rows) // 1000}k", queries)


# ---------------------------------------------------------------------------------------------
# exact ground truth and tie-aware recall
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Truth:
    """Per query: the exact top-k document rows (best first; fewer when fewer documents share a
    term), the k-th best exact score (the cut), and every document's exact score (float64)."""

    top: list[np.ndarray]
    cut: np.ndarray
    matching: np.ndarray
    scores: list[dict[int, float]]


@dataclass(frozen=True)
class Columns:
    """The documents by term (CSC, built here with a stable argsort, not by any engine): the
    rows holding term ``t`` are ``rows[ptr[t]:ptr[t+1]]`` with values ``vals[...]`` (float64)."""

    ptr: np.ndarray
    rows: np.ndarray
    vals: np.ndarray

    @classmethod
    def of(cls, ds: SparseSet, idf_form: bool) -> Columns:
        order = np.argsort(ds.indices, kind="stable")
        rows = np.repeat(np.arange(ds.n, dtype=np.int64), np.diff(ds.indptr))[order]
        vals = (ds.tf_values if idf_form else ds.values).astype(np.float64)[order]
        counts = np.bincount(ds.indices, minlength=int(ds.indices.max()) + 1 if ds.nnz else 0)
        ptr = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(counts, out=ptr[1:])
        return cls(ptr, rows, vals)


def exact_scores(cols: Columns, n: int, query: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Every document's dot product with the query (float64; -inf where no term is shared): each
    query term adds its weight times the stored value to the rows holding it."""
    scores = np.zeros(n, dtype=np.float64)
    touched = np.zeros(n, dtype=np.bool_)
    for term, weight in zip(query.tolist(), weights.tolist(), strict=True):
        if term + 1 >= len(cols.ptr):
            continue
        lo, hi = int(cols.ptr[term]), int(cols.ptr[term + 1])
        rows = cols.rows[lo:hi]  # distinct within a term
        scores[rows] += cols.vals[lo:hi] * weight
        touched[rows] = True
    out: np.ndarray = np.where(touched, scores, -np.inf)
    return out


def query_weights(n: int, query: np.ndarray, idf: np.ndarray | None) -> np.ndarray:
    """Query values as scored: 1.0 each, times the term's IDF in the IDF form (``idf`` given)."""
    ones = np.ones(len(query), dtype=np.float64)
    if idf is None:
        return ones
    inside = query < len(idf)
    w = np.zeros(len(query), dtype=np.float64)
    w[inside] = idf[query[inside]]
    w[~inside] = np.log((n + 0.5) / 0.5 + 1.0)  # df 0
    return w


def ground_truth(ds: SparseSet, k: int, idf_form: bool = False, label: str = "exact ground truth") -> Truth:
    top, cuts, matching, scores = [], [], [], []
    idf = ds.idf() if idf_form else None
    cols = Columns.of(ds, idf_form)
    for qi, q in enumerate(ds.queries):
        s = exact_scores(cols, ds.n, q, query_weights(ds.n, q, idf))
        valid = np.flatnonzero(np.isfinite(s))
        kk = min(k, len(valid))
        if kk:
            part = valid[np.argpartition(-s[valid], kk - 1)[:kk]]
            order = np.lexsort((part, -s[part]))
            best = part[order]
        else:
            best = np.zeros(0, np.int64)
        top.append(best)
        cuts.append(float(s[best[-1]]) if kk else np.inf)
        matching.append(len(valid))
        # scores of every document at or above the cut (what a right answer may hold)
        keep = valid[s[valid] >= (cuts[-1] - abs(cuts[-1]) * TIE_REL)] if kk else valid[:0]
        scores.append(dict(zip(keep.tolist(), s[keep].tolist(), strict=True)))
        if qi % 20 == 0 or qi == len(ds.queries) - 1:
            progress(label, qi + 1, len(ds.queries))
    return Truth(top, np.asarray(cuts), np.asarray(matching), scores)


def recall(found: Iterable[Iterable[int]], truth: Truth, k: int) -> float:
    """Mean over queries with a match of |right answers in found[:k]| / min(k, matching), where
    a right answer is a document whose exact score reaches the k-th best exact score."""
    vals = []
    for got, ok, m in zip(found, truth.scores, truth.matching.tolist(), strict=True):
        want = min(k, int(m))
        if want == 0:
            continue
        hits = {int(x) for x in list(got)[:k]}
        vals.append(min(want, len(hits & ok.keys())) / want)
    return float(np.mean(vals)) if vals else 1.0
