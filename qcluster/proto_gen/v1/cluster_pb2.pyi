from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JoinRequest(_message.Message):
    __slots__ = ("peer_id", "uri", "p2p_port")
    PEER_ID_FIELD_NUMBER: _ClassVar[int]
    URI_FIELD_NUMBER: _ClassVar[int]
    P2P_PORT_FIELD_NUMBER: _ClassVar[int]
    peer_id: int
    uri: str
    p2p_port: int
    def __init__(self, peer_id: _Optional[int] = ..., uri: _Optional[str] = ..., p2p_port: _Optional[int] = ...) -> None: ...

class PeerInfo(_message.Message):
    __slots__ = ("peer_id", "uri")
    PEER_ID_FIELD_NUMBER: _ClassVar[int]
    URI_FIELD_NUMBER: _ClassVar[int]
    peer_id: int
    uri: str
    def __init__(self, peer_id: _Optional[int] = ..., uri: _Optional[str] = ...) -> None: ...

class JoinResponse(_message.Message):
    __slots__ = ("peer_id", "uri", "peers", "leader_peer_id")
    PEER_ID_FIELD_NUMBER: _ClassVar[int]
    URI_FIELD_NUMBER: _ClassVar[int]
    PEERS_FIELD_NUMBER: _ClassVar[int]
    LEADER_PEER_ID_FIELD_NUMBER: _ClassVar[int]
    peer_id: int
    uri: str
    peers: _containers.RepeatedCompositeFieldContainer[PeerInfo]
    leader_peer_id: int
    def __init__(self, peer_id: _Optional[int] = ..., uri: _Optional[str] = ..., peers: _Optional[_Iterable[_Union[PeerInfo, _Mapping]]] = ..., leader_peer_id: _Optional[int] = ...) -> None: ...

class RaftFrame(_message.Message):
    __slots__ = ("payload",)
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    payload: bytes
    def __init__(self, payload: _Optional[bytes] = ...) -> None: ...

class RaftHello(_message.Message):
    __slots__ = ("peer_id",)
    PEER_ID_FIELD_NUMBER: _ClassVar[int]
    peer_id: int
    def __init__(self, peer_id: _Optional[int] = ...) -> None: ...

class HealthRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class HealthResponse(_message.Message):
    __slots__ = ("peer_id", "term", "commit", "leader_peer_id", "role", "version", "is_voter", "pending_operations", "consensus_thread_status", "applied_index")
    PEER_ID_FIELD_NUMBER: _ClassVar[int]
    TERM_FIELD_NUMBER: _ClassVar[int]
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    LEADER_PEER_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    IS_VOTER_FIELD_NUMBER: _ClassVar[int]
    PENDING_OPERATIONS_FIELD_NUMBER: _ClassVar[int]
    CONSENSUS_THREAD_STATUS_FIELD_NUMBER: _ClassVar[int]
    APPLIED_INDEX_FIELD_NUMBER: _ClassVar[int]
    peer_id: int
    term: int
    commit: int
    leader_peer_id: int
    role: str
    version: str
    is_voter: bool
    pending_operations: int
    consensus_thread_status: str
    applied_index: int
    def __init__(self, peer_id: _Optional[int] = ..., term: _Optional[int] = ..., commit: _Optional[int] = ..., leader_peer_id: _Optional[int] = ..., role: _Optional[str] = ..., version: _Optional[str] = ..., is_voter: _Optional[bool] = ..., pending_operations: _Optional[int] = ..., consensus_thread_status: _Optional[str] = ..., applied_index: _Optional[int] = ...) -> None: ...

class WaitAppliedRequest(_message.Message):
    __slots__ = ("index", "timeout_ms", "collection", "expect_absent")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    EXPECT_ABSENT_FIELD_NUMBER: _ClassVar[int]
    index: int
    timeout_ms: int
    collection: str
    expect_absent: bool
    def __init__(self, index: _Optional[int] = ..., timeout_ms: _Optional[int] = ..., collection: _Optional[str] = ..., expect_absent: _Optional[bool] = ...) -> None: ...

class WaitAppliedResponse(_message.Message):
    __slots__ = ("peer_id", "applied_index")
    PEER_ID_FIELD_NUMBER: _ClassVar[int]
    APPLIED_INDEX_FIELD_NUMBER: _ClassVar[int]
    peer_id: int
    applied_index: int
    def __init__(self, peer_id: _Optional[int] = ..., applied_index: _Optional[int] = ...) -> None: ...

class StepDownRequest(_message.Message):
    __slots__ = ("quiet_ms",)
    QUIET_MS_FIELD_NUMBER: _ClassVar[int]
    quiet_ms: int
    def __init__(self, quiet_ms: _Optional[int] = ...) -> None: ...

class StepDownResponse(_message.Message):
    __slots__ = ("was_leader",)
    WAS_LEADER_FIELD_NUMBER: _ClassVar[int]
    was_leader: bool
    def __init__(self, was_leader: _Optional[bool] = ...) -> None: ...
