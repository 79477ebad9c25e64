"""pytest plugin for scripts/qdrant_suite.sh: skips the tests named in the skip list (env
``QC_SUITE_SKIPS``) with their reasons, and ends with passed / failed / errors and the share of
the tests not on the list that passed.

Skip list format, one entry a line: ``<node id>  # <reason>``; blank lines and lines starting with
``#`` are ignored. A node id names a test (``openapi/test_x.py::test_y``, which also covers all its
parametrizations ``test_y[...]``), or a whole file (``openapi/test_x.py``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

MARK = "qcluster skip list: "


@dataclass
class Entry:
    node: str
    reason: str
    matched: list[str] = field(default_factory=list)

    def covers(self, nodeid: str) -> bool:
        if nodeid == self.node or nodeid.startswith(self.node + "["):
            return True
        return self.node.endswith(".py") and nodeid.startswith(self.node + "::")


def _load(path: str | None) -> list[Entry]:
    if not path:
        return []
    entries = []
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        node, sep, reason = text.partition(" #")
        if not sep or not reason.strip():
            raise pytest.UsageError(f"{path}:{n}: expected '<node id>  # <reason>', got {text!r}")
        entries.append(Entry(node.strip(), reason.strip()))
    return entries


ENTRIES = _load(os.environ.get("QC_SUITE_SKIPS"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        for entry in ENTRIES:
            if entry.covers(item.nodeid):
                entry.matched.append(item.nodeid)
                item.add_marker(pytest.mark.skip(reason=MARK + entry.reason))
                break


def _listed(report: Any) -> bool:
    longrepr = getattr(report, "longrepr", None)
    return (
        isinstance(longrepr, tuple) and len(longrepr) == 3 and str(longrepr[2]).startswith("Skipped: " + MARK)
    )


def pytest_unconfigure(config: pytest.Config) -> None:
    """After pytest's own summary, so the figures are the last lines of the run."""
    terminalreporter = config.pluginmanager.get_plugin("terminalreporter")
    if terminalreporter is None:
        return
    stats = terminalreporter.stats
    passed = len(stats.get("passed", []))
    failed = len(stats.get("failed", []))
    errors = len(stats.get("error", []))
    skipped = stats.get("skipped", [])
    listed = sum(1 for r in skipped if _listed(r))
    self_skipped = len(skipped) - listed
    write = terminalreporter.write_line
    write("")
    write("qcluster skip list:")
    for entry in ENTRIES:
        count = len(entry.matched)
        write(f"  {entry.node} ({count} test{'s' if count != 1 else ''}): {entry.reason}")
    run = passed + failed + errors
    share = 100.0 * passed / run if run else 0.0
    write(
        f"qdrant openapi suite: passed={passed} failed={failed} errors={errors} "
        f"skipped(listed)={listed} skipped(by the suite)={self_skipped}; "
        f"{share:.1f}% of the {run} tests not skipped passed"
    )
