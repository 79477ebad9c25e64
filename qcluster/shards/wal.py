"""The shard write-ahead log: segmented, append-only, checksummed, versioned records.

Record (little endian): ``u32 length | u32 crc32(version bytes + data) | u64 version | data``.
Files: ``<dir>/<first version:020d>.wal``; a new file starts when the current one passes
``segment_bytes``. Versions are contiguous across files.

Recovery on open: a torn or corrupt record at the very end of the last file (a crash mid-write)
is cut off with a warning; a bad record with valid records after it, or any bad record in an
older file, raises ``CorruptedStorageError`` naming the file, offset and last good version, and
nothing is truncated. ``append`` hands the record to the OS with one ``write`` (survives
``kill -9``); ``sync`` makes it survive power loss.
"""

from __future__ import annotations

import os
import struct
import threading
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from qcluster.errors import CorruptedStorageError, QClusterError
from qcluster.logging import get_logger

log = get_logger(__name__)

_HEAD = struct.Struct("<IIQ")
_VER = struct.Struct("<Q")
SUFFIX = ".wal"


class WalGapError(QClusterError):
    """The requested versions are no longer retained (a wal_delta transfer must fall back)."""


@dataclass
class _File:
    path: Path
    first: int  # first version in the file
    last: int  # last version in the file (first - 1 when empty)
    size: int


def _crc(version: int, data: bytes) -> int:
    return zlib.crc32(data, zlib.crc32(_VER.pack(version)))


def _scan(path: Path, expect_first: int | None) -> tuple[int, int, int, str | None]:
    """Walk a file's records. Returns (first, last, good_bytes, problem); problem is None when the
    file is clean, "torn" when only its tail is bad, else a description of mid-file corruption."""
    data = path.read_bytes()
    pos = 0
    first = expect_first if expect_first is not None else int(path.stem)
    last = first - 1
    while pos < len(data):
        if pos + _HEAD.size > len(data):
            return first, last, pos, "torn"
        length, crc, version = _HEAD.unpack_from(data, pos)
        end = pos + _HEAD.size + length
        ok = end <= len(data) and version == last + 1 and _crc(version, data[pos + _HEAD.size : end]) == crc
        if not ok:
            if end >= len(data) or not _valid_record_after(data, pos + 1):
                return first, last, pos, "torn"
            return first, last, pos, f"bad record at byte {pos} after version {last}"
        last = version
        pos = end
    return first, last, pos, None


def _valid_record_after(data: bytes, start: int) -> bool:
    """Whether any well-formed record starts somewhere after ``start`` (mid-file corruption)."""
    limit = len(data) - _HEAD.size
    pos = start
    while pos <= limit:
        length, crc, version = _HEAD.unpack_from(data, pos)
        end = pos + _HEAD.size + length
        if version > 0 and end <= len(data) and _crc(version, data[pos + _HEAD.size : end]) == crc:
            return True
        pos += 1
    return False


