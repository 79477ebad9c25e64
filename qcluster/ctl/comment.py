"""What a transfer's ``comment`` says about its progress. Two writers are understood:

* qcluster: ``stream_records: copying points 4000/10000 (40%), 2100 points/s, ETA 3 s``
  (``<method>: <stage>[ <done>/<total> <unit> ...][, <rate> <unit>/s, ETA <s> s]``);
* Qdrant: ``transferring (3.20s) | Transferring records (1200/5000), ETA: 9.10s | read: ...``
  (older versions: ``Transferring records (1200/5000), started 3s ago, ETA: 9.1s``).

Every part is optional; what is not there is ``None``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_NUMBER = r"\d+(?:\.\d+)?"
_QDRANT_STAGE = re.compile(rf"^\s*(?P<stage>[a-z][a-z ]*?)\s*\((?P<secs>{_NUMBER})s\)")
_QCLUSTER_STAGE = re.compile(r"^\s*(?P<method>[a-z_]+):\s*(?P<stage>[a-z][a-z ]*?)\s*(?=\d|,|$)")
_RECORDS = re.compile(r"(?P<done>\d+)/(?P<total>\d+)\)?(?:\s+(?P<unit>[a-z]+))?")
_ETA = re.compile(rf"ETA:?\s*(?P<eta>{_NUMBER})\s*s")


@dataclass(frozen=True)
class TransferProgress:
    stage: str | None = None
    stage_seconds: float | None = None
    done: int | None = None
    total: int | None = None
    unit: str | None = None
    eta_seconds: float | None = None

    @property
    def fraction(self) -> float | None:
        if self.done is None or not self.total:
            return None
        return min(1.0, self.done / self.total)


def parse_comment(comment: str | None) -> TransferProgress:
    if not comment:
        return TransferProgress()
    qdrant = _QDRANT_STAGE.search(comment)
    ours = None if qdrant else _QCLUSTER_STAGE.search(comment)
    records = _RECORDS.search(comment)
    eta = _ETA.search(comment)
    unit = records["unit"] if records and records["unit"] else ("records" if records else None)
    return TransferProgress(
        stage=qdrant["stage"] if qdrant else (ours["stage"] if ours else None),
        stage_seconds=float(qdrant["secs"]) if qdrant else None,
        done=int(records["done"]) if records else None,
        total=int(records["total"]) if records else None,
        unit=unit,
        eta_seconds=float(eta["eta"]) if eta else None,
    )
