"""Per-value HNSW graphs of one payload field over one sealed segment ("payload graphs").

Qdrant adds graph links per payload value so that a filtered walk stays inside the points a
tenant or category filter allows. FAISS walks every node it reaches and only filters results, so
here each value block (the points holding that value) gets its own level-0 HNSW graph instead,
and the blocks of a field share one FAISS ``IndexHNSW`` whose node ids are the segment offsets
and whose storage is the segment index's own storage (no vector is copied)::

    layer (one IndexHNSW, n nodes, 2*M slots each)     block "t1": 0 - 5 - 9 - 12 ...
      node -> links to nodes of its own block only     block "t2": 1 - 3 - 7 ...
                                                         unlinked (small block, no value): -1

A walk for ``tenant == t1`` starts at the block's entry (the best of a few pivots of the block,
scored exactly) and can only reach ``t1`` points. A point holding several values sits in several
blocks; blocks are packed greedily into as few layers as keep every layer's blocks disjoint
(one layer for single-valued fields, at most ``MAX_LAYERS``).

``node_value[layer][offset]`` names the block an offset is linked in (-1: none): points that got
the value after the build are found by comparing it with the current posting list, and are
scored exactly by the caller.

Files (next to the segment's index file; derived data, rebuilt by the optimizer when missing or
unreadable): ``<index>-pg-<hash of key>.npz`` (neighbours, node values, pivots; no pickle) and
``.json`` (key, schema, M, values and their layers), the JSON written last.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from qcluster.shards.index.plan import F32, I64, faiss, omp_threads

I32 = npt.NDArray[np.int32]
MAX_LAYERS = 4
PIVOTS = 16
FORMAT = 1


class PayloadGraph:
    """The payload graphs of one field of one segment (immutable once built)."""

    def __init__(
        self,
        key: str,
        schema: Any,
        m: int,
        size: int,
        values: list[Any],
        layer_of: list[int],
        pivots: list[I64],
        neighbours: list[I32],
        node_value: list[I32],
    ) -> None:
        self.key = key
        self.schema = schema  # the field schema JSON the graph was built for
        self.m = m
        self.size = size
        self.values = values
        self.layer_of = layer_of  # per value code
        self.pivots = pivots  # per value code: offsets to start from
        self.code = {v: i for i, v in enumerate(values)}
        self.node_value = node_value  # per layer: value code per offset, -1 = unlinked
        self._neighbours = neighbours  # per layer, until attached
        self._layers: list[Any] = []

    # ------------------------------------------------------------------ build
    @classmethod
    def build(
        cls,
        key: str,
        schema: Any,
        blocks: Mapping[Any, I64],
        vectors: F32,
        metric: int,
        m: int,
        ef_construct: int,
        min_block: int,
        threads: int = 1,
        progress: Callable[[int, int], None] | None = None,
    ) -> PayloadGraph:
        """Link every block of at least ``min_block`` points (offsets sorted, < len(vectors))."""
        n, dim = vectors.shape
        slots = 2 * m
        chosen = sorted(
            ((v, b) for v, b in blocks.items() if len(b) >= min_block), key=lambda kv: -len(kv[1])
        )
        total = sum(len(b) for _, b in chosen)
        neighbours: list[I32] = []
        node_value: list[I32] = []
        values: list[Any] = []
        layer_of: list[int] = []
        pivots: list[I64] = []
        done = 0

        def link(offs: I64) -> tuple[I64, int]:
            """Level-0 links of one block (global offsets, -1 padded) and its entry point."""
            sub = faiss.IndexHNSWFlat(dim, m, metric)
            sub.hnsw.efConstruction = ef_construct
            with omp_threads(1):  # blocks are small: parallel over blocks, not within one
                sub.add(np.ascontiguousarray(vectors[offs], dtype=np.float32))
            starts = faiss.vector_to_array(sub.hnsw.offsets).astype(np.int64)[:-1]
            local = faiss.vector_to_array(sub.hnsw.neighbors)[starts[:, None] + np.arange(slots)]
            return np.where(local >= 0, offs[np.maximum(local, 0)], -1), int(sub.hnsw.entry_point)

        with ThreadPoolExecutor(max(1, threads), thread_name_prefix="payload-graph") as pool:
            for (value, offs), (linked, entry_at) in zip(
                chosen, pool.map(link, [b for _, b in chosen]), strict=True
            ):
                layer = next(
                    (i for i, nv in enumerate(node_value) if not (nv[offs] >= 0).any()), len(node_value)
                )
                if layer == MAX_LAYERS:
                    continue
                if layer == len(node_value):
                    neighbours.append(np.full(n * slots, -1, dtype=np.int32))
                    node_value.append(np.full(n, -1, dtype=np.int32))
                neighbours[layer].reshape(n, slots)[offs] = linked
                node_value[layer][offs] = len(values)
                spread = offs[np.linspace(0, len(offs) - 1, min(len(offs), PIVOTS - 1)).astype(np.int64)]
                entry = offs[entry_at] if entry_at >= 0 else offs[0]
                values.append(value)
                layer_of.append(layer)
                pivots.append(np.unique(np.concatenate([[entry], spread])).astype(np.int64))
                done += len(offs)
                if progress is not None:
                    progress(done, total)
        return cls(key, schema, m, n, values, layer_of, pivots, neighbours, node_value)

    # ------------------------------------------------------------------ use
    def attach(self, storage: Any, is_similarity: bool) -> None:
        """Build the FAISS layers over ``storage`` (the segment index's codes; kept alive by the
        caller). Idempotent."""
        if self._layers or not self._neighbours:
            return
        slots = 2 * self.m
        for nbrs in self._neighbours:
            layer = faiss.IndexHNSW(storage, self.m)
            h = layer.hnsw
            faiss.copy_array_to_vector(np.ones(self.size, dtype=np.int32), h.levels)
            faiss.copy_array_to_vector(np.arange(self.size + 1, dtype=np.uint64) * slots, h.offsets)
            faiss.copy_array_to_vector(nbrs, h.neighbors)
            h.entry_point = 0
            h.max_level = 0
            h.is_similarity = is_similarity
            layer.ntotal = self.size
            layer.is_trained = True
            self._layers.append(layer)
        self._neighbours = []

    def covers(self, values: Sequence[Any]) -> bool:
        return all(v in self.code for v in values)

    def route(self, values: Sequence[Any]) -> tuple[Any, I64, I32] | None:
        """(FAISS layer, pivots per value [v, PIVOTS] padded -1, value codes) when every value
        has a block in one layer; None otherwise."""
        codes = [self.code[v] for v in values if v in self.code]
        if len(codes) != len(values) or not codes or not self._layers:
            return None
        layers = {self.layer_of[c] for c in codes}
        if len(layers) != 1:
            return None
        piv = np.full((len(codes), PIVOTS), -1, dtype=np.int64)
        for i, c in enumerate(codes):
            piv[i, : len(self.pivots[c])] = self.pivots[c]
        return self._layers[layers.pop()], piv, np.asarray(codes, dtype=np.int32)

    def unlinked(self, offsets: I64, codes: I32) -> I64:
        """The offsets (holding one of the values now) that no block of those values links."""
        if not len(offsets):
            return offsets
        layer = self.layer_of[int(codes[0])]
        nv = self.node_value[layer][offsets]
        linked = nv == codes[0] if len(codes) == 1 else np.isin(nv, codes)
        return offsets[~linked]

    def memory_bytes(self) -> int:
        """Links, offsets and levels of every layer, node values and pivots."""
        per_layer = self.size * (2 * self.m * 4 + 8 + 4 + 4)
        layers = len(self._layers) or len(self._neighbours)
        return layers * per_layer + sum(len(p) * 8 for p in self.pivots)

    # ------------------------------------------------------------------ persistence
    @staticmethod
    def files(index_file: Path, key: str) -> tuple[Path, Path]:
        base = f"{index_file.stem}-pg-{hashlib.sha1(key.encode()).hexdigest()[:16]}"
        return index_file.with_name(base + ".npz"), index_file.with_name(base + ".json")

    def save(self, index_file: Path) -> None:
        data, meta_file = self.files(index_file, self.key)
        arrays: dict[str, Any] = {}
        for i, layer in enumerate(self._layers):
            arrays[f"n{i}"] = faiss.vector_to_array(layer.hnsw.neighbors)
        for i, nbrs in enumerate(self._neighbours):
            arrays[f"n{i}"] = nbrs
        for i, nv in enumerate(self.node_value):
            arrays[f"v{i}"] = nv
        arrays["pivots"] = np.concatenate(self.pivots) if self.pivots else np.empty(0, dtype=np.int64)
        arrays["splits"] = np.cumsum([len(p) for p in self.pivots], dtype=np.int64)
        _atomic(data, lambda f: np.savez(f, **arrays))
        meta = {
            "format": FORMAT,
            "key": self.key,
            "schema": self.schema,
            "m": self.m,
            "size": self.size,
            "values": self.values,
            "layers": self.layer_of,
        }
        _atomic(meta_file, lambda f: f.write(orjson.dumps(meta)))

    @classmethod
    def load_all(cls, index_file: Path) -> dict[str, PayloadGraph]:
        """Every payload graph saved next to ``index_file``; unreadable ones are skipped (the
        optimizer rebuilds what is missing)."""
        out: dict[str, PayloadGraph] = {}
        for meta_file in index_file.parent.glob(f"{index_file.stem}-pg-*.json"):
            try:
                meta = orjson.loads(meta_file.read_bytes())
                if meta.get("format") != FORMAT:
                    continue
                with np.load(meta_file.with_suffix(".npz"), allow_pickle=False) as z:
                    layers = sum(1 for name in z.files if name.startswith("n"))
                    pivots = np.split(z["pivots"], z["splits"][:-1]) if len(z["splits"]) else []
                    graph = cls(
                        str(meta["key"]),
                        meta["schema"],
                        int(meta["m"]),
                        int(meta["size"]),
                        list(meta["values"]),
                        [int(x) for x in meta["layers"]],
                        [np.asarray(p, dtype=np.int64) for p in pivots],
                        [np.asarray(z[f"n{i}"], dtype=np.int32) for i in range(layers)],
                        [np.asarray(z[f"v{i}"], dtype=np.int32) for i in range(layers)],
                    )
            except (OSError, ValueError, KeyError, TypeError) as exc:
                del exc
                continue
            out[graph.key] = graph
        return out


def _atomic(path: Path, write: Callable[[Any], object]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
