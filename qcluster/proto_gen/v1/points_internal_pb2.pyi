from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ShardRef(_message.Message):
    __slots__ = ("collection", "shard_id")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    SHARD_ID_FIELD_NUMBER: _ClassVar[int]
    collection: str
    shard_id: int
    def __init__(self, collection: _Optional[str] = ..., shard_id: _Optional[int] = ...) -> None: ...

class ClockTag(_message.Message):
    __slots__ = ("peer_id", "clock_id", "tick")
    PEER_ID_FIELD_NUMBER: _ClassVar[int]
    CLOCK_ID_FIELD_NUMBER: _ClassVar[int]
    TICK_FIELD_NUMBER: _ClassVar[int]
    peer_id: int
    clock_id: int
    tick: int
    def __init__(self, peer_id: _Optional[int] = ..., clock_id: _Optional[int] = ..., tick: _Optional[int] = ...) -> None: ...

class PointId(_message.Message):
    __slots__ = ("num", "uuid")
    NUM_FIELD_NUMBER: _ClassVar[int]
    UUID_FIELD_NUMBER: _ClassVar[int]
    num: int
    uuid: str
    def __init__(self, num: _Optional[int] = ..., uuid: _Optional[str] = ...) -> None: ...

class VectorBlock(_message.Message):
    __slots__ = ("name", "rows", "dim", "data", "present", "indptr", "indices", "sparse")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    DIM_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    PRESENT_FIELD_NUMBER: _ClassVar[int]
    INDPTR_FIELD_NUMBER: _ClassVar[int]
    INDICES_FIELD_NUMBER: _ClassVar[int]
    SPARSE_FIELD_NUMBER: _ClassVar[int]
    name: str
    rows: int
    dim: int
    data: bytes
    present: bytes
    indptr: bytes
    indices: bytes
    sparse: bool
    def __init__(self, name: _Optional[str] = ..., rows: _Optional[int] = ..., dim: _Optional[int] = ..., data: _Optional[bytes] = ..., present: _Optional[bytes] = ..., indptr: _Optional[bytes] = ..., indices: _Optional[bytes] = ..., sparse: _Optional[bool] = ...) -> None: ...

class PayloadSelector(_message.Message):
    __slots__ = ("enabled", "has_include", "include", "exclude")
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    HAS_INCLUDE_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    has_include: bool
    include: _containers.RepeatedScalarFieldContainer[str]
    exclude: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, enabled: _Optional[bool] = ..., has_include: _Optional[bool] = ..., include: _Optional[_Iterable[str]] = ..., exclude: _Optional[_Iterable[str]] = ...) -> None: ...

class VectorSelector(_message.Message):
    __slots__ = ("enabled", "has_names", "names")
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    HAS_NAMES_FIELD_NUMBER: _ClassVar[int]
    NAMES_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    has_names: bool
    names: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, enabled: _Optional[bool] = ..., has_names: _Optional[bool] = ..., names: _Optional[_Iterable[str]] = ...) -> None: ...

class UpdateShardRequest(_message.Message):
    __slots__ = ("shard", "operation", "wait", "clock", "coordinate", "ordering", "forwarded")
    SHARD_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    WAIT_FIELD_NUMBER: _ClassVar[int]
    CLOCK_FIELD_NUMBER: _ClassVar[int]
    COORDINATE_FIELD_NUMBER: _ClassVar[int]
    ORDERING_FIELD_NUMBER: _ClassVar[int]
    FORWARDED_FIELD_NUMBER: _ClassVar[int]
    shard: ShardRef
    operation: bytes
    wait: bool
    clock: ClockTag
    coordinate: bool
    ordering: str
    forwarded: bool
    def __init__(self, shard: _Optional[_Union[ShardRef, _Mapping]] = ..., operation: _Optional[bytes] = ..., wait: _Optional[bool] = ..., clock: _Optional[_Union[ClockTag, _Mapping]] = ..., coordinate: _Optional[bool] = ..., ordering: _Optional[str] = ..., forwarded: _Optional[bool] = ...) -> None: ...

class UpdateShardResponse(_message.Message):
    __slots__ = ("operation_id", "status")
    OPERATION_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    operation_id: int
    status: str
    def __init__(self, operation_id: _Optional[int] = ..., status: _Optional[str] = ...) -> None: ...

