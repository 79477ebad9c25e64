"""The shard WAL on real files: round trips, rollover, truncation, crash recovery, kill -9."""

from __future__ import annotations

import os
import shutil
import struct
import tempfile
import threading
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from qcluster.errors import BadInputError, CancelledError
from qcluster.shards.wal import HEADER_BYTES, Wal, WalGapError
from tests.unit.wal_helpers import payload, segments

# ---------------------------------------------------------------------- basics


def test_round_trip_and_reopen(tmp_path: Path) -> None:
    wal = Wal.open(tmp_path / "new" / "wal")  # creates the directory, but no segment before an append
    assert (wal.first_version, wal.last_version, wal.size_bytes(), wal.sync()) == (1, 0, 0, 0)
    assert list(wal.read_from(1)) == [] and wal.append_many([]) == []
    assert segments(tmp_path / "new" / "wal") == []
    wal.close()

    wal = Wal.open(tmp_path)
    big = os.urandom(50_000)
    assert wal.append(b"") == 1
    assert wal.append(big) == 2
    assert wal.append_many([b"a", bytearray(b"bb"), b"ccc"]) == [3, 4, 5]
    assert wal.synced_version == 0
    assert wal.sync() == 5 and wal.synced_version == 5
    assert wal.sync() == 5  # nothing new
    expected = [(1, b""), (2, big), (3, b"a"), (4, b"bb"), (5, b"ccc")]
    assert list(wal.read_from(1)) == expected
    assert wal.size_bytes() == sum(HEADER_BYTES + len(d) for _, d in expected)
    wal.close()
    wal.close()  # idempotent
    with pytest.raises(CancelledError):
        wal.append(b"late")

    wal = Wal.open(tmp_path)
    assert (wal.first_version, wal.last_version) == (1, 5)
    assert list(wal.read_from(1)) == expected
    assert list(wal.read_from(4)) == expected[3:]
    assert list(wal.read_from(6)) == [] and list(wal.read_from(99)) == []
    assert wal.append(b"six") == 6
    assert wal.sync() == 6
    wal.close()
    assert list(Wal.open(tmp_path).read_from(6)) == [(6, b"six")]


def test_bad_arguments_name_the_field(tmp_path: Path) -> None:
    with pytest.raises(BadInputError) as info:
        Wal.open(tmp_path, segment_bytes=0)
    assert info.value.field == "segment_bytes"
    wal = Wal.open(tmp_path)
    with pytest.raises(BadInputError) as info:
        wal.read_from(0)
    assert info.value.field == "version"
    with pytest.raises(BadInputError) as info:
        wal.append_many([b"ok", "text"])  # type: ignore[list-item]
    assert info.value.field == "items[1]"
    assert wal.last_version == 0, "a rejected batch appends nothing"
    wal.close()


def test_append_is_one_write_and_sync_flushes_every_file_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wal = Wal.open(tmp_path / "wal", segment_bytes=100)
    wal.append(b"a" * 50)  # 66-byte records
    wal.sync()
    calls: list[tuple[str, str]] = []
    real_write, real_fsync = os.write, os.fsync

    def write(fd: int, data: bytes) -> int:
        calls.append(("write", os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))))
        return real_write(fd, data)

    def fsync(fd: int) -> None:
        calls.append(("fsync", os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))))
        real_fsync(fd)

    with monkeypatch.context() as m:
        m.setattr(os, "write", write)
        m.setattr(os, "fsync", fsync)
        wal.append(os.urandom(50_000))  # fills file 1, whose first record is already durable
        wal.append_many([b"c" * 50, b"d" * 50])  # rolls over to file 3
        wal.append(b"e" * 50)  # rolls over to file 5
        names = [f.name for f in segments(tmp_path / "wal")]
        assert [int(n[:-4]) for n in names] == [1, 3, 5]
        assert calls == [("write", names[0]), ("write", names[1]), ("write", names[2])], "no fsync"
        calls.clear()
        assert wal.sync() == 5
        assert {c[0] for c in calls} == {"fsync"}
        assert {c[1] for c in calls} == {"wal", *names}  # every file written to, and the directory
        calls.clear()
        assert wal.sync() == 5 and calls == []  # nothing new: no fsync at all
    wal.close()


# ---------------------------------------------------------------------- rollover and reads


def test_rollover_across_segments_and_read_from_every_version(tmp_path: Path) -> None:
    wal = Wal.open(tmp_path, segment_bytes=2000)
    data = [payload(v)[:300] for v in range(1, 61)]
    for i in range(0, 60, 3):
        if i % 2:
            wal.append_many(data[i : i + 3])
        else:
            for d in data[i : i + 3]:
                wal.append(d)
    files = segments(tmp_path)
    assert len(files) >= 5
    for f in files:  # each file is named for its first record, and versions continue across files
        raw = f.read_bytes()
        assert struct.unpack_from("<Q", raw, 8)[0] == int(f.stem)
        assert len(raw) < 2000 + 3 * (HEADER_BYTES + 300)  # rolls over once past segment_bytes
    assert wal.size_bytes() == sum(f.stat().st_size for f in files)
    for reopen in (False, True):
        if reopen:
            wal.close()
            wal = Wal.open(tmp_path, segment_bytes=2000)
        for start in range(1, 62):
            assert list(wal.read_from(start)) == list(zip(range(start, 61), data[start - 1 :], strict=True))
    assert wal.append(b"x") == 61
    wal.close()