class Wal:
    def __init__(self, directory: Path, segment_bytes: int, retain_bytes: int):
        self.dir = directory
        self.segment_bytes = segment_bytes
        self.retain_bytes = retain_bytes
        self._files: list[_File] = []
        self._fd: int | None = None
        self._lock = threading.RLock()
        self._synced = 0
        self._next = 1
        self._dir_dirty = False

    # ------------------------------------------------------------------ open / recover
    @classmethod
    def open(cls, directory: Path, *, segment_bytes: int = 32 * 2**20, retain_bytes: int = 32 * 2**20) -> Wal:
        directory.mkdir(parents=True, exist_ok=True)
        wal = cls(directory, segment_bytes, retain_bytes)
        wal._recover()
        return wal

    def _recover(self) -> None:
        paths = sorted(p for p in self.dir.iterdir() if p.suffix == SUFFIX)
        expected: int | None = None
        for i, path in enumerate(paths):
            is_last = i == len(paths) - 1
            first = int(path.stem)
            if expected is not None and first != expected:
                raise CorruptedStorageError(f"WAL {path}: starts at version {first}, expected {expected}")
            first, last, good, problem = _scan(path, first)
            if problem is not None and (problem != "torn" or not is_last):
                raise CorruptedStorageError(
                    f"WAL {path}: {problem if problem != 'torn' else 'damaged record'} "
                    f"at byte {good}; last good version {last}"
                )
            if problem == "torn":
                log.warning("WAL torn tail discarded", file=str(path), offset=good, last_version=last)
                with open(path, "r+b") as fh:
                    fh.truncate(good)
                    os.fsync(fh.fileno())
            if good == 0 and is_last and len(paths) > 1:
                path.unlink()  # empty file left by a crash right after rollover
                continue
            self._files.append(_File(path, first, last, good))
            expected = last + 1
        if self._files:
            self._next = self._files[-1].last + 1
        self._synced = self._next - 1

    # ------------------------------------------------------------------ properties
    @property
    def last_version(self) -> int:
        return self._next - 1

    @property
    def first_version(self) -> int:
        with self._lock:
            for f in self._files:
                if f.last >= f.first:
                    return f.first
            return self._next

    @property
    def synced_version(self) -> int:
        return self._synced

    def size_bytes(self) -> int:
        return sum(f.size for f in self._files)

    # ------------------------------------------------------------------ writing
    def _current(self) -> _File:
        if not self._files or (
            self._files[-1].size >= self.segment_bytes and self._files[-1].last >= self._files[-1].first
        ):
            self._close_fd()
            path = self.dir / f"{self._next:020d}{SUFFIX}"
            self._files.append(_File(path, self._next, self._next - 1, 0))
            self._dir_dirty = True
        cur = self._files[-1]
        if self._fd is None:
            self._fd = os.open(cur.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        return cur

    def append(self, data: bytes) -> int:
        return self.append_many([data])[0]

    def append_many(self, items: Sequence[bytes]) -> list[int]:
        with self._lock:
            cur = self._current()
            parts: list[bytes] = []
            versions: list[int] = []
            for data in items:
                version = self._next
                parts.append(_HEAD.pack(len(data), _crc(version, data), version))
                parts.append(data)
                versions.append(version)
                self._next += 1
            blob = b"".join(parts)
            assert self._fd is not None
            written = os.write(self._fd, blob)
            while written < len(blob):
                written += os.write(self._fd, blob[written:])
            cur.size += len(blob)
            cur.last = self._next - 1
            return versions

    def sync(self) -> int:
        with self._lock:
            target = self._next - 1
            fd = self._fd
            dir_dirty = self._dir_dirty
            self._dir_dirty = False
        if target <= self._synced:
            return self._synced
        if fd is not None:
            try:
                os.fsync(fd)
            except OSError:
                with self._lock:
                    if self._fd is not None:
                        os.fsync(self._fd)
        if dir_dirty:
            dfd = os.open(self.dir, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        with self._lock:
            self._synced = max(self._synced, target)
            return self._synced

    # ------------------------------------------------------------------ reading
    def read_from(self, version: int) -> Iterator[tuple[int, bytes]]:
        with self._lock:
            if version < self.first_version and version <= self.last_version:
                raise WalGapError(f"WAL holds versions from {self.first_version}; {version} is gone")
            files = [f for f in self._files if f.last >= version and f.last >= f.first]
        for f in files:
            with open(f.path, "rb") as fh:
                while True:
                    head = fh.read(_HEAD.size)
                    if len(head) < _HEAD.size:
                        break
                    length, crc, v = _HEAD.unpack(head)
                    data = fh.read(length)
                    if v > f.last:
                        break
                    if len(data) < length or _crc(v, data) != crc:
                        raise CorruptedStorageError(f"WAL {f.path}: damaged record at version {v}")
                    if v >= version:
                        yield v, data

    # ------------------------------------------------------------------ truncation
    def truncate_prefix(self, upto_version: int) -> None:
        """Drop whole closed files holding only versions <= upto_version, keeping the newest
        ``retain_bytes`` of closed files for wal_delta readers. The live file always stays."""
        with self._lock:
            closed = self._files[:-1]
            keep_bytes = 0
            removable: list[_File] = []
            for f in reversed(closed):
                if f.last <= upto_version and keep_bytes >= self.retain_bytes:
                    removable.append(f)
                else:
                    keep_bytes += f.size
            for f in removable:
                f.path.unlink(missing_ok=True)
                self._files.remove(f)

    def truncate_suffix(self, from_version: int) -> None:
        """Forget records >= from_version; the next append gets ``from_version``."""
        with self._lock:
            if from_version > self.last_version:
                return
            self._close_fd()
            while self._files and self._files[-1].first >= from_version and len(self._files) > 1:
                self._files.pop().path.unlink(missing_ok=True)
            f = self._files[-1]
            cut = 0
            with open(f.path, "rb") as fh:
                while True:
                    head = fh.read(_HEAD.size)
                    if len(head) < _HEAD.size:
                        break
                    length, _crc_v, v = _HEAD.unpack(head)
                    if v >= from_version:
                        break
                    fh.seek(length, os.SEEK_CUR)
                    cut = fh.tell()
            with open(f.path, "r+b") as fh:
                fh.truncate(cut)
                os.fsync(fh.fileno())
            f.size = cut
            f.last = max(f.first - 1, min(f.last, from_version - 1))
            if f.first >= from_version:
                f.first = from_version
                f.last = from_version - 1
                new_path = self.dir / f"{from_version:020d}{SUFFIX}"
                f.path.rename(new_path)
                f.path = new_path
            self._next = from_version
            self._synced = min(self._synced, from_version - 1)

    def set_start_version(self, version: int) -> None:
        with self._lock:
            if any(f.last >= f.first for f in self._files):
                raise CorruptedStorageError("set_start_version on a WAL that holds records")
            self._close_fd()
            for f in self._files:
                f.path.unlink(missing_ok=True)
            self._files.clear()
            self._next = version
            self._synced = version - 1

    def _close_fd(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.fsync(self._fd)
            self._close_fd()
