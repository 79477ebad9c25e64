from qcluster.proto_gen.v1 import points_internal_pb2 as _points_internal_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PrepareTargetRequest(_message.Message):
    __slots__ = ("shard", "reset", "from_peer_id")
    SHARD_FIELD_NUMBER: _ClassVar[int]
    RESET_FIELD_NUMBER: _ClassVar[int]
    FROM_PEER_ID_FIELD_NUMBER: _ClassVar[int]
    shard: _points_internal_pb2.ShardRef
    reset: bool
    from_peer_id: int
    def __init__(self, shard: _Optional[_Union[_points_internal_pb2.ShardRef, _Mapping]] = ..., reset: _Optional[bool] = ..., from_peer_id: _Optional[int] = ...) -> None: ...

class PrepareTargetResponse(_message.Message):
    __slots__ = ("points_count",)
    POINTS_COUNT_FIELD_NUMBER: _ClassVar[int]
    points_count: int
    def __init__(self, points_count: _Optional[int] = ...) -> None: ...

class ApplyRecordsRequest(_message.Message):
    __slots__ = ("shard", "records")
    SHARD_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    shard: _points_internal_pb2.ShardRef
    records: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, shard: _Optional[_Union[_points_internal_pb2.ShardRef, _Mapping]] = ..., records: _Optional[_Iterable[bytes]] = ...) -> None: ...

class ApplyRecordsResponse(_message.Message):
    __slots__ = ("applied", "skipped")
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    applied: int
    skipped: int
    def __init__(self, applied: _Optional[int] = ..., skipped: _Optional[int] = ...) -> None: ...

class SnapshotChunk(_message.Message):
    __slots__ = ("shard", "data", "total_bytes")
    SHARD_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    shard: _points_internal_pb2.ShardRef
    data: bytes
    total_bytes: int
    def __init__(self, shard: _Optional[_Union[_points_internal_pb2.ShardRef, _Mapping]] = ..., data: _Optional[bytes] = ..., total_bytes: _Optional[int] = ...) -> None: ...

class MergeClocksRequest(_message.Message):
    __slots__ = ("shard", "clocks")
    SHARD_FIELD_NUMBER: _ClassVar[int]
    CLOCKS_FIELD_NUMBER: _ClassVar[int]
    shard: _points_internal_pb2.ShardRef
    clocks: _containers.RepeatedCompositeFieldContainer[_points_internal_pb2.ClockTag]
    def __init__(self, shard: _Optional[_Union[_points_internal_pb2.ShardRef, _Mapping]] = ..., clocks: _Optional[_Iterable[_Union[_points_internal_pb2.ClockTag, _Mapping]]] = ...) -> None: ...

class ProgressRequest(_message.Message):
    __slots__ = ("collection",)
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    collection: str
    def __init__(self, collection: _Optional[str] = ...) -> None: ...

class TransferProgress(_message.Message):
    __slots__ = ("shard_id", "from_peer_id", "to_peer_id", "method", "stage", "done", "total", "unit", "rate_per_s", "started_at", "comment")
    SHARD_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_PEER_ID_FIELD_NUMBER: _ClassVar[int]
    TO_PEER_ID_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    RATE_PER_S_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    shard_id: int
    from_peer_id: int
    to_peer_id: int
    method: str
    stage: str
    done: int
    total: int
    unit: str
    rate_per_s: float
    started_at: float
    comment: str
    def __init__(self, shard_id: _Optional[int] = ..., from_peer_id: _Optional[int] = ..., to_peer_id: _Optional[int] = ..., method: _Optional[str] = ..., stage: _Optional[str] = ..., done: _Optional[int] = ..., total: _Optional[int] = ..., unit: _Optional[str] = ..., rate_per_s: _Optional[float] = ..., started_at: _Optional[float] = ..., comment: _Optional[str] = ...) -> None: ...

class ProgressResponse(_message.Message):
    __slots__ = ("transfers",)
    TRANSFERS_FIELD_NUMBER: _ClassVar[int]
    transfers: _containers.RepeatedCompositeFieldContainer[TransferProgress]
    def __init__(self, transfers: _Optional[_Iterable[_Union[TransferProgress, _Mapping]]] = ...) -> None: ...