class SearchParams(_message.Message):
    __slots__ = ("hnsw_ef", "exact", "has_quantization", "quantization_ignore", "quantization_rescore", "quantization_oversampling", "indexed_only", "idf_corpus_json")
    HNSW_EF_FIELD_NUMBER: _ClassVar[int]
    EXACT_FIELD_NUMBER: _ClassVar[int]
    HAS_QUANTIZATION_FIELD_NUMBER: _ClassVar[int]
    QUANTIZATION_IGNORE_FIELD_NUMBER: _ClassVar[int]
    QUANTIZATION_RESCORE_FIELD_NUMBER: _ClassVar[int]
    QUANTIZATION_OVERSAMPLING_FIELD_NUMBER: _ClassVar[int]
    INDEXED_ONLY_FIELD_NUMBER: _ClassVar[int]
    IDF_CORPUS_JSON_FIELD_NUMBER: _ClassVar[int]
    hnsw_ef: int
    exact: bool
    has_quantization: bool
    quantization_ignore: bool
    quantization_rescore: int
    quantization_oversampling: float
    indexed_only: bool
    idf_corpus_json: str
    def __init__(self, hnsw_ef: _Optional[int] = ..., exact: _Optional[bool] = ..., has_quantization: _Optional[bool] = ..., quantization_ignore: _Optional[bool] = ..., quantization_rescore: _Optional[int] = ..., quantization_oversampling: _Optional[float] = ..., indexed_only: _Optional[bool] = ..., idf_corpus_json: _Optional[str] = ...) -> None: ...

class SearchQuery(_message.Message):
    __slots__ = ("using", "vector", "limit", "offset", "filter_json", "has_score_threshold", "score_threshold", "params", "with_payload", "with_vector", "vector_rows", "sparse", "sparse_indices")
    USING_FIELD_NUMBER: _ClassVar[int]
    VECTOR_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    FILTER_JSON_FIELD_NUMBER: _ClassVar[int]
    HAS_SCORE_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    SCORE_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    WITH_PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    WITH_VECTOR_FIELD_NUMBER: _ClassVar[int]
    VECTOR_ROWS_FIELD_NUMBER: _ClassVar[int]
    SPARSE_FIELD_NUMBER: _ClassVar[int]
    SPARSE_INDICES_FIELD_NUMBER: _ClassVar[int]
    using: str
    vector: bytes
    limit: int
    offset: int
    filter_json: str
    has_score_threshold: bool
    score_threshold: float
    params: SearchParams
    with_payload: PayloadSelector
    with_vector: VectorSelector
    vector_rows: int
    sparse: bool
    sparse_indices: bytes
    def __init__(self, using: _Optional[str] = ..., vector: _Optional[bytes] = ..., limit: _Optional[int] = ..., offset: _Optional[int] = ..., filter_json: _Optional[str] = ..., has_score_threshold: _Optional[bool] = ..., score_threshold: _Optional[float] = ..., params: _Optional[_Union[SearchParams, _Mapping]] = ..., with_payload: _Optional[_Union[PayloadSelector, _Mapping]] = ..., with_vector: _Optional[_Union[VectorSelector, _Mapping]] = ..., vector_rows: _Optional[int] = ..., sparse: _Optional[bool] = ..., sparse_indices: _Optional[bytes] = ...) -> None: ...

class SearchShardRequest(_message.Message):
    __slots__ = ("shard", "queries")
    SHARD_FIELD_NUMBER: _ClassVar[int]
    QUERIES_FIELD_NUMBER: _ClassVar[int]
    shard: ShardRef
    queries: _containers.RepeatedCompositeFieldContainer[SearchQuery]
    def __init__(self, shard: _Optional[_Union[ShardRef, _Mapping]] = ..., queries: _Optional[_Iterable[_Union[SearchQuery, _Mapping]]] = ...) -> None: ...

class ScoredPoint(_message.Message):
    __slots__ = ("id", "version", "score", "payload_json", "has_payload", "vectors")
    ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_JSON_FIELD_NUMBER: _ClassVar[int]
    HAS_PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    VECTORS_FIELD_NUMBER: _ClassVar[int]
    id: PointId
    version: int
    score: float
    payload_json: bytes
    has_payload: bool
    vectors: _containers.RepeatedCompositeFieldContainer[VectorBlock]
    def __init__(self, id: _Optional[_Union[PointId, _Mapping]] = ..., version: _Optional[int] = ..., score: _Optional[float] = ..., payload_json: _Optional[bytes] = ..., has_payload: _Optional[bool] = ..., vectors: _Optional[_Iterable[_Union[VectorBlock, _Mapping]]] = ...) -> None: ...

