"""What a transfer's ``comment`` says about its progress. Qdrant's source peer writes, for example,
``transferring (3.20s) | Transferring records (1200/5000), ETA: 9.10s | read: 0.40s, send: 1.10s``
(older versions: ``Transferring records (1200/5000), started 3s ago, ETA: 9.1s``). Every part is
optional; what is not there is ``None``."""

from __future__ import annotations

import re
from dataclasses import dataclass

_STAGE = re.compile(r"^\s*(?P<stage>[a-z][a-z ]*?)\s*\((?P<secs>\d+(?:\.\d+)?)s\)")
_RECORDS = re.compile(r"Transferring records \((?P<done>\d+)/(?P<total>\d+)\)")
_ETA = re.compile(r"ETA:\s*(?P<eta>\d+(?:\.\d+)?)s")


@dataclass(frozen=True)
class TransferProgress:
    stage: str | None = None
    stage_seconds: float | None = None
    done: int | None = None
    total: int | None = None
    eta_seconds: float | None = None

    @property
    def fraction(self) -> float | None:
        if self.done is None or not self.total:
            return None
        return min(1.0, self.done / self.total)


def parse_comment(comment: str | None) -> TransferProgress:
    if not comment:
        return TransferProgress()
    stage = _STAGE.search(comment)
    records = _RECORDS.search(comment)
    eta = _ETA.search(comment)
    return TransferProgress(
        stage=stage["stage"] if stage else None,
        stage_seconds=float(stage["secs"]) if stage else None,
        done=int(records["done"]) if records else None,
        total=int(records["total"]) if records else None,
        eta_seconds=float(eta["eta"]) if eta else None,
    )
