"""REST models for collection management, in Qdrant's wire shape."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

from qcluster.models.bounds import bounded_length
from qcluster.models.common import JsonObjectIn, Req, between, tag, tagged
from qcluster.models.config import (
    BinaryQuantization,
    Distance,
    HnswConfig,
    HnswConfigDiff,
    Memory,
    OptimizersConfig,
    ProductQuantization,
    QuantizationConfig,
    ScalarQuantization,
    ShardConfig,
    SparseIndexParams,
    SparseVectorParams,
    StrictModeConfig,
    TurboQuantization,
    VectorParams,
    WalConfig,
)
from qcluster.types import DEFAULT_VECTOR


def _quantization_kind(value: Any) -> str:
    if isinstance(value, dict):
        for key in ("scalar", "product", "binary", "turbo"):
            if key in value:
                return key
    if value == "Disabled":
        return "disabled"
    return "unknown"


# Tagged by its single key, so a bad value reports the errors of its own kind only.
QuantizationIn = Annotated[
    Annotated[ScalarQuantization, tag("scalar")]
    | Annotated[ProductQuantization, tag("product")]
    | Annotated[BinaryQuantization, tag("binary")]
    | Annotated[TurboQuantization, tag("turbo")],
    tagged(_quantization_kind, "one of `scalar`, `product`, `binary`, `turbo`"),
]
QuantizationDiffIn = Annotated[
    Annotated[ScalarQuantization, tag("scalar")]
    | Annotated[ProductQuantization, tag("product")]
    | Annotated[BinaryQuantization, tag("binary")]
    | Annotated[TurboQuantization, tag("turbo")]
    | Annotated[Literal["Disabled"], tag("disabled")],
    tagged(_quantization_kind, 'one of `scalar`, `product`, `binary`, `turbo` or "Disabled"'),
]
VectorsIn = Annotated[
    Annotated[VectorParams, tag("single")] | Annotated[dict[str, VectorParams], tag("named")],
    tagged(
        lambda v: "single" if isinstance(v, dict) and ("size" in v or "distance" in v) else "named",
        "vector params or a map of named vector params",
    ),
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class OptimizersConfigDiff(_Body):
    deleted_threshold: float | None = Field(None, ge=0.0, le=1.0)
    vacuum_min_vector_number: int | None = Field(None, ge=100)
    default_segment_number: int | None = Field(None, ge=0)
    max_segment_size: int | None = Field(None, ge=1)
    memmap_threshold: int | None = None
    indexing_threshold: int | None = Field(None, ge=0)
    flush_interval_sec: int | None = Field(None, ge=0)
    max_optimization_threads: int | None = Field(None, ge=0)


class WalConfigDiff(_Body):
    wal_capacity_mb: int | None = Field(None, ge=1)
    wal_segments_ahead: int | None = Field(None, ge=0)


class CreateCollection(_Body):
    vectors: VectorsIn = Field(default_factory=dict)
    shard_number: int | None = Field(None, ge=1)
    sharding_method: Literal["auto", "custom"] | None = None
    replication_factor: int | None = Field(None, ge=1)
    write_consistency_factor: int | None = Field(None, ge=1)
    on_disk_payload: bool | None = None
    hnsw_config: HnswConfigDiff | None = None
    wal_config: WalConfigDiff | None = None
    optimizers_config: OptimizersConfigDiff | None = None
    quantization_config: QuantizationIn | None = Field(
        None, validation_alias=AliasChoices("quantization_config", "quantization")
    )
    sparse_vectors: dict[str, SparseVectorParams] | None = None
    metadata: JsonObjectIn | None = None
    payload: PayloadStorageIn | None = None
    strict_mode_config: StrictModeConfig | None = None


class PayloadStorageIn(_Body):
    memory: Memory | None = None

    @field_validator("memory")
    @classmethod
    def _not_pinned(cls, value: str | None) -> str | None:
        if value == "pinned":
            raise ValueError("`pinned` memory is not supported for payload storage")
        return value


class CollectionParamsDiff(_Body):
    replication_factor: int | None = Field(None, ge=1)
    write_consistency_factor: int | None = Field(None, ge=1)
    read_fan_out_factor: int | None = None
    on_disk_payload: bool | None = None
    payload: PayloadStorageIn | None = None


class VectorParamsDiff(_Body):
    hnsw_config: HnswConfigDiff | None = None
    quantization_config: QuantizationDiffIn | None = None
    on_disk: bool | None = None
    memory: Memory | None = None

    @field_validator("memory")
    @classmethod
    def _dense_memory(cls, value: str | None) -> str | None:
        if value == "pinned":
            raise ValueError("`pinned` memory is not supported for dense vector storage")
        return value


class UpdateCollection(_Body):
    vectors: dict[str, VectorParamsDiff] | None = None
    sparse_vectors: dict[str, SparseVectorParams] | None = None
    optimizers_config: OptimizersConfigDiff | None = None
    params: CollectionParamsDiff | None = None
    hnsw_config: HnswConfigDiff | None = None
    quantization_config: QuantizationDiffIn | None = None
    metadata: JsonObjectIn | None = None
    strict_mode_config: StrictModeConfig | None = None


class CreateAliasIn(Req):
    collection_name: str
    alias_name: str


class DeleteAliasIn(Req):
    alias_name: str


class RenameAliasIn(Req):
    old_alias_name: str
    new_alias_name: str


class CreateAliasOp(Req):
    create_alias: CreateAliasIn


class DeleteAliasOp(Req):
    delete_alias: DeleteAliasIn


class RenameAliasOp(Req):
    rename_alias: RenameAliasIn


def _alias_kind(value: Any) -> str:
    if isinstance(value, dict):
        for key in ("create_alias", "delete_alias", "rename_alias"):
            if key in value:
                return key
    return "unknown"


AliasOperationIn = Annotated[
    Annotated[CreateAliasOp, tag("create_alias")]
    | Annotated[DeleteAliasOp, tag("delete_alias")]
    | Annotated[RenameAliasOp, tag("rename_alias")],
    tagged(_alias_kind, "one of `create_alias`, `delete_alias`, `rename_alias`"),
]


class ChangeAliasesIn(Req):
    actions: Annotated[
        list[AliasOperationIn], bounded_length("max_batch_operations", "number of alias actions")
    ]


class CreateFieldIndexIn(Req):
    field_name: Annotated[str, Field(min_length=1)]
    field_schema: Any = None


class DenseVectorConfigIn(Req):
    size: Annotated[int, Field(ge=0), between(1, 65536)]
    distance: Literal["Cosine", "Euclid", "Dot", "Manhattan"]
    datatype: Literal["float32", "uint8", "float16", "turbo4"] | None = None


class VectorNameConfigIn(Req):
    """``PUT /collections/{c}/vectors/{name}``: ``{"dense": {...}}`` or ``{"sparse": {...}}``."""

    dense: DenseVectorConfigIn | None = None
    sparse: SparseVectorParams | None = None


class CreateShardKeyIn(Req):
    shard_key: Any
    shards_number: int | None = Field(None, ge=1)
    replication_factor: int | None = Field(None, ge=1)
    placement: list[int] | None = None


class DropShardKeyIn(Req):
    shard_key: Any


class SnapshotRecoverIn(Req):
    location: str
    priority: Literal["no_sync", "snapshot", "replica"] | None = None
    checksum: str | None = None
    api_key: str | None = None


class CollectionParams(BaseModel):
    model_config = ConfigDict(extra="ignore")

    vectors: dict[str, VectorParams]
    sparse_vectors: dict[str, SparseVectorParams] | None = None
    shard_number: int = 1
    sharding_method: Literal["auto", "custom"] | None = None
    replication_factor: int = 1
    write_consistency_factor: int = 1
    on_disk_payload: bool = True
    payload: PayloadStorageIn | None = None
    # How point ids map to shards (qcluster's own; not on the wire). Absent: the scheme of
    # collections created before the consistent-hash ring (see qcluster.shards.routing).
    routing: Literal["hash_mod", "ring"] | None = None


class CollectionConfig(BaseModel):
    """What a collection persists (config.json) and reports in GET /collections/{name}."""

    model_config = ConfigDict(extra="ignore")

    params: CollectionParams
    hnsw_config: HnswConfig = HnswConfig()
    optimizer_config: OptimizersConfig = OptimizersConfig()
    wal_config: WalConfig = WalConfig()
    quantization_config: QuantizationConfig | None = None
    metadata: dict[str, Any] | None = None
    strict_mode_config: StrictModeConfig | None = None

    @property
    def single_unnamed(self) -> bool:
        return list(self.params.vectors) == [DEFAULT_VECTOR]

    def vector_dims(self) -> dict[str, int]:
        """Every vector name -> its dimension (0 for sparse vectors): what a copy of the points
        keeps."""
        return {
            **{n: p.size for n, p in self.params.vectors.items()},
            **dict.fromkeys(self.params.sparse_vectors or {}, 0),
        }

    def distance_of(self, name: str) -> Distance:
        """The distance a name's scores follow (sparse vectors score by dot product)."""
        params = self.params.vectors.get(name)
        return "Dot" if params is None else params.distance

    def shard_config(self) -> ShardConfig:
        return ShardConfig(
            vectors=self.params.vectors,
            sparse_vectors=self.params.sparse_vectors or {},
            hnsw_config=self.hnsw_config,
            optimizer_config=self.optimizer_config,
            wal_config=self.wal_config,
            quantization_config=self.quantization_config,
        )

    def warnings(self) -> list[str]:
        out: list[str] = []
        for params in self.params.vectors.values():
            quantized = params.quantization_config is not None or self.quantization_config is not None
            out.extend(params.warnings(quantized))
        return out

    def to_wire(self) -> dict[str, Any]:
        params = self.params.model_dump(mode="json", exclude_none=True, exclude={"routing"})
        if self.single_unnamed:
            params["vectors"] = self.params.vectors[DEFAULT_VECTOR].model_dump(mode="json", exclude_none=True)
        out: dict[str, Any] = {
            "params": params,
            "hnsw_config": _without_unset(
                self.hnsw_config.model_dump(mode="json"), ("memory", "inline_storage")
            ),
            "optimizer_config": self.optimizer_config.model_dump(mode="json"),
            "wal_config": self.wal_config.model_dump(mode="json"),
            "quantization_config": None
            if self.quantization_config is None
            else self.quantization_config.model_dump(mode="json", exclude_none=True),
        }
        if self.strict_mode_config is not None:
            out["strict_mode_config"] = self.strict_mode_config.model_dump(mode="json", exclude_none=True)
        if self.metadata is not None:
            out["metadata"] = self.metadata
        return out