class SearchResult(_message.Message):
    __slots__ = ("points",)
    POINTS_FIELD_NUMBER: _ClassVar[int]
    points: _containers.RepeatedCompositeFieldContainer[ScoredPoint]
    def __init__(self, points: _Optional[_Iterable[_Union[ScoredPoint, _Mapping]]] = ...) -> None: ...

class SearchShardResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[SearchResult]
    def __init__(self, results: _Optional[_Iterable[_Union[SearchResult, _Mapping]]] = ...) -> None: ...

class Record(_message.Message):
    __slots__ = ("id", "payload_json", "has_payload", "vectors", "has_order_value", "order_value", "order_value_is_int", "order_value_int")
    ID_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_JSON_FIELD_NUMBER: _ClassVar[int]
    HAS_PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    VECTORS_FIELD_NUMBER: _ClassVar[int]
    HAS_ORDER_VALUE_FIELD_NUMBER: _ClassVar[int]
    ORDER_VALUE_FIELD_NUMBER: _ClassVar[int]
    ORDER_VALUE_IS_INT_FIELD_NUMBER: _ClassVar[int]
    ORDER_VALUE_INT_FIELD_NUMBER: _ClassVar[int]
    id: PointId
    payload_json: bytes
    has_payload: bool
    vectors: _containers.RepeatedCompositeFieldContainer[VectorBlock]
    has_order_value: bool
    order_value: float
    order_value_is_int: bool
    order_value_int: int
    def __init__(self, id: _Optional[_Union[PointId, _Mapping]] = ..., payload_json: _Optional[bytes] = ..., has_payload: _Optional[bool] = ..., vectors: _Optional[_Iterable[_Union[VectorBlock, _Mapping]]] = ..., has_order_value: _Optional[bool] = ..., order_value: _Optional[float] = ..., order_value_is_int: _Optional[bool] = ..., order_value_int: _Optional[int] = ...) -> None: ...

class OrderBy(_message.Message):
    __slots__ = ("key", "direction", "has_start_from", "start_from", "start_from_is_int", "start_from_int")
    KEY_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    HAS_START_FROM_FIELD_NUMBER: _ClassVar[int]
    START_FROM_FIELD_NUMBER: _ClassVar[int]
    START_FROM_IS_INT_FIELD_NUMBER: _ClassVar[int]
    START_FROM_INT_FIELD_NUMBER: _ClassVar[int]
    key: str
    direction: str
    has_start_from: bool
    start_from: float
    start_from_is_int: bool
    start_from_int: int
    def __init__(self, key: _Optional[str] = ..., direction: _Optional[str] = ..., has_start_from: _Optional[bool] = ..., start_from: _Optional[float] = ..., start_from_is_int: _Optional[bool] = ..., start_from_int: _Optional[int] = ...) -> None: ...

class ScrollShardRequest(_message.Message):
    __slots__ = ("shard", "offset", "has_offset", "limit", "filter_json", "with_payload", "with_vector", "order_by", "has_order_by")
    SHARD_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    HAS_OFFSET_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    FILTER_JSON_FIELD_NUMBER: _ClassVar[int]
    WITH_PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    WITH_VECTOR_FIELD_NUMBER: _ClassVar[int]
    ORDER_BY_FIELD_NUMBER: _ClassVar[int]
    HAS_ORDER_BY_FIELD_NUMBER: _ClassVar[int]
    shard: ShardRef
    offset: PointId
    has_offset: bool
    limit: int
    filter_json: str
    with_payload: PayloadSelector
    with_vector: VectorSelector
    order_by: OrderBy
    has_order_by: bool
    def __init__(self, shard: _Optional[_Union[ShardRef, _Mapping]] = ..., offset: _Optional[_Union[PointId, _Mapping]] = ..., has_offset: _Optional[bool] = ..., limit: _Optional[int] = ..., filter_json: _Optional[str] = ..., with_payload: _Optional[_Union[PayloadSelector, _Mapping]] = ..., with_vector: _Optional[_Union[VectorSelector, _Mapping]] = ..., order_by: _Optional[_Union[OrderBy, _Mapping]] = ..., has_order_by: _Optional[bool] = ...) -> None: ...

