"""The history of a chaos run: one JSON object per line, appended as things happen.

Records (field ``t``):

- ``op``: one client operation: ``id``, ``client``, ``peer`` it was sent to, ``kind``, ``start``/
  ``end`` (seconds since the run began, monotonic), ``outcome`` (``ok`` / ``failed`` /
  ``indeterminate``), ``status`` (HTTP status, 0 for no answer), ``error``, and ``effects``: for each
  object it writes, ``{"op": "put", "value": V}``, ``{"op": "del"}`` or ``{"op": "merge",
  "value": {field: V}}`` (a merge into an absent object leaves it absent). Reads have no effects.
- ``fault``: ``kind``, ``targets``, ``start``/``end``, ``detail``.
- ``observe``: what one peer's ``GET /cluster`` said: ``peer``, ``peer_id``, ``term``, ``leader``,
  ``role``.
- ``crash``: a peer process that exited without the harness killing it: ``peer``, ``rc``, ``log``.

Objects are named ``key:<k>`` (cluster metadata key), ``col:<name>`` (collection), ``alias:<name>``,
``pt:<collection>:<id>`` (a point). The checker reads nothing else.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

OK, FAILED, INDETERMINATE = "ok", "failed", "indeterminate"


def classify(status: int, body: Any) -> tuple[str, str | None]:
    """Outcome of one REST call from its status (0: no answer, ``body`` the reason).

    A refused connection never reached the peer: failed. A 4xx is a definite refusal: failed.
    A timeout, a reset connection or a 5xx may have taken effect: indeterminate."""
    if status == 200:
        return OK, None
    if status == 0:
        reason = str(body)
        return (FAILED if "refused" in reason.lower() else INDETERMINATE), reason[:200]
    error = body.get("status", {}).get("error") if isinstance(body, dict) else None
    error = str(error if error is not None else body)[:200]
    if 400 <= status < 500 and status != 408:
        return FAILED, error
    return INDETERMINATE, error


class History:
    """Thread-safe JSON-lines writer; keeps the records in memory too."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.t0 = time.monotonic()
        self.records: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._next_id = 0
        self._file = open(path, "w") if path is not None else None  # noqa: SIM115 - closed in close()

    def now(self) -> float:
        return round(time.monotonic() - self.t0, 4)

    def op_id(self) -> int:
        with self._lock:
            self._next_id += 1
            return self._next_id

    def add(self, record: dict[str, Any]) -> dict[str, Any]:
        line = json.dumps(record, sort_keys=True)
        with self._lock:
            self.records.append(record)
            if self._file is not None:
                self._file.write(line + "\n")
                self._file.flush()
        return record

    def ops(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self.records if r["t"] == "op"]

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def load(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def counts(records: Iterable[dict[str, Any]]) -> dict[str, int]:
    out = {OK: 0, FAILED: 0, INDETERMINATE: 0}
    for r in records:
        if r["t"] == "op":
            out[r["outcome"]] += 1
    return out