def test_read_from_below_first_version_raises_gap(tmp_path: Path) -> None:
    wal = Wal.open(tmp_path, segment_bytes=100, retain_bytes=0)
    for v in range(1, 31):
        wal.append(payload(v)[:40])
    wal.truncate_prefix(20)
    first = wal.first_version
    assert 2 <= first <= 21
    with pytest.raises(WalGapError):
        wal.read_from(first - 1)  # raised by the call itself, not on the first next()
    with pytest.raises(WalGapError):
        wal.read_from(1)
    assert [v for v, _ in wal.read_from(first)] == list(range(first, 31))
    wal.close()


def test_reader_racing_truncation_gets_gap_error(tmp_path: Path) -> None:
    wal = Wal.open(tmp_path, segment_bytes=100, retain_bytes=0)
    for v in range(1, 41):
        wal.append(payload(v)[:40])
    reader = wal.read_from(1)
    assert next(reader)[0] == 1
    wal.truncate_suffix(30)
    with pytest.raises(WalGapError):
        list(reader)

    reader = wal.read_from(1)
    assert next(reader)[0] == 1  # the first file is open; the later ones are not yet
    wal.truncate_prefix(25)
    with pytest.raises(WalGapError):
        list(reader)
    wal.close()


def test_concurrent_appends_and_syncs(tmp_path: Path) -> None:
    wal = Wal.open(tmp_path, segment_bytes=4096)
    got: dict[int, bytes] = {}
    synced: list[int] = []
    guard = threading.Lock()

    def writer(tid: int) -> None:
        for i in range(150):
            data = f"{tid}-{i}".encode() * (1 + i % 7)
            batch = [data, data[::-1]] if i % 5 == 0 else [data]
            versions = wal.append_many(batch) if len(batch) > 1 else [wal.append(data)]
            with guard:
                got.update(zip(versions, batch, strict=True))

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(4)]
    threads.append(threading.Thread(target=lambda: synced.extend(wal.sync() for _ in range(40))))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == list(range(1, 4 * 180 + 1)) and wal.last_version == 4 * 180
    assert synced == sorted(synced) and wal.sync() == wal.last_version == wal.synced_version
    wal.close()
    assert dict(Wal.open(tmp_path, segment_bytes=4096).read_from(1)) == got


# ---------------------------------------------------------------------- truncation


def test_truncate_prefix_keeps_retain_bytes_and_the_live_segment(tmp_path: Path) -> None:
    # 34-byte data -> 50-byte records -> 2 records per 100-byte segment -> 30 files for 60 records
    wal = Wal.open(tmp_path, segment_bytes=100, retain_bytes=250)
    for _ in range(60):
        wal.append(b"x" * 34)
    assert len(segments(tmp_path)) == 30
    wal.truncate_prefix(10)  # only files whose records are all <= 10 may go
    assert wal.first_version == 11 and int(segments(tmp_path)[0].stem) == 11
    wal.truncate_prefix(60)  # everything is persisted elsewhere: keep 250 bytes of closed files
    files = segments(tmp_path)
    assert [int(f.stem) for f in files] == [53, 55, 57, 59]  # 3 closed (300 >= 250 bytes) + live
    assert wal.first_version == 53
    assert [v for v, _ in wal.read_from(53)] == list(range(53, 61))
    wal.close()

    wal = Wal.open(tmp_path, segment_bytes=100, retain_bytes=0)
    assert (wal.first_version, wal.last_version) == (53, 60)
    wal.truncate_prefix(10**9)
    assert [int(f.stem) for f in segments(tmp_path)] == [59]  # the live segment is never deleted
    assert wal.first_version == 59 and wal.append(b"next") == 61
    wal.close()


def test_truncate_suffix_within_and_across_segments(tmp_path: Path) -> None:
    wal = Wal.open(tmp_path, segment_bytes=100)
    for v in range(1, 21):
        wal.append(f"r{v}".encode())
    wal.sync()
    wal.truncate_suffix(25)  # past the end: nothing happens
    assert wal.last_version == 20
    wal.truncate_suffix(18)
    assert (wal.last_version, wal.synced_version) == (17, 17)
    assert wal.append(b"new18") == 18
    wal.truncate_suffix(5)  # drops whole files
    assert wal.last_version == 4 and all(int(f.stem) <= 5 for f in segments(tmp_path))
    assert wal.append_many([b"new5", b"new6"]) == [5, 6]
    wal.close()
    wal = Wal.open(tmp_path, segment_bytes=100)
    assert list(wal.read_from(3)) == [(3, b"r3"), (4, b"r4"), (5, b"new5"), (6, b"new6")]
    assert wal.append(b"new7") == 7
    wal.close()