def _without_unset(out: dict[str, Any], optional: tuple[str, ...]) -> dict[str, Any]:
    """Newer optional fields are left out when unset (older clients see an unchanged shape)."""
    return {k: v for k, v in out.items() if not (k in optional and v is None)}


def _apply(base: BaseModel, diff: BaseModel | None) -> Any:
    if diff is None:
        return base
    return base.model_validate({**base.model_dump(), **diff.model_dump(exclude_none=True)})


def config_from_create(
    req: CreateCollection, default_shards: int, defaults: ShardConfig | None = None
) -> CollectionConfig:
    vectors = req.vectors if isinstance(req.vectors, dict) else {DEFAULT_VECTOR: req.vectors}
    custom = req.sharding_method == "custom"
    params = CollectionParams(
        vectors=vectors,
        sparse_vectors=req.sparse_vectors or None,
        shard_number=req.shard_number or (1 if custom else default_shards),
        sharding_method="custom" if custom else None,
        routing="ring",
        replication_factor=req.replication_factor or 1,
        write_consistency_factor=req.write_consistency_factor or 1,
        on_disk_payload=True if req.on_disk_payload is None else req.on_disk_payload,
        payload=req.payload,
    )
    hnsw = defaults.hnsw_config if defaults else HnswConfig()
    optim = defaults.optimizer_config if defaults else OptimizersConfig()
    wal = defaults.wal_config if defaults else WalConfig()
    return CollectionConfig(
        params=params,
        hnsw_config=_apply(hnsw, req.hnsw_config),
        optimizer_config=_apply(optim, req.optimizers_config),
        wal_config=_apply(wal, req.wal_config),
        quantization_config=req.quantization_config,
        metadata=req.metadata,
        strict_mode_config=req.strict_mode_config,
    )


