"""WAL crash recovery on real files: torn tails, corruption anywhere else, kill -9 of a writer."""

from __future__ import annotations

import os
import random
import selectors
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from qcluster.errors import CorruptedStorageError
from qcluster.shards.wal import Wal
from tests.unit.wal_helpers import encode, fill, payload, read_all, record_offsets, segments, snapshot

REPO = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------------- crash recovery


def _recover_copy(src: Path, dst: Path, last_file_bytes: bytes) -> Wal:
    shutil.copytree(src, dst)
    segments(dst)[-1].write_bytes(last_file_bytes)
    return Wal.open(dst, segment_bytes=1000)


@pytest.mark.parametrize("records", [30, 31], ids=["several-in-last-file", "one-in-last-file"])
def test_torn_tail_cut_at_every_offset_recovers_previous_records(tmp_path: Path, records: int) -> None:
    src = tmp_path / "src"
    data = [payload(v)[:40] + bytes([v]) for v in range(1, records + 1)]
    wal = Wal.open(src, segment_bytes=1000)
    wal.append_many(data[:30])  # one 1680-byte file; the 31st record would start a new file
    if records == 31:
        wal.append(data[30])
    wal.close()
    last = segments(src)[-1]
    raw = last.read_bytes()
    boundary = record_offsets(raw)[-2]
    for cut in range(boundary, len(raw)):
        dst = tmp_path / f"cut{cut}"
        wal = _recover_copy(src, dst, raw[:cut])
        assert wal.last_version == records - 1, cut
        assert read_all(wal) == list(enumerate(data[:-1], start=1)), cut
        if boundary == 0:  # its only record was torn: the empty file left behind is removed
            assert not (dst / last.name).exists()
        else:
            assert (dst / last.name).read_bytes() == raw[:boundary], "cut back to the last good record"
        assert wal.append(b"after") == records
        wal.close()
        wal = Wal.open(dst, segment_bytes=1000)
        assert list(wal.read_from(records - 1)) == [(records - 1, data[-2]), (records, b"after")]
        wal.close()
        shutil.rmtree(dst)


def test_torn_tail_garbage_and_damaged_final_record(tmp_path: Path) -> None:
    src = tmp_path / "src"
    data = fill(src, 12, segment_bytes=10**6)
    (seg,) = segments(src)
    raw = seg.read_bytes()
    final = record_offsets(raw)[-2]
    rng = random.Random(7)
    tails: dict[str, tuple[bytes, int]] = {
        "zeros": (raw + bytes(4096), 12),
        "one-byte": (raw + b"\x01", 12),
        "final-crc": (raw[: final + 4] + bytes([raw[final + 4] ^ 1]) + raw[final + 5 :], 11),
        "final-data": (raw[:-1] + bytes([raw[-1] ^ 0x80]), 11),
        "final-length-huge": (raw[: final + 3] + b"\x7f" + raw[final + 4 :], 11),
        "cut-plus-garbage": (raw[: final + 20] + rng.randbytes(333), 11),
    }
    for i in range(15):
        tails[f"random{i}"] = (raw + rng.randbytes(rng.randint(1, 3000)), 12)
    for name, (content, survivors) in tails.items():
        dst = tmp_path / name
        with capture_logs() as logs:
            wal = _recover_copy(src, dst, content)
        assert read_all(wal) == list(enumerate(data[:survivors], start=1)), name
        assert [e["log_level"] for e in logs] == ["warning"] and "torn" in logs[0]["event"], name
        wal.close()


def _flip(path: Path, offset: int) -> None:
    raw = bytearray(path.read_bytes())
    raw[offset] ^= 0xFF
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("field_offset", [0, 3, 4, 8, 15, 16, 30])  # length, crc, version, data
@pytest.mark.parametrize("record", [0, 4, 10])  # first, a middle one, the one before the last
def test_mid_file_corruption_raises_and_changes_nothing(
    tmp_path: Path, record: int, field_offset: int
) -> None:
    fill(tmp_path, 12, segment_bytes=10**6)
    (seg,) = segments(tmp_path)
    start = record_offsets(seg.read_bytes())[record]
    _flip(seg, start + field_offset)
    before = snapshot(tmp_path)
    with pytest.raises(CorruptedStorageError) as info:
        Wal.open(tmp_path)
    message = info.value.message
    assert seg.name in message and f"byte {start}" in message and f"last good version {record}" in message
    assert snapshot(tmp_path) == before, "nothing truncated or removed"