class ScrollShardResponse(_message.Message):
    __slots__ = ("points", "next_page_offset", "has_next_page_offset")
    POINTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_OFFSET_FIELD_NUMBER: _ClassVar[int]
    HAS_NEXT_PAGE_OFFSET_FIELD_NUMBER: _ClassVar[int]
    points: _containers.RepeatedCompositeFieldContainer[Record]
    next_page_offset: PointId
    has_next_page_offset: bool
    def __init__(self, points: _Optional[_Iterable[_Union[Record, _Mapping]]] = ..., next_page_offset: _Optional[_Union[PointId, _Mapping]] = ..., has_next_page_offset: _Optional[bool] = ...) -> None: ...

class CountShardRequest(_message.Message):
    __slots__ = ("shard", "filter_json", "exact")
    SHARD_FIELD_NUMBER: _ClassVar[int]
    FILTER_JSON_FIELD_NUMBER: _ClassVar[int]
    EXACT_FIELD_NUMBER: _ClassVar[int]
    shard: ShardRef
    filter_json: str
    exact: bool
    def __init__(self, shard: _Optional[_Union[ShardRef, _Mapping]] = ..., filter_json: _Optional[str] = ..., exact: _Optional[bool] = ...) -> None: ...

class CountShardResponse(_message.Message):
    __slots__ = ("count",)
    COUNT_FIELD_NUMBER: _ClassVar[int]
    count: int
    def __init__(self, count: _Optional[int] = ...) -> None: ...

class RetrieveShardRequest(_message.Message):
    __slots__ = ("shard", "ids", "with_payload", "with_vector")
    SHARD_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    WITH_PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    WITH_VECTOR_FIELD_NUMBER: _ClassVar[int]
    shard: ShardRef
    ids: _containers.RepeatedCompositeFieldContainer[PointId]
    with_payload: PayloadSelector
    with_vector: VectorSelector
    def __init__(self, shard: _Optional[_Union[ShardRef, _Mapping]] = ..., ids: _Optional[_Iterable[_Union[PointId, _Mapping]]] = ..., with_payload: _Optional[_Union[PayloadSelector, _Mapping]] = ..., with_vector: _Optional[_Union[VectorSelector, _Mapping]] = ...) -> None: ...

class RetrieveShardResponse(_message.Message):
    __slots__ = ("points",)
    POINTS_FIELD_NUMBER: _ClassVar[int]
    points: _containers.RepeatedCompositeFieldContainer[Record]
    def __init__(self, points: _Optional[_Iterable[_Union[Record, _Mapping]]] = ...) -> None: ...

class FacetShardRequest(_message.Message):
    __slots__ = ("shard", "key", "filter_json", "limit", "exact")
    SHARD_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    FILTER_JSON_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    EXACT_FIELD_NUMBER: _ClassVar[int]
    shard: ShardRef
    key: str
    filter_json: str
    limit: int
    exact: bool
    def __init__(self, shard: _Optional[_Union[ShardRef, _Mapping]] = ..., key: _Optional[str] = ..., filter_json: _Optional[str] = ..., limit: _Optional[int] = ..., exact: _Optional[bool] = ...) -> None: ...

class FacetShardResponse(_message.Message):
    __slots__ = ("hits_json",)
    HITS_JSON_FIELD_NUMBER: _ClassVar[int]
    hits_json: bytes
    def __init__(self, hits_json: _Optional[bytes] = ...) -> None: ...

class ShardInfoRequest(_message.Message):
    __slots__ = ("shard",)
    SHARD_FIELD_NUMBER: _ClassVar[int]
    shard: ShardRef
    def __init__(self, shard: _Optional[_Union[ShardRef, _Mapping]] = ...) -> None: ...

class ShardInfoResponse(_message.Message):
    __slots__ = ("info_json",)
    INFO_JSON_FIELD_NUMBER: _ClassVar[int]
    info_json: bytes
    def __init__(self, info_json: _Optional[bytes] = ...) -> None: ...

class ClockMapResponse(_message.Message):
    __slots__ = ("clocks",)
    CLOCKS_FIELD_NUMBER: _ClassVar[int]
    clocks: _containers.RepeatedCompositeFieldContainer[ClockTag]
    def __init__(self, clocks: _Optional[_Iterable[_Union[ClockTag, _Mapping]]] = ...) -> None: ...
