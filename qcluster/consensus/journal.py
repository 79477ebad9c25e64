"""The Raft journal file (``storage/raft/journal.bin``), in place of pysyncobj's ``FileJournal``,
with the same on-disk format (journals written by either one load in the other):

    header: app name (24 B) | app version (8 B) | format version (u32) | end of last record (u32)
    record: size (u32) | index (u64) | term (u64) | command | size (u32)

Why not pysyncobj's: it grows the file with ``mmap.resize`` (a sparse ``ftruncate``) and then
writes into the mapping, so on a full disk the first write to an unbacked page raises SIGBUS and
the peer dies (found by the chaos harness's full-disk fault). Here the file grows with
``os.posix_fallocate`` before the mapping covers it, so a full disk is an ``OSError`` from
:meth:`FileJournal.add`, which pysyncobj's tick logs and retries; and ``add`` appends to the
in-memory list only once its record is written, so memory and disk never disagree.

:func:`install` makes pysyncobj create this journal (called by :func:`qcluster.consensus.wire.install`).
"""

from __future__ import annotations

import errno
import mmap
import os
import struct
from pathlib import Path
from typing import Any

import pysyncobj.journal as pj

from qcluster.consensus.wire import to_bytes

INITIAL_SIZE = 1024
GROWTH = 2.0


class JournalFile:
    """A file mapped into memory that grows only into allocated blocks."""

    def __init__(self, path: str, header: bytes) -> None:
        if not os.path.exists(path):
            with open(path, "wb") as f:
                f.write(header)
        self._f = open(path, "r+b")  # noqa: SIM115 - closed in close()
        if os.fstat(self._f.fileno()).st_size < INITIAL_SIZE:
            os.posix_fallocate(self._f.fileno(), 0, INITIAL_SIZE)
        self._mm = mmap.mmap(self._f.fileno(), 0)

    def size(self) -> int:
        return self._mm.size()

    def _ensure(self, end: int) -> None:
        """Make the file at least ``end`` bytes, all allocated; ENOSPC leaves it as it was."""
        size = self._mm.size()
        if end <= size:
            return
        fd = self._f.fileno()
        try:
            os.posix_fallocate(fd, 0, max(int(size * GROWTH), end))
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
            os.posix_fallocate(fd, 0, end)  # not room to double: exactly what is needed, or raise
        self._mm.close()
        self._mm = mmap.mmap(fd, 0)

    def write(self, offset: int, data: bytes) -> None:
        self._ensure(offset + len(data))
        self._mm[offset : offset + len(data)] = data

    def read(self, offset: int, size: int) -> bytes:
        return self._mm[offset : offset + size]

    def flush(self) -> None:
        self._mm.flush()

    def close(self) -> None:
        self._mm.flush()
        self._mm.close()
        self._f.close()


def _header() -> bytes:
    name = pj.APP_NAME + b"\0" * (pj.NAME_SIZE - len(pj.APP_NAME))
    version = pj.APP_VERSION + b"\0" * (pj.VERSION_SIZE - len(pj.APP_VERSION))
    return bytes(name + version) + struct.pack("<II", pj.JOURNAL_FORMAT_VERSION, pj.FIRST_RECORD_OFFSET)


class FileJournal(pj.Journal):  # type: ignore[misc]
    """pysyncobj's journal interface over :class:`JournalFile`; term, vote and commit index live
    in ``<journal>.meta`` through pysyncobj's ``MetaStorer``, as before."""

    def __init__(self, path: str) -> None:
        self._file = JournalFile(path, _header())
        self._entries: list[tuple[Any, int, int]] = []
        self._meta_storer = pj.MetaStorer(path + ".meta")
        self._meta: dict[str, Any] = self._meta_storer.getMeta()
        self._meta_saved = True
        offset, last = pj.FIRST_RECORD_OFFSET, self._last_record_end()
        while offset < last:
            size = struct.unpack("<I", self._file.read(offset, 4))[0]
            data = self._file.read(offset + 4, size)
            idx, term = struct.unpack("<QQ", data[:16])
            self._entries.append((data[16:], idx, term))
            offset += size + 8
        self._offset = offset

    def _last_record_end(self) -> int:
        return int(struct.unpack("<I", self._file.read(pj.LAST_RECORD_OFFSET_OFFSET, 4))[0])

    def _set_last_record_end(self, offset: int) -> None:
        self._file.write(pj.LAST_RECORD_OFFSET_OFFSET, struct.pack("<I", offset))

    def add(self, command: Any, idx: int, term: int) -> None:
        """Write the record, then remember it; a failed write (full disk) changes nothing."""
        body = struct.pack("<QQ", idx, term) + to_bytes(command)
        size = struct.pack("<I", len(body))
        record = size + body + size
        self._file.write(self._offset, record)
        self._offset += len(record)
        self._set_last_record_end(self._offset)
        self._entries.append((command, idx, term))

    def clear(self) -> None:
        self._entries = []
        self._set_last_record_end(pj.FIRST_RECORD_OFFSET)
        self._offset = pj.FIRST_RECORD_OFFSET

    def __getitem__(self, item: Any) -> Any:
        return self._entries[item]

    def __len__(self) -> int:
        return len(self._entries)

    def deleteEntriesFrom(self, entry_from: int) -> None:  # pysyncobj names its journal methods in camelCase
        for _ in range(len(self._entries) - entry_from):
            prev = struct.unpack("<I", self._file.read(self._offset - 4, 4))[0]
            self._offset -= prev + 8
        del self._entries[entry_from:]
        self._set_last_record_end(self._offset)

    def deleteEntriesTo(self, entry_to: int) -> None:
        """Keep the entries from ``entry_to`` on; they are rewritten within the space they used."""
        keep = self._entries[entry_to:]
        self.clear()
        for entry in keep:
            self.add(*entry)

    def _destroy(self) -> None:
        self._file.close()

    def flush(self) -> None:
        self._file.flush()

    def setRaftCommitIndex(self, index: int) -> None:
        self._meta["raftCommitIndex"] = index
        self._meta_saved = False

    def getRaftCommitIndex(self) -> int:
        return int(self._meta.get("raftCommitIndex", 1))

    def setCurrentTerm(self, term: int, voted_for: Any) -> None:
        """Stored at once: Raft needs term and vote durable before any message reflects them."""
        self._meta["currentTerm"] = term
        self._meta["votedForNodeId"] = voted_for
        self._meta_storer.storeMeta(self._meta)
        self._meta_saved = True

    def getCurrentTerm(self) -> int:
        return int(self._meta.get("currentTerm", 0))

    def getVotedForNodeId(self) -> Any:
        return self._meta.get("votedForNodeId")

    def onOneSecondTimer(self) -> None:
        if not self._meta_saved:
            self._meta_storer.storeMeta(self._meta)
            self._meta_saved = True


def create_journal(path: str | None = None) -> Any:
    return pj.MemoryJournal() if path is None else FileJournal(str(Path(path)))


def install() -> None:
    """Make pysyncobj build this journal (it calls the ``createJournal`` its module imported)."""
    import pysyncobj.syncobj

    if not hasattr(pysyncobj.syncobj, "createJournal"):
        raise RuntimeError("pysyncobj.syncobj has no `createJournal`; unsupported pysyncobj version")
    pysyncobj.syncobj.createJournal = create_journal
