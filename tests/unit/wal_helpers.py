"""Helpers shared by the WAL tests: deterministic payloads, raw record layout, fills and reads."""

from __future__ import annotations

import hashlib
import struct
import zlib
from pathlib import Path

from qcluster.shards.wal import HEADER_BYTES, Wal


def payload(version: int) -> bytes:
    """Deterministic data of varying size (17 B..10 KB) for a version (WRITER below repeats it)."""
    return hashlib.sha256(str(version).encode()).digest()[: 17 + version % 16] * (1 + version * 7919 % 300)


def segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.wal"))


def snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def record_offsets(raw: bytes) -> list[int]:
    """Start offset of every record in a segment's bytes, plus the end."""
    offsets, pos = [], 0
    while pos < len(raw):
        offsets.append(pos)
        pos += HEADER_BYTES + struct.unpack_from("<I", raw, pos)[0]
    return [*offsets, pos]


def encode(version: int, data: bytes) -> bytes:
    crc = zlib.crc32(data, zlib.crc32(struct.pack("<Q", version)))
    return struct.pack("<IIQ", len(data), crc, version) + data


def fill(directory: Path, count: int, **kw: int) -> list[bytes]:
    wal = Wal.open(directory, **kw)
    data = [payload(v) for v in range(1, count + 1)]
    assert [wal.append(d) for d in data] == list(range(1, count + 1))
    wal.close()
    return data


def read_all(wal: Wal) -> list[tuple[int, bytes]]:
    return list(wal.read_from(wal.first_version))