def test_version_out_of_order_is_corruption_even_at_the_tail(tmp_path: Path) -> None:
    fill(tmp_path, 5)
    (seg,) = segments(tmp_path)
    with seg.open("ab") as fh:
        fh.write(encode(7, b"skips version 6"))
    before = snapshot(tmp_path)
    with pytest.raises(CorruptedStorageError, match="out of order"):
        Wal.open(tmp_path)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("damage", ["flip-last-byte", "cut-last-record", "garbage-after", "missing-file"])
def test_damaged_closed_segment_raises_and_changes_nothing(tmp_path: Path, damage: str) -> None:
    fill(tmp_path, 20, segment_bytes=200)
    files = segments(tmp_path)
    assert len(files) >= 4
    closed = files[1]
    raw = closed.read_bytes()
    if damage == "flip-last-byte":
        _flip(closed, len(raw) - 1)
    elif damage == "cut-last-record":
        closed.write_bytes(raw[:-3])
    elif damage == "garbage-after":
        closed.write_bytes(raw + bytes(10))
    else:
        closed.unlink()
    before = snapshot(tmp_path)
    with pytest.raises(CorruptedStorageError) as info:
        Wal.open(tmp_path, segment_bytes=200)
    assert "last good version" in info.value.message and "byte" in info.value.message
    assert (files[2] if damage == "missing-file" else closed).name in info.value.message
    assert snapshot(tmp_path) == before


def test_empty_segment_left_by_a_crash_is_removed(tmp_path: Path) -> None:
    data = fill(tmp_path, 10, segment_bytes=200)
    leftover = tmp_path / "00000000000000000011.wal"
    leftover.touch()
    wal = Wal.open(tmp_path, segment_bytes=200)
    assert not leftover.exists()
    assert read_all(wal) == list(enumerate(data, start=1))
    assert wal.append(b"eleven") == 11
    wal.close()
    assert list(Wal.open(tmp_path, segment_bytes=200).read_from(11)) == [(11, b"eleven")]


# ---------------------------------------------------------------------- kill -9

WRITER = """
import hashlib, sys
from pathlib import Path
import structlog
structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
from qcluster.shards.wal import Wal

def payload(version):
    return hashlib.sha256(str(version).encode()).digest()[: 17 + version % 16] * (1 + version * 7919 % 300)

wal = Wal.open(Path(sys.argv[1]), segment_bytes=64 * 1024)
do_sync = sys.argv[2] == "1"
print("ready", wal.last_version, flush=True)
while True:
    v = wal.last_version + 1
    if v % 4 == 0:
        versions = wal.append_many([payload(v), payload(v + 1), payload(v + 2)])
    else:
        versions = [wal.append(payload(v))]
    if do_sync:
        assert wal.sync() >= versions[-1]
    print(*versions, sep="\\n", flush=True)
"""


def _run_and_kill(directory: Path, do_sync: bool, kill_after: int) -> list[int]:
    """Run the writer, SIGKILL it once it has printed ``kill_after`` versions; return them all."""
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(directory), "1" if do_sync else "0"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    lines: list[bytes] = []
    buffer = b""
    deadline = time.monotonic() + 60
    try:
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            while len(lines) < kill_after + 1:
                remaining = deadline - time.monotonic()
                assert remaining > 0, "the writer stalled"
                if sel.select(timeout=remaining):
                    chunk = os.read(proc.stdout.fileno(), 65536)
                    assert chunk, "the writer exited early"
                    buffer += chunk
                    *complete, buffer = buffer.split(b"\n")
                    lines.extend(complete)
    finally:
        proc.send_signal(signal.SIGKILL)
        rest, err = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, err.decode()
    lines.extend((buffer + rest).split(b"\n")[:-1])  # an unterminated last line was not acknowledged
    assert lines[0].startswith(b"ready")
    return [int(line) for line in lines[1:]]


@pytest.mark.parametrize("do_sync", [True, False], ids=["sync", "page-cache"])
def test_kill9_keeps_every_acknowledged_version(tmp_path: Path, do_sync: bool) -> None:
    rng = random.Random()
    acknowledged: set[int] = set()
    for _ in range(3):  # each round reopens what the previous kill left behind
        printed = _run_and_kill(tmp_path, do_sync, kill_after=rng.randint(5, 300))
        assert printed == list(range(printed[0], printed[-1] + 1))
        acknowledged.update(printed)
        wal = Wal.open(tmp_path, segment_bytes=64 * 1024)
        assert wal.last_version >= max(acknowledged)
        stored = dict(wal.read_from(1))
        assert all(stored[v] == payload(v) for v in acknowledged)
        assert sorted(stored) == list(range(1, wal.last_version + 1))
        wal.close()
