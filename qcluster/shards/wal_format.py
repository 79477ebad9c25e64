"""The WAL's on-disk format: the record layout, segment file names, and the scan that checks a
segment file record by record on open (see :mod:`qcluster.shards.wal` for the recovery rules).

Record (little endian): ``u32 length | u32 crc32(version bytes + data) | u64 version | data``.
"""

from __future__ import annotations

import os
import re
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HEAD = struct.Struct("<IIQ")  # length, crc32, version
VER = struct.Struct("<Q")
HEADER_BYTES = HEAD.size
MAX_RECORD_BYTES = 2**32 - 1
SUFFIX = ".wal"
NAME_RE = re.compile(r"(\d{20})\.wal")
READ_BUFFER = 1 << 20


@dataclass
class Segment:
    path: Path
    first: int  # first version the file holds (its name)
    last: int  # last version it holds; first - 1 when empty
    size: int  # bytes of whole records

    @property
    def empty(self) -> bool:
        return self.last < self.first


@dataclass
class Scan:
    last: int  # last good version
    good: int  # bytes of good records from the start of the file
    problem: str | None = None  # what is wrong at byte ``good``
    torn: bool = False  # the problem is a torn tail (nothing valid after it)


def record_crc(version: int, data: bytes | bytearray) -> int:
    return zlib.crc32(data, zlib.crc32(VER.pack(version)))


def segment_name(first_version: int) -> str:
    return f"{first_version:020d}{SUFFIX}"


def fsync_path(path: Path, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def offset_of(seg: Segment, version: int) -> int:
    """Byte offset where ``version`` starts in ``seg`` (its size when past its end)."""
    pos = 0
    with open(seg.path, "rb", buffering=READ_BUFFER) as fh:
        for _ in range(seg.first, min(version, seg.last + 1)):
            fh.seek(pos)
            pos += HEADER_BYTES + HEAD.unpack(fh.read(HEADER_BYTES))[0]
    return pos


def find_valid_record(buf: bytes, last_good: int) -> int | None:
    """Offset of the first well-formed record in ``buf`` whose version could follow
    ``last_good`` (what a record after a damaged one would hold), or None."""
    n = len(buf)
    if n < HEADER_BYTES:
        return None
    lo, hi = last_good + 1, last_good + 1 + n // HEADER_BYTES
    starts: list[int] = []
    for shift in range(8):  # version fields of headers starting at shift, shift + 8, ...
        count = (n - HEADER_BYTES - shift) // 8 + 1
        if count <= 0:
            continue
        versions = np.frombuffer(buf, dtype="<u8", count=count, offset=8 + shift)
        hits = np.flatnonzero((versions >= lo) & (versions <= hi))
        starts.extend((shift + 8 * hits).tolist())
    for pos in sorted(starts):
        length, crc, version = HEAD.unpack_from(buf, pos)
        end = pos + HEADER_BYTES + length
        if end <= n and record_crc(version, buf[pos + HEADER_BYTES : end]) == crc:
            return pos
    return None


def scan_segment(path: Path, first: int) -> Scan:
    """Walk a file's records from its start, checking lengths, checksums and versions."""
    with open(path, "rb", buffering=READ_BUFFER) as fh:
        size = os.fstat(fh.fileno()).st_size
        pos, expected = 0, first
        while pos < size:
            head = fh.read(HEADER_BYTES)
            if len(head) < HEADER_BYTES:
                problem = f"short record header ({len(head)} bytes)"
            else:
                length, crc, version = HEAD.unpack(head)
                end = pos + HEADER_BYTES + length
                if end > size:
                    problem = f"record length {length} runs past the end of the file"
                elif record_crc(version, fh.read(length)) != crc:
                    problem = "checksum mismatch"
                elif version != expected:
                    return Scan(expected - 1, pos, f"version {version} out of order (expected {expected})")
                else:
                    pos, expected = end, expected + 1
                    continue
            fh.seek(pos + 1)
            after = find_valid_record(fh.read(), expected - 1)
            if after is not None:
                problem += f"; a valid record follows at byte {pos + 1 + after}"
            return Scan(expected - 1, pos, problem, torn=after is None)
        return Scan(expected - 1, pos)
