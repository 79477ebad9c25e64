"""Collection configuration models in Qdrant's wire shape, shared by the REST layer and the engine."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from qcluster.models.common import between

Distance = Literal["Cosine", "Euclid", "Dot", "Manhattan"]
CompressionRatio = Literal["x4", "x8", "x16", "x32", "x64"]
# Memory placement (Qdrant's `memory`): recorded and reported; qcluster keeps its own layout.
Memory = Literal["cold", "cached", "pinned"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class HnswConfig(_Model):
    m: int = Field(16, ge=0)
    ef_construct: int = Field(100, ge=4)
    full_scan_threshold: int = Field(10000, ge=0)
    max_indexing_threads: int = Field(0, ge=0)
    on_disk: bool | None = False
    payload_m: int | None = Field(None, ge=0)
    memory: Memory | None = None
    inline_storage: bool | None = None


class HnswConfigDiff(_Model):
    m: int | None = Field(None, ge=0)
    ef_construct: int | None = Field(None, ge=4)
    full_scan_threshold: int | None = Field(None, ge=10)
    max_indexing_threads: int | None = Field(None, ge=0)
    on_disk: bool | None = None
    payload_m: int | None = Field(None, ge=0)
    memory: Memory | None = None
    inline_storage: bool | None = None


class ScalarQuantizationConfig(_Model):
    type: Literal["int8"] = "int8"
    quantile: float | None = Field(None, ge=0.5, le=1.0)
    always_ram: bool | None = None
    memory: Memory | None = None


class ScalarQuantization(_Model):
    scalar: ScalarQuantizationConfig


class ProductQuantizationConfig(_Model):
    compression: CompressionRatio
    always_ram: bool | None = None
    memory: Memory | None = None


class ProductQuantization(_Model):
    product: ProductQuantizationConfig


class BinaryQuantizationConfig(_Model):
    always_ram: bool | None = None
    memory: Memory | None = None


class BinaryQuantization(_Model):
    binary: BinaryQuantizationConfig


class TurboQuantizationConfig(_Model):
    bits: Literal["bits1", "bits1_5", "bits2", "bits4"] | None = None
    always_ram: bool | None = None
    memory: Memory | None = None


class TurboQuantization(_Model):
    """Qdrant's TurboQuant codes; qcluster indexes them as scalar int8 (at least as precise)."""

    turbo: TurboQuantizationConfig


QuantizationConfig = ScalarQuantization | ProductQuantization | BinaryQuantization | TurboQuantization


class MultiVectorConfig(_Model):
    comparator: Literal["max_sim"]


class VectorParams(_Model):
    size: Annotated[int, Field(ge=0), between(1, 65536)]
    distance: Distance
    hnsw_config: HnswConfigDiff | None = None
    quantization_config: QuantizationConfig | None = None
    on_disk: bool | None = None
    memory: Memory | None = None
    # turbo4 (Qdrant's 4-bit storage) is accepted and stored as float32
    datatype: Literal["float32", "uint8", "float16", "turbo4"] | None = None
    multivector_config: MultiVectorConfig | None = None

    @field_validator("memory")
    @classmethod
    def _dense_memory(cls, value: str | None) -> str | None:
        if value == "pinned":
            raise ValueError("`pinned` memory is not supported for dense vector storage")
        return value

    @property
    def multi(self) -> bool:
        return self.multivector_config is not None

    def warnings(self, quantized: bool) -> list[str]:
        """Qdrant's configuration warnings for this vector."""
        if self.hnsw_config is None or not self.hnsw_config.inline_storage:
            return []
        if self.multi:
            return ["HNSW inline storage is not supported for multivectors: it is ignored"]
        if not quantized:
            return ["HNSW inline storage requires quantization to be enabled: it is ignored"]
        return []


class SparseIndexParams(_Model):
    full_scan_threshold: int | None = Field(None, ge=0)
    on_disk: bool | None = None
    memory: Memory | None = None
    datatype: Literal["float32", "uint8", "float16", "turbo4"] | None = None

    @field_validator("datatype")
    @classmethod
    def _sparse_datatype(cls, value: str | None) -> str | None:
        if value == "turbo4":
            raise ValueError("sparse vectors do not support the turbo4 datatype")
        return value