def config_after_update(cfg: CollectionConfig, req: UpdateCollection) -> CollectionConfig:
    vectors = dict(cfg.params.vectors)
    for name, diff in (req.vectors or {}).items():
        if name not in vectors:
            from qcluster.errors import BadInputError

            raise BadInputError(f"Not existing vector name error: {name}", f"vectors.{name}")
        vp = vectors[name]
        update: dict[str, Any] = {}
        if diff.hnsw_config is not None:
            merged = {
                **(vp.hnsw_config.model_dump(exclude_none=True) if vp.hnsw_config else {}),
                **diff.hnsw_config.model_dump(exclude_none=True),
            }
            update["hnsw_config"] = HnswConfigDiff(**merged)
        if diff.quantization_config is not None:
            update["quantization_config"] = (
                None if diff.quantization_config == "Disabled" else diff.quantization_config
            )
        if diff.on_disk is not None:
            update["on_disk"] = diff.on_disk
        if diff.memory is not None:
            update["memory"] = diff.memory
        vectors[name] = vp.model_copy(update=update)
    params = cfg.params.model_copy(
        update={
            "vectors": vectors,
            "sparse_vectors": _sparse_after(cfg.params.sparse_vectors, req.sparse_vectors),
            **(
                {k: v for k in type(req.params).model_fields if (v := getattr(req.params, k)) is not None}
                if req.params
                else {}
            ),
        }
    )
    metadata = cfg.metadata
    if req.metadata is not None:  # merged key by key; a null value removes its key
        merged = {**(metadata or {}), **req.metadata}
        metadata = {k: v for k, v in merged.items() if v is not None}
    return CollectionConfig(
        params=params,
        hnsw_config=_apply(cfg.hnsw_config, req.hnsw_config),
        optimizer_config=_apply(cfg.optimizer_config, req.optimizers_config),
        wal_config=cfg.wal_config,
        quantization_config=_quantization_after(cfg.quantization_config, req.quantization_config),
        metadata=metadata,
        strict_mode_config=_strict_after(cfg.strict_mode_config, req.strict_mode_config),
    )


