"""``GET /telemetry``: Qdrant's ``TelemetryData`` by ``details_level``.

- 0 (default): the app and its feature flags, the collection count, cluster mode, the REST and gRPC
  responses per endpoint and status (``request_stats.py``), the write quota;
- 1: also memory, hardware and search-pool figures, and per collection its vector count,
  optimizer status and parameters;
- 2: per collection its configuration instead;
- 3: its shards too: this peer's replica of each (points, vectors, optimizer, update queue), the
  other replicas and every replica's state, the collection's transfers;
- 4 and above: each local replica's segments as well.

Figures this engine does not keep are reported as Qdrant reports an idle node (zero counts, empty
lists) or left out where the schema lets them be absent (``init_time_ms``); nothing is invented
that a reader could mistake for a measurement.
"""

from __future__ import annotations

import datetime as dt
import os
import resource
import uuid
from typing import Any

from aiohttp import web

import qcluster
from qcluster.api.actions import cluster as cluster_actions
from qcluster.api.rest.app import CONSENSUS_KEY, METRICS_KEY, TOC_KEY, ok
from qcluster.api.rest.parse import query_int
from qcluster.api.rest.quotas import QUOTAS_KEY
from qcluster.collection import Collection
from qcluster.shards.local_shard import LocalShard
from qcluster.shards.segment import Segment

FEATURES = {  # Qdrant's build features: none of these modes exists here
    "debug": False,
    "service_debug_feature": False,
    "recovery_mode": False,
    "gpu": False,
    "rocksdb": False,
    "staging": False,
}


async def telemetry(request: web.Request) -> web.Response:
    level = query_int(request, "details_level") or 0
    app = request.app
    metrics = app[METRICS_KEY]
    consensus = app[CONSENSUS_KEY].get("service")
    toc = app[TOC_KEY]
    started = dt.datetime.fromtimestamp(metrics.started, dt.UTC).isoformat()
    out: dict[str, Any] = {
        "id": "qcluster",
        "app": {
            "name": "qcluster",
            "version": qcluster.QDRANT_COMPAT_VERSION,
            "features": FEATURES,
            "startup": started,
        },
        "collections": await _collections(toc, consensus, level),
        "cluster": {"enabled": consensus is not None},
        "requests": {
            "rest": {"responses": metrics.rest_stats.responses()},
            "grpc": {"responses": metrics.grpc_stats.responses()},
        },
        "quota": app[QUOTAS_KEY].telemetry(),
    }
    if level >= 1:
        out["memory"] = _memory()
        out["hardware"] = {"collection_data": {}}
        out["search_pool"] = {
            "mode": "threads",
            "high_cpu_threads": os.cpu_count() or 1,
            "high_io_threads": 0,
        }
    return ok(request, out)


def _memory() -> dict[str, int]:
    """Resident memory of this process (ru_maxrss is the peak; the current figure from statm)."""
    page = os.sysconf("SC_PAGE_SIZE")
    try:
        with open("/proc/self/statm") as f:
            resident = int(f.read().split()[1]) * page
    except (OSError, ValueError, IndexError):
        resident = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "active_bytes": resident,
        "allocated_bytes": resident,
        "metadata_bytes": 0,
        "resident_bytes": resident,
        "retained_bytes": 0,
    }


async def _collections(toc: Any, consensus: Any, level: int) -> dict[str, Any]:
    out: dict[str, Any] = {"number_of_collections": len(toc.collections)}
    if level < 1:
        return out
    cols = []
    for name, col in sorted(toc.collections.items()):
        if level == 1:
            info = await col.info()
            cols.append(
                {
                    "vectors": info.points_count * max(1, len(col.config.params.vectors)),
                    "optimizers_status": _optimizer_status(info.optimizer_error),
                    "params": col.config.to_wire()["params"],
                }
            )
            continue
        entry: dict[str, Any] = {"id": name, "init_time_ms": None, "config": col.config.to_wire()}
        if level >= 3:
            state = consensus.state if consensus is not None else None
            entry["shards"] = [await _replica_set(rs, level) for rs in _sets(col)]
            entry["transfers"] = [] if state is None else cluster_actions.transfers(state, name, {})
            entry["resharding"] = []
        cols.append(entry)
    out["collections"] = cols
    out["snapshots"] = [{"id": name} for name in sorted(toc.collections)]
    return out