def test_truncate_suffix_to_empty_survives_reopen(tmp_path: Path) -> None:
    wal = Wal.open(tmp_path, segment_bytes=100, retain_bytes=0)
    for v in range(1, 31):
        wal.append(f"r{v}".encode())
    wal.truncate_prefix(20)
    first = wal.first_version
    wal.truncate_suffix(first)  # exactly everything retained
    assert (wal.first_version, wal.last_version) == (first, first - 1)
    wal.close()
    wal = Wal.open(tmp_path, segment_bytes=100, retain_bytes=0)
    assert (wal.first_version, wal.last_version) == (first, first - 1)
    wal.truncate_suffix(3)  # below the retained range: rewinds the numbering
    wal.close()
    wal = Wal.open(tmp_path, segment_bytes=100, retain_bytes=0)
    assert (wal.first_version, wal.last_version) == (3, 2)
    assert wal.append(b"again") == 3
    assert list(wal.read_from(3)) == [(3, b"again")]
    wal.close()


def test_set_start_version(tmp_path: Path) -> None:
    wal = Wal.open(tmp_path)
    wal.set_start_version(1000)
    assert (wal.first_version, wal.last_version) == (1000, 999)
    wal.close()
    wal = Wal.open(tmp_path)  # persisted before any append
    assert wal.last_version == 999
    assert wal.append(b"a") == 1000
    with pytest.raises(BadInputError) as info:
        wal.set_start_version(5)
    assert info.value.field == "version"
    wal.close()
    wal = Wal.open(tmp_path)
    assert list(wal.read_from(1000)) == [(1000, b"a")]
    wal.close()


# ---------------------------------------------------------------------- model-based


class WalMachine(RuleBasedStateMachine):
    """Random append / truncate / reopen sequences against a dict model."""

    SEGMENT_BYTES = 120
    RETAIN_BYTES = 150

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="wal-model-"))
        self.wal = self._open()
        self.model: dict[int, bytes] = {}
        self.first = 1
        self.next = 1

    def _open(self) -> Wal:
        return Wal.open(self.dir, segment_bytes=self.SEGMENT_BYTES, retain_bytes=self.RETAIN_BYTES)

    @rule(data=st.binary(max_size=60))
    def append(self, data: bytes) -> None:
        assert self.wal.append(data) == self.next
        self.model[self.next] = data
        self.next += 1

    @rule(items=st.lists(st.binary(max_size=30), max_size=5))
    def append_many(self, items: list[bytes]) -> None:
        assert self.wal.append_many(items) == list(range(self.next, self.next + len(items)))
        for data in items:
            self.model[self.next] = data
            self.next += 1

    @rule(back=st.integers(0, 25))
    def truncate_suffix(self, back: int) -> None:
        start = max(1, self.next - back)
        self.wal.truncate_suffix(start)
        if start < self.next:
            self.model = {v: d for v, d in self.model.items() if v < start}
            self.next = start
            self.first = min(self.first, start)
            assert self.wal.synced_version == start - 1

    @rule(back=st.integers(0, 25))
    def truncate_prefix(self, back: int) -> None:
        upto = max(0, self.next - 1 - back)
        self.wal.truncate_prefix(upto)
        first = self.wal.first_version
        assert first == self.first or self.first < first <= upto + 1, "only versions <= upto may go"
        if first > self.first:
            closed = segments(self.dir)[:-1]
            assert sum(f.stat().st_size for f in closed) >= self.RETAIN_BYTES
            self.model = {v: d for v, d in self.model.items() if v >= first}
            self.first = first

    @precondition(lambda self: not self.model)
    @rule(ahead=st.integers(0, 50))
    def set_start_version(self, ahead: int) -> None:
        self.wal.set_start_version(self.next + ahead)
        self.first = self.next = self.next + ahead

    @rule()
    def sync(self) -> None:
        assert self.wal.sync() == self.next - 1 == self.wal.synced_version

    @rule()
    def reopen(self) -> None:
        self.wal.close()
        self.wal = self._open()

    @rule(offset=st.integers(0, 30))
    def read_from(self, offset: int) -> None:
        start = self.first + offset
        assert list(self.wal.read_from(start)) == [
            (v, d) for v, d in sorted(self.model.items()) if v >= start
        ]
        if self.first > 1:
            with pytest.raises(WalGapError):
                self.wal.read_from(self.first - 1)

    @invariant()
    def matches_model(self) -> None:
        assert (self.wal.first_version, self.wal.last_version) == (self.first, self.next - 1)
        assert dict(self.wal.read_from(self.first)) == self.model
        assert self.wal.size_bytes() == sum(f.stat().st_size for f in segments(self.dir))

    def teardown(self) -> None:
        self.wal.close()
        shutil.rmtree(self.dir, ignore_errors=True)


WalMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
TestWalModel = WalMachine.TestCase
