from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qcluster.errors import CorruptedStorageError
from qcluster.shards.wal import Wal, WalGapError


def records(wal: Wal, start: int = 1) -> list[tuple[int, bytes]]:
    return list(wal.read_from(start))


def test_roundtrip_reopen_and_rollover(tmp_path: Path) -> None:
    wal = Wal.open(tmp_path, segment_bytes=200, retain_bytes=0)
    data = [bytes([i]) * (i * 7 % 90 + 1) for i in range(40)]
    versions = [wal.append(d) for d in data[:20]] + wal.append_many(data[20:])
    assert versions == list(range(1, 41))
    wal.sync()
    assert wal.synced_version == 40
    wal.close()
    assert len(list(tmp_path.glob("*.wal"))) > 3
    wal = Wal.open(tmp_path, segment_bytes=200, retain_bytes=0)
    assert wal.last_version == 40 and wal.first_version == 1
    assert records(wal) == list(zip(range(1, 41), data, strict=True))
    assert [v for v, _ in wal.read_from(33)] == list(range(33, 41))
    assert wal.append(b"next") == 41
    wal.close()


def test_truncate_prefix_keeps_retained_and_live(tmp_path: Path) -> None:
    wal = Wal.open(tmp_path, segment_bytes=100, retain_bytes=150)
    for _i in range(60):
        wal.append(b"x" * 30)
    wal.truncate_prefix(60)
    first = wal.first_version
    assert first > 1, "old closed segments were dropped"
    kept = sum(p.stat().st_size for p in tmp_path.glob("*.wal"))
    assert kept >= 150
    with pytest.raises(WalGapError):
        list(wal.read_from(1))
    assert [v for v, _ in wal.read_from(first)][-1] == 60
    wal.truncate_prefix(10**9)
    assert wal.last_version == 60 and list(tmp_path.glob("*.wal"))  # the live segment stays
    wal.close()


def test_truncate_suffix_then_append(tmp_path: Path) -> None:
    wal = Wal.open(tmp_path, segment_bytes=100)
    for i in range(20):
        wal.append(f"r{i + 1}".encode())
    wal.truncate_suffix(8)
    assert wal.last_version == 7
    assert wal.append(b"new8") == 8
    wal.close()
    wal = Wal.open(tmp_path, segment_bytes=100)
    assert records(wal)[-2:] == [(7, b"r7"), (8, b"new8")]
    wal.close()


def test_torn_tail_at_every_offset(tmp_path: Path) -> None:
    src = tmp_path / "src"
    wal = Wal.open(src)
    for i in range(5):
        wal.append(f"record-{i}".encode() * 3)
    wal.close()
    (seg,) = list(src.glob("*.wal"))
    full = seg.read_bytes()
    sizes = [16 + len(f"record-{i}".encode() * 3) for i in range(5)]  # 16-byte record header
    boundary = sum(sizes[:4])
    for cut in range(boundary, len(full)):
        d = tmp_path / f"cut{cut}"
        d.mkdir()
        (d / seg.name).write_bytes(full[:cut])
        w = Wal.open(d)
        assert [v for v, _ in w.read_from(1)] == [1, 2, 3, 4], cut
        assert w.append(b"after") == 5
        w.close()
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / seg.name).write_bytes(full + bytes(random.Random(1).randrange(256) for _ in range(37)))
    w = Wal.open(garbage)
    assert w.last_version == 5
    w.close()


def test_mid_file_corruption_is_an_error(tmp_path: Path) -> None:
    wal = Wal.open(tmp_path, segment_bytes=10**6)
    for i in range(10):
        wal.append(f"payload-{i}".encode() * 4)
    wal.close()
    (seg,) = list(tmp_path.glob("*.wal"))
    raw = bytearray(seg.read_bytes())
    raw[40] ^= 0xFF  # inside the first record's data
    seg.write_bytes(bytes(raw))
    with pytest.raises(CorruptedStorageError) as info:
        Wal.open(tmp_path)
    assert seg.name in info.value.message and "last good version 0" in info.value.message
    assert seg.read_bytes() == bytes(raw), "nothing truncated on corruption"


def test_corrupt_closed_segment_is_an_error(tmp_path: Path) -> None:
    wal = Wal.open(tmp_path, segment_bytes=64)
    for _ in range(10):
        wal.append(b"z" * 40)
    wal.close()
    first = sorted(tmp_path.glob("*.wal"))[0]
    raw = bytearray(first.read_bytes())
    raw[-1] ^= 0x01  # the tail of a closed segment is not a torn tail
    first.write_bytes(bytes(raw))
    with pytest.raises(CorruptedStorageError):
        Wal.open(tmp_path, segment_bytes=64)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("append"), st.binary(max_size=50)),
            st.tuples(st.just("many"), st.lists(st.binary(max_size=20), max_size=4)),
            st.tuples(st.just("suffix"), st.integers(1, 30)),
            st.tuples(st.just("prefix"), st.integers(0, 30)),
            st.tuples(st.just("reopen"), st.none()),
        ),
        max_size=25,
    )
)
def test_model(tmp_path_factory: pytest.TempPathFactory, ops: list[tuple[str, object]]) -> None:
    path = tmp_path_factory.mktemp("wal")
    wal = Wal.open(path, segment_bytes=60, retain_bytes=10**6)
    model: dict[int, bytes] = {}
    nxt = 1
    for kind, arg in ops:
        if kind == "append":
            assert wal.append(arg) == nxt  # type: ignore[arg-type]
            model[nxt] = arg  # type: ignore[assignment]
            nxt += 1
        elif kind == "many":
            vs = wal.append_many(arg)  # type: ignore[arg-type]
            for v, d in zip(vs, arg, strict=True):  # type: ignore[call-overload]
                model[v] = d
            nxt += len(vs)
        elif kind == "suffix" and isinstance(arg, int) and arg < nxt:
            wal.truncate_suffix(arg)
            model = {v: d for v, d in model.items() if v < arg}
            nxt = arg
        elif kind == "prefix" and isinstance(arg, int):
            wal.truncate_prefix(arg)  # retain_bytes is large: nothing may disappear
        elif kind == "reopen":
            wal.close()
            wal = Wal.open(path, segment_bytes=60, retain_bytes=10**6)
    assert wal.last_version == nxt - 1
    assert dict(wal.read_from(1)) == model
    wal.close()
