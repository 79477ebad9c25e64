"""Which payload graphs a sealed segment should have, and building them (for the optimizer).

A field gets payload graphs (``index/payload_graph.py``) when its payload index keeps posting
lists (keyword, integer with ``lookup``, uuid, bool), its schema does not say
``enable_hnsw: false``, and the graph degree ``payload_m`` (default: ``m``) is above zero. Only
values held by more points than the planner would score exactly get a graph (``min_block``):
smaller blocks are answered exactly anyway (Qdrant's rule with its ``full_scan_threshold``).

Each graph records the spec it was built for (schema JSON, degree, ``min_block``); a change of
any of them, or of the segment's size, means rebuild. Graphs of fields no longer indexed are
dropped. Merged segments are laid out tenant-first (``layout_order``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from qcluster.models.config import ShardConfig
from qcluster.shards.index import VectorIndex
from qcluster.shards.index.payload_graph import PayloadGraph
from qcluster.shards.payload_index import parse_field_schema
from qcluster.shards.segment import Segment
from qcluster.shards.segment_search import block_threshold

GRAPH_KINDS = ("keyword", "integer", "uuid", "bool")
I64 = npt.NDArray[np.int64]


def wanted(config: ShardConfig, field_schemas: dict[str, Any], using: str) -> dict[str, dict[str, Any]]:
    """Field key -> the spec its payload graph must have, for vector ``using``."""
    hnsw = config.hnsw_for(using)
    m = hnsw.payload_m if hnsw.payload_m is not None else hnsw.m
    if m <= 0:
        return {}
    dim = config.vectors[using].size
    out: dict[str, dict[str, Any]] = {}
    for key, raw in field_schemas.items():
        schema = parse_field_schema(raw)
        if schema.type not in GRAPH_KINDS or not schema.flag("enable_hnsw", True):
            continue
        if schema.type == "integer" and not schema.flag("lookup", True):
            continue
        out[key] = {
            "schema": raw,
            "m": max(2, m),
            "ef_construct": hnsw.ef_construct,
            "min_block": block_threshold(hnsw, dim),
        }
    return out


def stale(seg: Segment, using: str, specs: dict[str, dict[str, Any]]) -> list[str]:
    """Keys whose graph is missing or was built for another spec or size."""
    index = seg.indexes.get(using)
    if index is None or index.graph_storage() is None:
        return []
    have = index.payload_graphs
    return [
        key
        for key, spec in specs.items()
        if key not in have or have[key].schema != spec or have[key].size != seg.size
    ]


def drop_unwanted(seg: Segment, using: str, specs: dict[str, dict[str, Any]]) -> None:
    """Forget graphs of fields that no longer want one (their files go with the next rebuild of
    the segment; a reload ignores graphs whose spec does not match)."""
    index = seg.indexes.get(using)
    if index is None:
        return
    for key in [k for k in index.payload_graphs if k not in specs]:
        index.without_payload_graph(key)


def build(
    seg: Segment,
    index: VectorIndex,
    using: str,
    keys: list[str],
    specs: dict[str, dict[str, Any]],
    threads: int,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, PayloadGraph]:
    """Build the graphs of ``keys`` over ``seg``'s vectors and attach them to ``index``'s
    storage, ready to publish (optimizer thread; the segment's vectors are immutable, its payload
    indexes are read under their locks)."""
    vectors = np.asarray(seg.vectors[using][: seg.size])
    out: dict[str, PayloadGraph] = {}
    for key in keys:
        fidx = seg.field_index(key)
        spec = specs[key]
        blocks = None if fidx is None else fidx.value_blocks(int(spec["min_block"]))
        out[key] = PayloadGraph.build(
            key,
            spec,
            blocks or {},
            vectors,
            index.metric(),
            int(spec["m"]),
            int(spec["ef_construct"]),
            int(spec["min_block"]),
            threads=threads,
            progress=progress,
        )
        index.prepare_graph(out[key])
    return out


def layout_field(field_schemas: dict[str, Any]) -> tuple[str, str] | None:
    """The field merged segments are ordered by: the first ``is_tenant`` keyword / uuid field
    (Qdrant's tenant-first layout: one tenant's points sit together, so scoring a tenant exactly
    reads contiguous vectors), else the first ``is_principal`` numeric field."""
    principal = None
    for key, raw in field_schemas.items():
        schema = parse_field_schema(raw)
        if schema.type in ("keyword", "uuid") and schema.is_tenant:
            return key, "tenant"
        if (
            principal is None
            and schema.type in ("integer", "float", "datetime")
            and schema.flag("is_principal", False)
        ):
            principal = (key, "principal")
    return principal


def layout_order(payloads: list[Any], start: int, layout: tuple[str, str] | None) -> I64 | None:
    """A stable order of rows ``start..`` by the layout field's value (rows before ``start``, the
    base segment whose graph is extended, keep their places); None when there is nothing to do."""
    if layout is None or len(payloads) - start < 2:
        return None
    key, kind = layout
    values = [(p or {}).get(key) if isinstance(p, dict) else None for p in payloads[start:]]
    if kind == "tenant":
        keys = np.array([v if isinstance(v, str) else "" for v in values])
    else:
        keys = np.array(
            [float(v) if isinstance(v, int | float) and not isinstance(v, bool) else np.inf for v in values]
        )
    order = np.argsort(keys, kind="stable") + start
    return np.concatenate([np.arange(start, dtype=np.int64), order.astype(np.int64)])
