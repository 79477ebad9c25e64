"""The one error tree of qcluster.

Every failure that crosses a module boundary is one of these. They are raised with ``from`` their
cause, classified once by :func:`is_transient`, and translated to HTTP / gRPC only at the edges
(``HTTP_STATUS`` here is the table the REST middleware uses).

::

    QClusterError                       500  generic service error
    ├── BadInputError                   400  "Wrong input: ..."  (names the field)
    │   ├── BadRequestError             400  "Bad request: ..."  (a request that contradicts itself)
    │   │   └── StrictModeError         400  "Bad request: <what>. Help: <how>"
    │   ├── FormatError                 400  "Format error in JSON body: ..." (not the shape asked for)
    │   └── UnprocessableInputError     422  "Validation error in JSON body: ..."
    ├── ForbiddenError                  403
    ├── UnauthorizedError               401
    ├── NotFoundError                   404  "Not found: ..."
    ├── MethodNotAllowedError           405  (cluster operations in standalone mode)
    ├── AlreadyExistsError              409
    ├── PayloadTooLargeError            413
    ├── StorageError                    500  an I/O failure on this peer
    │   └── CorruptedStorageError       500  data on disk is damaged; the shard stops, the peer serves on
    ├── CancelledError                  500  the operation was cancelled (shutdown, shard closed)
    ├── ReplicationError                500  too few replicas of a shard took a write or answered
    └── TransientError                  503  worth retrying elsewhere or later
        └── TimeoutError_               408 (REST) / DEADLINE_EXCEEDED (gRPC)
"""

from __future__ import annotations


class QClusterError(Exception):
    """Base class. ``message`` is what the user sees (after the edge adds its prefix)."""

    http_status = 500
    prefix = "Service internal error: "

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def user_message(self) -> str:
        return f"{self.prefix}{self.message}"


class BadInputError(QClusterError):
    """The request is wrong. ``field`` names the offending field, when there is one."""

    http_status = 400
    prefix = "Wrong input: "

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class BadRequestError(BadInputError):
    """Parts of a request that cannot go together (Qdrant's "Bad request")."""

    prefix = "Bad request: "


class StrictModeError(BadRequestError):
    """A request beyond one of its collection's strict-mode limits: ``<what>. Help: <how>``."""

    def __init__(self, what: str, help_: str, field: str | None = None) -> None:
        super().__init__(f"{what}. Help: {help_}", field)


class RateLimitedError(QClusterError):
    """A collection's strict-mode read or write rate limit is spent; ``retry_after`` seconds
    (when known) until the request would fit."""

    http_status = 429
    prefix = "Rate limiting exceeded: "

    def __init__(self, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class FormatError(BadInputError):
    """A request is not the shape the endpoint takes: a wrong type, a missing field, an unknown
    enum variant (Qdrant's serde deserialization error)."""

    prefix = "Format error in JSON body: "


class UnprocessableInputError(BadInputError):
    http_status = 422
    prefix = "Validation error in JSON body: "


class UnprocessablePathError(UnprocessableInputError):
    """A path parameter out of its range (a collection name longer than 255 characters)."""

    prefix = "Validation error in path parameters: "


class UnauthorizedError(QClusterError):
    http_status = 401
    prefix = ""


class ForbiddenError(QClusterError):
    http_status = 403
    prefix = ""


class NotFoundError(QClusterError):
    http_status = 404
    prefix = "Not found: "


class MethodNotAllowedError(QClusterError):
    """The operation does not apply to this peer's mode (cluster operations on a single peer)."""

    http_status = 405
    prefix = ""


class AlreadyExistsError(QClusterError):
    http_status = 409
    prefix = "Wrong input: "


class PayloadTooLargeError(QClusterError):
    http_status = 413
    prefix = "Payload too large: "


class StorageError(QClusterError):
    http_status = 500


class CorruptedStorageError(StorageError):
    """Damaged data on disk. The owning shard refuses service; other shards keep working."""


class CancelledError(QClusterError):
    http_status = 500
    prefix = "Operation cancelled: "


class ReplicationError(QClusterError):
    """Too few replicas of a shard acknowledged a write (or answered a read); the message names
    the shard and each replica that failed, and why."""

    http_status = 500


class TransientError(QClusterError):
    """Retrying later or on another replica may succeed."""

    http_status = 503
    prefix = "Service unavailable: "


class ShardUnknownError(TransientError):
    """The peer asked holds no shard by that id: it has not created it yet, or already dropped it
    (the asking peer's view of the agreed state is behind or ahead of the answering one's)."""


class HoldersGoneError(ReplicationError):
    """A write reached some replicas and failed on others, but none of those that took it still
    takes writes in the agreed state (another coordinator deactivated them meanwhile): the write
    is not acknowledged, and the failed replicas are left as they are."""


class StaleShardViewError(ReplicationError):
    """Every replica asked about a shard says it does not know it: the shard is likely gone from
    the agreed state and this peer has not applied that yet."""

    def __init__(self, message: str, shard_id: int):
        super().__init__(message)
        self.shard_id = shard_id


class TimeoutError_(TransientError):  # trailing underscore: not the builtin
    http_status = 408
    prefix = "Timeout error: "


def is_transient(exc: BaseException) -> bool:
    """True when the failure says nothing about the request itself and a retry may succeed."""
    if isinstance(exc, TransientError):
        return True
    return isinstance(exc, ConnectionError | TimeoutError)


def is_definite(exc: BaseException) -> bool:
    """True when the failure proves the request was refused before anything was applied (it is
    wrong for the data: bad input, a missing point), as opposed to an outcome nobody knows."""
    return isinstance(exc, BadInputError | NotFoundError | AlreadyExistsError)