def _strict_after(current: StrictModeConfig | None, diff: StrictModeConfig | None) -> StrictModeConfig | None:
    """Strict mode after a PATCH: the fields the diff sets replace the current ones."""
    if diff is None:
        return current
    return diff if current is None else current.merged(diff)


def _sparse_after(
    current: dict[str, SparseVectorParams] | None, diff: dict[str, SparseVectorParams] | None
) -> dict[str, SparseVectorParams] | None:
    """Sparse vector params after a PATCH: ``index`` fields merged, ``modifier`` replaced."""
    if not diff:
        return current
    out = dict(current or {})
    for name, change in diff.items():
        if name not in out:
            from qcluster.errors import BadInputError

            raise BadInputError(f"Not existing vector name error: {name}", f"sparse_vectors.{name}")
        old = out[name]
        index = old.index
        if change.index is not None:
            merged = {
                **(old.index.model_dump(exclude_none=True) if old.index else {}),
                **change.index.model_dump(exclude_none=True),
            }
            index = SparseIndexParams(**merged)
        modifier = change.modifier if change.modifier is not None else old.modifier
        out[name] = SparseVectorParams(index=index, modifier=modifier)
    return out


def _quantization_after(
    current: QuantizationConfig | None, diff: QuantizationConfig | Literal["Disabled"] | None
) -> QuantizationConfig | None:
    if diff is None:
        return current
    return None if diff == "Disabled" else diff


def with_vector(
    cfg: CollectionConfig, name: str, params: VectorParams | SparseVectorParams | None
) -> CollectionConfig:
    """The config with vector ``name`` added (dense or sparse ``params``) or removed (None)."""
    vectors = dict(cfg.params.vectors)
    sparse = dict(cfg.params.sparse_vectors or {})
    vectors.pop(name, None)
    sparse.pop(name, None)
    if isinstance(params, VectorParams):
        vectors[name] = params
    elif isinstance(params, SparseVectorParams):
        sparse[name] = params
    update = {"vectors": vectors, "sparse_vectors": sparse or None}
    return cfg.model_copy(update={"params": cfg.params.model_copy(update=update)})