class SparseVectorParams(_Model):
    """A named sparse vector: scores are dot products; ``modifier: idf`` weighs query terms by
    their inverse document frequency."""

    index: SparseIndexParams | None = None
    modifier: Literal["none", "idf"] | None = None

    @property
    def idf(self) -> bool:
        return self.modifier == "idf"


class OptimizersConfig(_Model):
    deleted_threshold: float = Field(0.2, ge=0.0, le=1.0)
    vacuum_min_vector_number: int = Field(1000, ge=100)
    default_segment_number: int = Field(0, ge=0)
    max_segment_size: int | None = Field(None, ge=1)
    memmap_threshold: int | None = None
    indexing_threshold: int | None = Field(10000, ge=0)
    flush_interval_sec: int = Field(5, ge=0)
    max_optimization_threads: int | None = Field(None, ge=0)


class WalConfig(_Model):
    wal_capacity_mb: int = Field(32, ge=1)
    wal_segments_ahead: int = Field(0, ge=0)


class StrictModeMultivector(_Model):
    max_vectors: int | None = Field(None, ge=1)


class StrictModeSparse(_Model):
    max_length: int | None = Field(None, ge=1)


class StrictModeConfig(_Model):
    """A collection's ``strict_mode_config``: limits its requests must stay within while
    ``enabled`` (checked by ``qcluster.collection.strict``). Unset fields are no limit."""

    enabled: bool | None = None
    max_query_limit: int | None = Field(None, ge=1)
    max_timeout: int | None = Field(None, ge=1)
    unindexed_filtering_retrieve: bool | None = None
    unindexed_filtering_update: bool | None = None
    search_max_hnsw_ef: int | None = Field(None, ge=0)
    search_allow_exact: bool | None = None
    search_max_oversampling: float | None = None
    upsert_max_batchsize: int | None = Field(None, ge=0)
    search_max_batchsize: int | None = Field(None, ge=0)
    max_collection_vector_size_bytes: int | None = Field(None, ge=0)
    read_rate_limit: int | None = Field(None, ge=1)
    write_rate_limit: int | None = Field(None, ge=1)
    max_collection_payload_size_bytes: int | None = Field(None, ge=0)
    max_points_count: int | None = Field(None, ge=1)
    filter_max_conditions: int | None = Field(None, ge=0)
    condition_max_size: int | None = Field(None, ge=0)
    multivector_config: dict[str, StrictModeMultivector] | None = None
    sparse_config: dict[str, StrictModeSparse] | None = None
    max_payload_index_count: int | None = Field(None, ge=0)
    max_resident_memory_percent: int | None = Field(None, ge=1, le=100)  # deprecated by Qdrant

    def merged(self, diff: StrictModeConfig) -> StrictModeConfig:
        """This config with the fields ``diff`` sets replaced (a PATCH)."""
        return StrictModeConfig.model_validate(
            {**self.model_dump(exclude_none=True), **diff.model_dump(exclude_none=True)}
        )


class ShardConfig(_Model):
    """What one local shard needs to know about its collection."""

    vectors: dict[str, VectorParams]
    sparse_vectors: dict[str, SparseVectorParams] = Field(default_factory=dict)
    hnsw_config: HnswConfig = HnswConfig()
    optimizer_config: OptimizersConfig = OptimizersConfig()
    wal_config: WalConfig = WalConfig()
    quantization_config: QuantizationConfig | None = None

    def dense_dims(self) -> dict[str, int]:
        """Single-vector names -> dimension (multivectors excluded)."""
        return {n: p.size for n, p in self.vectors.items() if not p.multi}

    def multi_dims(self) -> dict[str, int]:
        return {n: p.size for n, p in self.vectors.items() if p.multi}

    def hnsw_for(self, name: str) -> HnswConfig:
        """The collection HNSW config with the vector's own overrides applied."""
        diff = self.vectors[name].hnsw_config
        if diff is None:
            return self.hnsw_config
        return self.hnsw_config.model_copy(update=diff.model_dump(exclude_none=True))

    def quantization_for(self, name: str) -> QuantizationConfig | None:
        own = self.vectors[name].quantization_config
        return own if own is not None else self.quantization_config