def _sets(col: Collection) -> list[Any]:
    return [rs for _, rs in sorted(col.holder.sets.items())]


def _optimizer_status(error: str | None) -> Any:
    return "ok" if error is None else {"error": error}


async def _replica_set(rs: Any, level: int) -> dict[str, Any]:
    me = rs.env.peer_id
    return {
        "id": rs.shard_id,
        "key": rs.shard_key,
        "local": None if rs.local is None else await _local(rs.local, level),
        "remote": [{"shard_id": rs.shard_id, "peer_id": p} for p in sorted(rs.states) if p != me],
        "replicate_states": {str(p): str(s) for p, s in sorted(rs.states.items())},
        "partial_snapshot": None,
    }


async def _local(shard: LocalShard, level: int) -> dict[str, Any]:
    info = await shard.info()
    segments = list(shard.set.segments)
    by_name = {
        name: sum(_holding(s, name) for s in segments)
        for name in (*shard.config.vectors, *shard.config.sparse_vectors)
    }
    out: dict[str, Any] = {
        "variant_name": "local_shard",
        "status": info.status,
        "total_optimized_points": 0,
        "vectors_size_bytes": sum(s.vector_bytes() for s in segments),
        "payloads_size_bytes": None,
        "num_points": info.points_count,
        "num_vectors": sum(by_name.values()),
        "num_vectors_by_name": by_name,
        "optimizations": {
            "status": _optimizer_status(info.optimizer_error),
            "optimizations": {"count": 0},
        },
        "async_scorer": False,
        # acknowledged writes are applied before their answer: nothing waits behind them
        "update_queue": {"length": 0, "op_num": info.last_applied_version},
    }
    if level >= 4:
        out["segments"] = [_segment(seg, shard) for seg in segments]
        out["indexed_only_excluded_vectors"] = {}
    return out


def _holding(seg: Segment, name: str) -> int:
    """Live points of ``seg`` that have vector ``name``."""
    has = seg.has_vec.get(name)
    return 0 if has is None else int((has[: seg.size] & ~seg.deleted[: seg.size]).sum())


def _segment(seg: Segment, shard: LocalShard) -> dict[str, Any]:
    config = shard.config
    live = seg.live_count
    vector_data = {}
    vector_config = {}
    for name, dim in seg.dims.items():
        params = config.vectors.get(name)
        indexed = name in seg.indexes
        holding = _holding(seg, name)
        vector_data[name] = {
            "num_vectors": holding,
            "num_indexed_vectors": holding if indexed else 0,
            "num_deleted_vectors": seg.size - live,
        }
        if params is not None:
            hnsw = config.hnsw_for(name).model_dump(mode="json", exclude_none=True)
            vector_config[name] = {
                "size": dim,
                "distance": params.distance,
                "storage_type": "Mmap" if params.on_disk else "Memory",
                "index": {"type": "hnsw", "options": hnsw} if indexed else {"type": "plain", "options": {}},
            }
    schema = {
        key: {**fidx.schema_info(), "points": fidx.points_count()} for key, fidx in seg.field_indexes.items()
    }
    return {
        "info": {
            "uuid": _uuid(seg.id),
            "segment_type": "indexed" if seg.indexes else "plain",
            "num_vectors": sum(holding["num_vectors"] for holding in vector_data.values()),
            "num_points": live,
            "num_indexed_vectors": seg.indexed_vectors(),
            "num_deleted_vectors": seg.size - live,
            "vectors_size_bytes": seg.vector_bytes(),
            "payloads_size_bytes": 0,
            "ram_usage_bytes": seg.vector_bytes(),
            "disk_usage_bytes": 0,
            "is_appendable": seg.appendable,
            "index_schema": schema,
            "vector_data": vector_data,
        },
        "config": {"vector_data": vector_config, "payload_storage_type": {"type": "mmap"}},
        "vector_index_searches": [],
        "payload_field_indices": [
            {
                "field_name": key,
                "index_type": str(info.get("data_type", "")),
                "points_values_count": int(info.get("points", 0)),
                "points_count": int(info.get("points", 0)),
            }
            for key, info in schema.items()
        ],
    }


def _uuid(segment_id: str) -> str:
    try:
        return str(uuid.UUID(segment_id))
    except ValueError:
        return str(uuid.uuid5(uuid.NAMESPACE_OID, segment_id))
