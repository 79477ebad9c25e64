"""What crosses from the raft thread to the loop: committed operations and snapshots.

The raft thread never touches the :class:`ClusterState`; it hands each committed operation to the
loop (``call_soon_threadsafe``, so in log order) and the loop applies it. That leaves one problem:
pysyncobj asks for a snapshot (its "full dump") on the raft thread, for the state as of its last
applied index, which the loop may not have reached yet. So the bridge keeps:

* ``base`` - the newest state the loop has *published* (its bytes and index; the loop publishes
  every few operations), and
* ``tail`` - every operation the raft thread handed over since that base.

A dump is ``base + tail up to the dump index``: exact, written without waiting for the loop and
without copying the live state across threads. Loading a dump (restart, or a snapshot installed
from the leader) hands the loop one :class:`SnapshotImage`; the loop rebuilds the state as base plus
tail and emits a single ``StateReset``.

Dump file: ``DUMP_MAGIC``, crc32 (u32 LE) of the body, body in the strict :mod:`wire` codec. The
state inside is orjson. Nothing here is pickle.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import struct
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pysyncobj.node import Node

from qcluster.consensus import wire
from qcluster.consensus.state import ClusterState
from qcluster.errors import CorruptedStorageError

DUMP_MAGIC = b"QCLRAFT1"
_CRC = struct.Struct("<I")


@dataclass(frozen=True, slots=True)
class SnapshotImage:
    index: int  # the log index the snapshot stands for
    base_index: int
    base_state: bytes  # ClusterState.to_bytes() as of base_index
    tail: tuple[tuple[int, bytes], ...]  # (index, encoded op) for base_index < index <= self.index

    def materialise(self) -> ClusterState:
        """The state as of ``index`` (pure: decodes the base and applies the tail)."""
        from qcluster.consensus.op_codec import decode_op
        from qcluster.errors import BadInputError

        state = ClusterState.from_bytes(self.base_state)
        for _, op_bytes in self.tail:
            try:
                op = decode_op(op_bytes)
            except BadInputError:
                continue  # the loop skips undecodable operations the same way
            state.apply(op)
        return state


def read_dump_file(path: str | Path) -> dict[str, Any]:
    """Decode and check a dump file; :class:`CorruptedStorageError` when it is damaged."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise CorruptedStorageError(f"cannot read raft dump {path}: {exc}") from exc
    head = len(DUMP_MAGIC) + _CRC.size
    if raw[: len(DUMP_MAGIC)] != DUMP_MAGIC or len(raw) < head:
        raise CorruptedStorageError(f"raft dump {path} has no qcluster header")
    body = raw[head:]
    if _CRC.unpack_from(raw, len(DUMP_MAGIC))[0] != zlib.crc32(body):
        raise CorruptedStorageError(f"raft dump {path} fails its checksum")
    try:
        data = wire.loads(body)
        if not isinstance(data, dict):
            raise wire.WireError("dump body is not a mapping")
        for key in ("index", "last_entry", "prev_entry", "cluster", "base_index", "base_state", "tail"):
            if key not in data:
                raise wire.WireError(f"dump misses {key}")
    except wire.WireError as exc:
        raise CorruptedStorageError(f"raft dump {path} is damaged: {exc}") from exc
    return data


def write_dump_file(
    path: str | Path,
    last_entry: Any,
    prev_entry: Any,
    cluster: list[str],
    base_index: int,
    base_state: bytes,
    tail: list[tuple[int, bytes]],
) -> None:
    body = wire.dumps(
        {
            "index": int(last_entry[1]),
            "last_entry": tuple(last_entry),
            "prev_entry": tuple(prev_entry),
            "cluster": sorted(cluster),
            "base_index": base_index,
            "base_state": base_state,
            "tail": tail,
        }
    )
    with open(path, "wb") as fh:
        fh.write(DUMP_MAGIC + _CRC.pack(zlib.crc32(body)) + body)
        fh.flush()
        os.fsync(fh.fileno())


class ApplyBridge:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        on_apply: Callable[[int, int, bytes], None],
        on_snapshot: Callable[[SnapshotImage], None],
    ) -> None:
        self._loop = loop
        self._on_apply = on_apply
        self._on_snapshot = on_snapshot
        self._lock = threading.Lock()
        self._base: tuple[int, bytes] = (0, ClusterState().to_bytes())
        self._tail: list[tuple[int, bytes]] = []
        self.handed_index = 0  # the last operation index handed to the loop (raft thread writes)

    def _post(self, func: Callable[..., None], *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # loop closed: shutting down
            self._loop.call_soon_threadsafe(func, *args)

    # ------------------------------------------------------------------ raft thread

    def committed(self, index: int, term: int, op_bytes: bytes) -> None:
        with self._lock:
            self._tail.append((index, op_bytes))
        self.handed_index = index
        self._post(self._on_apply, index, term, op_bytes)

    def write_dump(self, path: str, data: Any) -> None:
        """pysyncobj ``serializer(fileName, (last_entry, prev_entry, cluster))``."""
        last_entry, prev_entry, cluster = data
        index = int(last_entry[1])
        with self._lock:
            base_index, base_state = self._base
            tail = [t for t in self._tail if base_index < t[0] <= index]
        write_dump_file(
            path, last_entry, prev_entry, [str(node.id) for node in cluster], base_index, base_state, tail
        )

    def read_dump(self, path: str) -> tuple[Any, Any, set[Node]]:
        """pysyncobj ``deserializer(fileName) -> (last_entry, prev_entry, cluster)``."""
        data = read_dump_file(path)
        image = SnapshotImage(
            int(data["index"]),
            int(data["base_index"]),
            bytes(data["base_state"]),
            tuple((int(i), bytes(b)) for i, b in data["tail"]),
        )
        with self._lock:
            self._base = (image.base_index, image.base_state)
            self._tail = list(image.tail)
        self.handed_index = image.index
        self._post(self._on_snapshot, image)
        return tuple(data["last_entry"]), tuple(data["prev_entry"]), {Node(str(i)) for i in data["cluster"]}

    # ------------------------------------------------------------------ loop

    def publish(self, index: int, state_bytes: bytes) -> None:
        """The loop's state as of ``index``: the new base of future dumps."""
        with self._lock:
            if index <= self._base[0]:
                return
            self._base = (index, state_bytes)
            self._tail = [t for t in self._tail if t[0] > index]

    def tail_length(self) -> int:
        with self._lock:
            return len(self._tail)
