"""The repository stands alone: no tracked text file points outside it (a sibling ``shared``
folder, or an absolute path of the machine it was developed on), and the reference specs the tests
read are inside it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# Built from parts so that this file does not match itself.
FORBIDDEN = (".." + "/" + "shared", "/" + "work" + "/")


def _tracked_files() -> list[Path]:
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z"], cwd=REPO, check=True, capture_output=True, timeout=30
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [REPO / name for name in out.decode().split("\0") if name]


def test_no_file_refers_outside_the_repo() -> None:
    offenders = []
    for path in _tracked_files():
        if not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for needle in FORBIDDEN:
            if needle in text:
                offenders.append(f"{path.relative_to(REPO)}: {needle}")
    assert offenders == []


def test_reference_specs_are_in_the_repo() -> None:
    from tests.e2e.openapi_check import REFERENCE

    assert REFERENCE.is_relative_to(REPO)
    for version in ("1.18", "1.19"):
        assert (REFERENCE / f"qdrant-openapi-{version}.json").is_file()
    assert (REFERENCE / "NOTICE").is_file()
