"""The shard write-ahead log: segmented, append-only, checksummed, versioned records.

Record (little endian): ``u32 length | u32 crc32(version bytes + data) | u64 version | data``.
Files: ``<dir>/<first version:020d>.wal``; a new file starts once the current one has passed
``segment_bytes``. Versions are contiguous across files. A lone empty file is a marker: its name
is the version the next append gets (after ``set_start_version`` or an emptying ``truncate_suffix``).

``append`` hands records to the OS with one ``write`` (survives ``kill -9``); ``sync`` fsyncs
them (survives power loss) while appends go on.

Recovery on open: a torn record at the very end of the last file (short header, length past EOF,
checksum mismatch, trailing garbage holding no valid record) is a crash mid-write: the file is cut
there with a warning. A bad record with a valid record after it, a good checksum on the wrong
version, a gap between files, or any bad record in an older file raises ``CorruptedStorageError``
naming the file, byte offset and last good version, and nothing on disk changes. An empty last
file left by a crash right after a rollover is removed.

Concurrency: one lock guards the state; ``sync`` holds it only to pick what to flush.
``read_from`` streams without the lock; a reader racing a rewind (``truncate_suffix``) or a
``truncate_prefix`` that deleted a file it had yet to open gets ``WalGapError`` and falls back.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from qcluster.errors import BadInputError, CancelledError, CorruptedStorageError, QClusterError, StorageError
from qcluster.logging import get_logger
from qcluster.shards.wal_format import (
    HEAD,
    HEADER_BYTES,
    MAX_RECORD_BYTES,
    NAME_RE,
    READ_BUFFER,
    SUFFIX,
    Segment,
    fsync_path,
    offset_of,
    record_crc,
    scan_segment,
    segment_name,
)


class WalGapError(QClusterError):
    """The requested versions are no longer retained (a wal_delta transfer must fall back)."""


class Wal:
    """Use :meth:`open`. Synchronous and thread-safe; see the module docstring."""

    def __init__(self, directory: Path, segment_bytes: int, retain_bytes: int) -> None:
        self.directory = directory
        self.segment_bytes = segment_bytes
        self.retain_bytes = retain_bytes
        self._segments: list[Segment] = []
        self._fd: int | None = None  # append fd of the live (last) segment
        self._next = 1
        self._synced = 0
        self._unsynced: list[Path] = []  # files holding records not yet fsynced
        self._dir_dirty = False
        self._epoch = 0  # bumped by rewinds; readers that see it change stop
        self._closed = False
        self._failed: str | None = None
        self._lock = threading.RLock()
        self._sync_lock = threading.Lock()  # order: _sync_lock, then _lock

    # ------------------------------------------------------------------ open / recover
    @classmethod
    def open(cls, directory: Path, *, segment_bytes: int = 32 * 2**20, retain_bytes: int = 32 * 2**20) -> Wal:
        if segment_bytes < 1:
            raise BadInputError("segment_bytes must be at least 1", field="segment_bytes")
        if retain_bytes < 0:
            raise BadInputError("retain_bytes must not be negative", field="retain_bytes")
        created = not directory.exists()
        directory.mkdir(parents=True, exist_ok=True)
        if created:
            fsync_path(directory.parent, directory=True)
        wal = cls(directory, segment_bytes, retain_bytes)
        wal._recover()
        return wal

    def _recover(self) -> None:
        found: list[tuple[int, Path]] = []
        for path in self.directory.iterdir():
            match = NAME_RE.fullmatch(path.name)
            if match is not None:
                found.append((int(match.group(1)), path))
            elif path.suffix == SUFFIX:
                get_logger(__name__).warning("wal: ignoring a file with a foreign name", file=str(path))
        found.sort()
        changed = False
        for i, (first, path) in enumerate(found):
            is_last = i == len(found) - 1
            expected = self._segments[-1].last + 1 if self._segments else max(first, 1)
            scan = scan_segment(path, first)
            if first < 1 or (first != expected and not (is_last and scan.good == 0)):
                raise CorruptedStorageError(
                    f"WAL segment {path}: starts at version {first} but {expected} was expected (byte 0); "
                    f"last good version {expected - 1}"
                )
            if scan.problem is not None:
                if not (scan.torn and is_last):
                    where = "the last segment" if is_last else "a closed segment"
                    raise CorruptedStorageError(
                        f"WAL segment {path} ({where}): bad record at byte {scan.good} ({scan.problem}); "
                        f"last good version {scan.last}; nothing was truncated"
                    )
                get_logger(__name__).warning(
                    "wal: torn record at the end of the log (crash mid-write); truncating it and "
                    "continuing with the records before it",
                    file=str(path),
                    offset=scan.good,
                    problem=scan.problem,
                    last_version=scan.last,
                )
                with open(path, "r+b") as fh:
                    fh.truncate(scan.good)
                    os.fsync(fh.fileno())
                changed = True
            if scan.good == 0 and is_last and self._segments:  # a crash right after a rollover
                get_logger(__name__).info("wal: removing an empty segment left by a crash", file=str(path))
                path.unlink()
                changed = True
                continue
            self._segments.append(Segment(path, first, scan.last, scan.good))
        if changed:
            fsync_path(self.directory, directory=True)
        if self._segments:
            self._next = self._segments[-1].last + 1
        # What a killed process wrote may still be only in the page cache: the first sync()
        # flushes every recovered file, so synced_version starts below the recovered records.
        self._synced = self.first_version - 1
        self._unsynced = [s.path for s in self._segments if not s.empty]

    # ------------------------------------------------------------------ properties
    @property
    def first_version(self) -> int:
        """Oldest retained version; ``last_version + 1`` when the log holds no record."""
        with self._lock:
            return self._segments[0].first if self._segments else self._next

    @property
    def newest_segment_first(self) -> int:
        """First version of the file appends currently go to (a rollover starts a new one)."""
        with self._lock:
            return self._segments[-1].first if self._segments else self._next

    @property
    def last_version(self) -> int:
        """Newest appended version (0 for a brand new log)."""
        return self._next - 1

    @property
    def synced_version(self) -> int:
        """Highest version known to be on stable storage."""
        return self._synced

    def size_bytes(self) -> int:
        with self._lock:
            return sum(s.size for s in self._segments)

    def _check_usable(self) -> None:
        if self._closed:
            raise CancelledError(f"WAL {self.directory} is closed")
        if self._failed is not None:
            raise StorageError(f"WAL {self.directory} failed earlier ({self._failed}); reopen it to recover")

    # ------------------------------------------------------------------ writing
    def append(self, data: bytes) -> int:
        """Append one record; returns its version. One ``write`` call, no fsync."""
        return self.append_many([data])[0]

    def append_many(self, items: Sequence[bytes]) -> list[int]:
        """Append records with consecutive versions in one ``write`` call; returns the versions."""
        total = 0
        for i, data in enumerate(items):
            if not isinstance(data, bytes | bytearray) or len(data) > MAX_RECORD_BYTES:
                raise BadInputError("a WAL record must be bytes of at most 4 GiB", field=f"items[{i}]")
            total += HEADER_BYTES + len(data)
        if not items:
            return []
        with self._lock:
            self._check_usable()
            seg, fd = self._writable()
            first = self._next
            buf = bytearray(total)
            pos = 0
            for version, data in enumerate(items, start=first):
                end = pos + HEADER_BYTES + len(data)
                HEAD.pack_into(buf, pos, len(data), record_crc(version, data), version)
                buf[pos + HEADER_BYTES : end] = data
                pos = end
            self._write_all(fd, buf, seg)
            self._next = first + len(items)
            seg.last = self._next - 1
            seg.size += total
            return list(range(first, self._next))

    def _write_all(self, fd: int, buf: bytearray, seg: Segment) -> None:
        view = memoryview(buf)
        done = 0
        try:
            while done < len(buf):  # one call unless the kernel writes short (disk full)
                done += os.write(fd, view[done:])
        except OSError as exc:
            try:
                os.ftruncate(fd, seg.size)  # drop the partial record so the file stays clean
            except OSError as exc2:
                self._failed = f"could not drop a partial write: {exc2}"
            raise StorageError(f"WAL write to {seg.path} failed: {exc}") from exc
        finally:
            view.release()

    def _writable(self) -> tuple[Segment, int]:
        """The live segment and its append fd, rolling over to a new file when it is full."""
        seg = self._segments[-1] if self._segments else None
        create = seg is None or (seg.size >= self.segment_bytes and not seg.empty)
        if seg is not None and create:
            self._close_fd()
            if seg.last > self._synced:
                self._unsynced.append(seg.path)
        if create:
            seg = Segment(self.directory / segment_name(self._next), self._next, self._next - 1, 0)
        assert seg is not None
        if self._fd is None:
            flags = os.O_WRONLY | os.O_APPEND | (os.O_CREAT | os.O_EXCL if create else 0)
            try:
                self._fd = os.open(seg.path, flags, 0o644)
            except OSError as exc:
                raise StorageError(f"WAL could not open segment {seg.path}: {exc}") from exc
            if create:
                self._segments.append(seg)
                self._dir_dirty = True
        return seg, self._fd

    def sync(self) -> int:
        """Make every appended record durable; returns the highest durable version. Appends
        proceed while the fsync runs; a call with nothing new returns at once."""
        with self._sync_lock:
            with self._lock:
                self._check_usable()
                target = self._next - 1
                if target <= self._synced:
                    return self._synced
                paths, self._unsynced = self._unsynced, []
                dir_dirty, self._dir_dirty = self._dir_dirty, False
                fd = os.dup(self._fd) if self._fd is not None else None
            try:
                for path in dict.fromkeys(paths):
                    with contextlib.suppress(FileNotFoundError):  # dropped by truncate_prefix
                        fsync_path(path)
                if fd is not None:
                    os.fsync(fd)
                if dir_dirty:
                    fsync_path(self.directory, directory=True)
            except OSError as exc:
                # After a failed fsync the kernel may have dropped the dirty pages: a retry could
                # "succeed" without the data. Refuse further work until the log is reopened.
                self._failed = f"fsync failed: {exc}"
                raise StorageError(f"WAL {self.directory}: fsync failed: {exc}") from exc
            finally:
                if fd is not None:
                    os.close(fd)
            with self._lock:
                self._synced = max(self._synced, target)
                return self._synced

    # ------------------------------------------------------------------ reading
    def read_from(self, version: int) -> Iterator[tuple[int, bytes]]:
        """Stream ``(version, data)`` for every record with a version >= ``version``, up to the
        last version at the time of the call. Raises WalGapError (now, not on first ``next``)
        when ``version`` is older than the oldest retained record."""
        if version < 1:
            raise BadInputError("versions start at 1", field="version")
        with self._lock:
            self._check_usable()
            last = self._next - 1
            first = self._segments[0].first if self._segments else self._next
            if version < first and version <= last:
                raise WalGapError(
                    f"WAL {self.directory} holds versions from {first}; {version} is no longer retained"
                )
            plan = [(s.path, s.first, s.last) for s in self._segments if not s.empty and s.last >= version]
            epoch = self._epoch
        return self._stream(plan, version, epoch)

    def _stream(
        self, plan: list[tuple[Path, int, int]], start: int, epoch: int
    ) -> Iterator[tuple[int, bytes]]:
        for path, first, last in plan:
            try:
                fh = open(path, "rb", buffering=READ_BUFFER)  # noqa: SIM115 - closed by the with below
            except FileNotFoundError as exc:
                raise WalGapError(f"WAL segment {path} was dropped while reading it") from exc
            with fh:
                pos = 0
                for expected in range(first, last + 1):
                    head = fh.read(HEADER_BYTES)
                    length, crc, got = HEAD.unpack(head) if len(head) == HEADER_BYTES else (0, 0, None)
                    if expected < start and got == expected:
                        fh.seek(length, os.SEEK_CUR)
                        pos += HEADER_BYTES + length
                        continue
                    data = fh.read(length)
                    if self._epoch != epoch:
                        raise WalGapError(f"WAL {self.directory} was rewound while reading it")
                    if got != expected or len(data) < length or record_crc(expected, data) != crc:
                        raise CorruptedStorageError(
                            f"WAL segment {path}: bad record at byte {pos} (version {got}, expected "
                            f"{expected}); last good version {expected - 1}"
                        )
                    yield expected, data
                    pos += HEADER_BYTES + length

    # ------------------------------------------------------------------ truncation
    def truncate_prefix(self, upto_version: int) -> None:
        """Versions <= ``upto_version`` are persisted elsewhere: delete whole closed files that
        hold only such versions, oldest first, but keep the newest ``retain_bytes`` of closed
        files for wal_delta readers. The live (last) file always stays."""
        with self._lock:
            self._check_usable()
            closed = self._segments[:-1]
            kept = 0
            drop = 0
            for i in range(len(closed) - 1, -1, -1):
                if closed[i].last <= upto_version and kept >= self.retain_bytes:
                    drop = i + 1  # this one and every older one
                    break
                kept += closed[i].size
            for seg in self._segments[:drop]:  # oldest first: a crash leaves a contiguous log
                seg.path.unlink(missing_ok=True)
                if seg.path in self._unsynced:
                    self._unsynced.remove(seg.path)
            if drop:
                del self._segments[:drop]
                self._dir_dirty = True

    def truncate_suffix(self, from_version: int) -> None:
        """Forget records >= ``from_version``; the next append gets ``from_version`` (also after a
        reopen). Records below it are fsynced. No-op when ``from_version > last_version``."""
        if from_version < 1:
            raise BadInputError("versions start at 1", field="from_version")
        with self._sync_lock, self._lock:
            self._check_usable()
            if from_version > self._next - 1:
                return
            self._epoch += 1
            self._close_fd()
            keep = [s for s in self._segments if s.first < from_version and not s.empty]
            drop = self._segments[len(keep) :]
            if not keep:  # everything goes: the oldest file becomes the marker
                keep, drop = drop[:1], drop[1:]
            for seg in reversed(drop):  # newest first: a crash leaves a contiguous log
                seg.path.unlink(missing_ok=True)
            tail = keep[-1]
            cut = offset_of(tail, from_version)
            with open(tail.path, "r+b") as fh:
                fh.truncate(cut)
                os.fsync(fh.fileno())
            tail.size = cut
            tail.last = min(tail.last, from_version - 1)
            if tail.first >= from_version:  # emptied: rename to say where numbering resumes
                marker = self.directory / segment_name(from_version)
                os.replace(tail.path, marker)
                tail.path, tail.first, tail.last = marker, from_version, from_version - 1
            for path in self._unsynced:
                if path.exists():
                    fsync_path(path)
            self._rewound(keep, from_version)

    def _rewound(self, segments: list[Segment], next_version: int) -> None:
        """After a rewind made durable: the new file list, everything below ``next_version`` synced."""
        fsync_path(self.directory, directory=True)
        self._segments, self._unsynced, self._dir_dirty = segments, [], False
        self._next, self._synced = next_version, next_version - 1

    def set_start_version(self, version: int) -> None:
        """On a log holding no record: the next append gets ``version`` (after a snapshot
        restore). Persisted as an empty marker file, so it survives a reopen."""
        if version < 1:
            raise BadInputError("versions start at 1", field="version")
        with self._sync_lock, self._lock:
            self._check_usable()
            if any(not s.empty for s in self._segments):
                raise BadInputError(
                    f"set_start_version needs an empty WAL; it holds versions "
                    f"{self._segments[0].first}..{self._next - 1}",
                    field="version",
                )
            self._epoch += 1
            self._close_fd()
            for seg in self._segments:
                seg.path.unlink(missing_ok=True)
            marker = self.directory / segment_name(version)
            os.close(os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644))
            self._rewound([Segment(marker, version, version - 1, 0)], version)

    # ------------------------------------------------------------------ closing
    def _close_fd(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def close(self) -> None:
        """Sync what was appended and release the file. Idempotent."""
        if self._closed:
            return
        try:
            if self._failed is None:
                self.sync()
        finally:
            with self._lock:
                self._closed = True
                self._close_fd()
