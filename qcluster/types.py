"""Small shared value types and their validation."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import NewType

from qcluster.errors import BadInputError

# A point id is an unsigned 64-bit integer or a UUID kept in canonical lowercase hyphenated form.
PointId = int | str
ShardId = NewType("ShardId", int)
PeerId = NewType("PeerId", int)
CollectionName = NewType("CollectionName", str)

# Qdrant's name for the unnamed vector.
DEFAULT_VECTOR = ""

MAX_U64 = 2**64 - 1
_U64_DIGITS = len(str(MAX_U64))


def parse_decimal(raw: str, field: str, what: str = "a whole number") -> int:
    """A number written in a URL (path or query parameter): ASCII digits only, at most u64. Any
    other text is a :class:`BadInputError` naming ``field``, never a ``ValueError`` (``isdigit``
    takes '²' that ``int`` refuses, and ``int`` refuses more than 4300 digits)."""
    if raw.isascii() and raw.isdigit() and len(raw) <= _U64_DIGITS:
        value = int(raw)
        if value <= MAX_U64:
            return value
    shown = raw if len(raw) <= 40 else f"{raw[:40]}... ({len(raw)} characters)"
    raise BadInputError(f"{field}: expected {what} from 0 to {MAX_U64}, got {shown!r}", field)


# A shard key of a collection with custom sharding (Qdrant: a string or an unsigned integer).
ShardKey = str | int


class ReplicaState(StrEnum):
    """Qdrant's replica states (the names are its wire values)."""

    ACTIVE = "Active"
    DEAD = "Dead"
    PARTIAL = "Partial"
    INITIALIZING = "Initializing"
    LISTENER = "Listener"
    PARTIAL_SNAPSHOT = "PartialSnapshot"
    RECOVERY = "Recovery"
    RESHARDING = "Resharding"


def parse_point_id(value: object, field: str = "id") -> PointId:
    """Validate a point id as Qdrant accepts it: u64 or UUID (any textual UUID form)."""
    if isinstance(value, bool):
        raise BadInputError(f"{field}: point id must be an unsigned integer or a UUID, got {value!r}", field)
    if isinstance(value, int):
        if 0 <= value <= MAX_U64:
            return value
        raise BadInputError(f"{field}: point id {value} is outside the unsigned 64-bit range", field)
    if isinstance(value, str):
        try:
            return str(uuid.UUID(value))
        except ValueError:
            raise BadInputError(
                f"{field}: Unable to parse UUID: {value}; point id must be an unsigned integer or a UUID",
                field,
            ) from None
    raise BadInputError(f"{field}: point id must be an unsigned integer or a UUID, got {value!r}", field)


def point_id_sort_key(pid: PointId) -> tuple[int, int]:
    """Qdrant orders integer ids before UUIDs; UUIDs by their 128-bit value."""
    if isinstance(pid, int):
        return (0, pid)
    return (1, uuid.UUID(pid).int)
