"""The settings tree, read once in ``cli.py``; constructors take the slice they need.

Sources, lowest to highest precedence: defaults, the YAML config file (``--config-path``), env
``QDRANT__SECTION__KEY`` (accepted as an alias so Qdrant deployments work unchanged), env
``QCLUSTER__SECTION__KEY``. Section and key names follow Qdrant's ``config.yaml``. Unknown keys are
logged as warnings and ignored, never a crash.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from qcluster.json_diff import deep_merge

ENV_PREFIXES = ("QDRANT__", "QCLUSTER__")  # later wins


class _Section(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class OptimizersSettings(_Section):
    deleted_threshold: float = Field(0.2, ge=0.0, le=1.0)
    vacuum_min_vector_number: int = Field(1000, ge=100)
    default_segment_number: int = Field(0, ge=0)
    max_segment_size_kb: int | None = Field(None, ge=1)
    memmap_threshold_kb: int | None = None
    indexing_threshold_kb: int = Field(10000, ge=0)
    flush_interval_sec: float = Field(5.0, gt=0)
    max_optimization_threads: int | None = Field(None, ge=0)


class HnswIndexSettings(_Section):
    m: int = Field(16, ge=0)
    ef_construct: int = Field(100, ge=4)
    full_scan_threshold_kb: int = Field(10000, ge=0)
    max_indexing_threads: int = Field(0, ge=0)
    on_disk: bool = False
    payload_m: int | None = None


class WalSettings(_Section):
    wal_capacity_mb: int = Field(32, ge=1)
    wal_segments_ahead: int = Field(0, ge=0)
    # qcluster additions: how acknowledged writes reach the disk.
    #   fsync: fsync before every acknowledgement (default; survives power loss)
    #   group: writes within `group_commit_ms` share one fsync (acknowledged after it)
    #   os:    write(2) only; survives kill -9 of the process, not a power loss
    durability: Literal["fsync", "group", "os"] = "group"
    group_commit_ms: float = Field(2.0, ge=0.0)


class PerformanceSettings(_Section):
    max_search_threads: int = Field(0, ge=0)
    optimizer_cpu_budget: int = 0
    update_rate_limit: int | None = None
    # Shard transfers a peer takes part in at once, as target / as source (automatic recovery
    # respects them; operator-started transfers are not limited).
    incoming_shard_transfers_limit: int = Field(1, ge=1)
    outgoing_shard_transfers_limit: int = Field(1, ge=1)


class StorageSettings(_Section):
    # Listener: this peer's replicas take every write but never count for write_consistency_factor
    # and serve reads only when a shard has no Active replica (Qdrant's storage.node_type).
    node_type: Literal["Normal", "Listener"] = "Normal"
    # Method of transfers that name none (move / replicate without "method"); automatic recovery
    # of a Dead replica always tries wal_delta first.
    shard_transfer_method: Literal["stream_records", "snapshot", "wal_delta"] = "stream_records"
    storage_path: Path = Path("./storage")
    snapshots_path: Path = Path("./snapshots")
    temp_path: Path | None = None
    on_disk_payload: bool = True
    optimizers: OptimizersSettings = OptimizersSettings()
    hnsw_index: HnswIndexSettings = HnswIndexSettings()
    wal: WalSettings = WalSettings()
    performance: PerformanceSettings = PerformanceSettings()
    max_collections: int | None = Field(None, ge=0)  # Qdrant's name; None: no bound


class LimitsSettings(_Section):
    """Bounds on what one request may ask of a peer (``service.limits``; README, "Limits").

    A request beyond one of them is refused with a 4xx that names the field and the bound, before
    any work. Limits, offsets and similar sizes are not bounded here: they are clamped to what the
    collection holds, so the work follows the data, not the numbers in the request; only the
    memory a whole answer would take is bounded (``max_response_mb``). Recursion bounds have a
    ceiling (``le``) below what the parsers can take without exhausting the stack.
    """

    # request bodies
    max_filter_depth: int = Field(32, ge=1, le=100)  # nested must / should / must_not / nested
    max_filter_conditions: int = Field(10_000, ge=1)  # conditions in one filter, at every level
    max_json_depth: int = Field(64, ge=4, le=200)  # payloads, set_payload key + value, metadata
    max_prefetch_depth: int = Field(8, ge=1, le=32)
    max_prefetches: int = Field(64, ge=1)  # prefetches in one query, at every level
    max_batch_queries: int = Field(1_000, ge=1)  # searches in one */batch request
    max_batch_operations: int = Field(1_000, ge=1)  # operations in one /points/batch request
    max_points_per_request: int = Field(100_000, ge=1)  # ids, points or examples in one list
    max_response_mb: int = Field(256, ge=1)  # estimated memory of one answer
    max_query_request_size_mb: int = Field(8, ge=1)  # body of a read (search, query, scroll, ...)
    max_admin_request_size_mb: int = Field(1, ge=1)  # body of collection / alias / cluster changes
    # deadlines: the `timeout` query parameter (seconds), else these
    read_timeout_sec: float = Field(60.0, gt=0)
    write_timeout_sec: float = Field(600.0, gt=0)
    max_timeout_sec: float = Field(3600.0, gt=0)
    # collection configs
    max_shard_number: int = Field(128, ge=1)
    max_replication_factor: int = Field(16, ge=1)
    max_named_vectors: int = Field(64, ge=1)
    max_hnsw_m: int = Field(256, ge=2)
    max_hnsw_ef_construct: int = Field(4096, ge=4)


class ServiceSettings(_Section):
    host: str = "0.0.0.0"
    http_port: int = Field(6333, ge=0, le=65535)
    grpc_port: int | None = Field(6334, ge=0, le=65535)
    api_key: str | None = None
    read_only_api_key: str | None = None
    enable_tls: bool = False
    max_request_size_mb: int = Field(32, ge=1)  # body of a point write (upsert, batch, ...)
    enable_cors: bool = True
    limits: LimitsSettings = LimitsSettings()


class TlsSettings(_Section):
    cert: Path | None = None
    key: Path | None = None
    ca_cert: Path | None = None


class P2pSettings(_Section):
    port: int = Field(6335, ge=0, le=65535)
    enable_tls: bool = False


class ConsensusSettings(_Section):
    tick_period_ms: int = Field(100, ge=1)


class ClusterSettings(_Section):
    enabled: bool = False
    p2p: P2pSettings = P2pSettings()
    consensus: ConsensusSettings = ConsensusSettings()
    secret: str | None = None
    allow_insecure_p2p: bool = False
    # Deadline of one point operation on another peer's replica (a write, a search, ...); a replica
    # that misses it on a write is marked Dead.
    grpc_timeout_ms: int = Field(30_000, ge=100)
    # Dead replicas of this peer are recovered by themselves (see qcluster/transfer/recovery.py);
    # off: only by an operator's replicate_shard (benchmarks compare methods that way).
    auto_recovery: bool = True
    # How often the peer leading a shard's Active replicas compares their clock maps (see
    # qcluster/cluster/replica_audit.py; part of auto_recovery).
    replica_audit_interval_sec: float = Field(5.0, gt=0)
    # How long each shard's part of a write spanning several shards keeps being re-sent while its
    # outcome is unknown (a replica restarting, a peer briefly cut off), so the write is not left
    # applied on some shards only (see qcluster/shards/replica_set.py, ``persist``). 0: never.
    write_persist_sec: float = Field(15.0, ge=0)


LOG_LEVELS = {
    "trace": "DEBUG",
    "debug": "DEBUG",
    "info": "INFO",
    "warn": "WARNING",
    "warning": "WARNING",
    "error": "ERROR",
    "off": "CRITICAL",
    "critical": "CRITICAL",
}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    log_level: str = "INFO"
    service: ServiceSettings = ServiceSettings()
    tls: TlsSettings = TlsSettings()
    cluster: ClusterSettings = ClusterSettings()
    storage: StorageSettings = StorageSettings()

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        # Qdrant accepts filter strings such as "INFO,raft=warn": the first bare level counts.
        for part in value.split(","):
            if "=" not in part and part.strip():
                return LOG_LEVELS.get(part.strip().lower(), "INFO")
        return "INFO"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Only the explicit dict built by load_settings(): one place decides precedence.
        return (init_settings,)


def _env_tree(env: Mapping[str, str]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for prefix in ENV_PREFIXES:
        for key, value in env.items():
            if not key.startswith(prefix) or len(key) == len(prefix):
                continue
            parts = [p.lower() for p in key[len(prefix) :].split("__")]
            node = tree
            for part in parts[:-1]:
                child = node.setdefault(part, {})
                if not isinstance(child, dict):
                    child = node[part] = {}
                node = child
            node[parts[-1]] = None if value.strip().lower() in ("null", "none", "") else value
    return tree


def unknown_keys(tree: Mapping[str, Any], model: type[BaseModel] = Settings, path: str = "") -> list[str]:
    """Dotted paths in ``tree`` that no settings field takes."""
    found: list[str] = []
    for key, value in tree.items():
        field = model.model_fields.get(key)
        dotted = f"{path}{key}"
        if field is None:
            found.append(dotted)
            continue
        ann = field.annotation
        if isinstance(value, Mapping) and isinstance(ann, type) and issubclass(ann, BaseModel):
            found.extend(unknown_keys(value, ann, dotted + "."))
    return found


def load_settings(config_path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Build the frozen settings tree from a YAML file and the environment."""
    env = os.environ if env is None else env
    tree: dict[str, Any] = {}
    if config_path is not None:
        with open(config_path, encoding="utf-8") as fh:
            loaded = yaml.safe_load(fh) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"config file {config_path} must hold a mapping at the top level")
        tree = deep_merge(tree, loaded)
    tree = deep_merge(tree, _env_tree(env))
    for key in unknown_keys(tree):
        warnings.warn(f"unknown settings key ignored: {key}", UserWarning, stacklevel=2)
    return Settings(**tree)
