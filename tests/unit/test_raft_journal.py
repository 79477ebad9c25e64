"""The Raft journal (qcluster/consensus/journal.py): pysyncobj's on-disk format both ways, and a
full disk is an OSError that changes nothing, never a SIGBUS (the chaos harness's full-disk fault
killed peers with SIGBUS inside pysyncobj's journal before)."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pysyncobj.journal as pj
import pytest

from qcluster.consensus import journal as qj
from qcluster.consensus import wire

wire.install()  # the journal encodes commands with the wire codec, as in a peer


def _entries(j: object) -> list[tuple[bytes, int, int]]:
    return [(bytes(c), i, t) for c, i, t in (j[k] for k in range(len(j)))]  # type: ignore[index, arg-type]


def test_reads_and_writes_pysyncobj_format(tmp_path: Path) -> None:
    theirs = pj.FileJournal(str(tmp_path / "a.bin"))
    for i in range(1, 200):
        theirs.add(b"\x00cmd-%d" % i, i, 1 + i // 50)
    theirs._destroy()
    ours = qj.FileJournal(str(tmp_path / "a.bin"))
    assert _entries(ours) == [(b"\x00cmd-%d" % i, i, 1 + i // 50) for i in range(1, 200)]
    ours.deleteEntriesFrom(150)
    ours.deleteEntriesTo(10)
    ours.add(b"\x00tail", 150, 9)
    ours.setCurrentTerm(9, "peer")
    expected = _entries(ours)
    ours._destroy()
    again = pj.FileJournal(str(tmp_path / "a.bin"))
    assert _entries(again) == expected and expected[0][1] == 11 and expected[-1] == (b"\x00tail", 150, 9)
    assert again.getCurrentTerm() == 9 and again.getVotedForNodeId() == "peer"
    again._destroy()


def test_full_disk_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = str(tmp_path / "j.bin")
    j = qj.FileJournal(path)
    j.add(b"\x00first", 1, 1)
    real = os.posix_fallocate

    def full(fd: int, offset: int, length: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", full)
    with pytest.raises(OSError) as exc:
        j.add(b"\x00" + b"x" * 5000, 2, 1)  # needs the file to grow
    assert exc.value.errno == errno.ENOSPC
    assert len(j) == 1
    monkeypatch.setattr(os, "posix_fallocate", real)  # space freed: the next write goes through
    j.add(b"\x00second", 2, 1)
    j._destroy()
    reopened = qj.FileJournal(path)
    assert _entries(reopened) == [(b"\x00first", 1, 1), (b"\x00second", 2, 1)]
    reopened._destroy()


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("mount") is None, reason="mounting a tmpfs needs root")
def test_real_full_tmpfs_is_an_error_not_sigbus(tmp_path: Path) -> None:
    """A journal on a tiny tmpfs that is then filled: adding is an OSError, the process lives."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)], check=True)
    try:
        script = textwrap.dedent(f"""
            import errno, os
            from qcluster.consensus import journal, wire
            wire.install()
            j = journal.FileJournal({str(mnt / "j.bin")!r})
            with open({str(mnt / "fill")!r}, "wb", buffering=0) as f:
                try:
                    while True:
                        f.write(b"\\0" * 4096)
                except OSError:
                    pass
            n = 0
            try:
                for i in range(1, 100000):
                    j.add(b"\\x00" + b"y" * 900, i, 1)
                    n = i
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
            assert len(j) == n
            print("ok", n)
        """)
        proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
        assert proc.stdout.startswith("ok")
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)
