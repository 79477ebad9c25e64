"""Datetime strings as Qdrant reads them, to UTC microseconds since the epoch.

Accepted (the formats Qdrant's ``DateTimeWrapper`` accepts):

- RFC 3339 / ISO 8601 with an offset: ``2023-02-08T10:49:00Z``, ``2023-02-08T11:49:00+01:00``,
  ``2023-02-08 10:49:00.123+0100``, ``2023-02-08T10:49:00+01`` (``T``, ``t`` or a space between
  date and time; ``Z``/``z``, ``±HH``, ``±HHMM`` or ``±HH:MM``; up to 9 fraction digits);
- without an offset, taken as UTC: ``2023-02-08T10:49:00``, ``2023-02-08 10:49:00.5``,
  ``2023-02-08T10:49``, ``2023-02-08 10:49``, ``2023-02-08``.

Precision is one microsecond (extra fraction digits are truncated), like Qdrant's timestamps.
"""

from __future__ import annotations

import calendar
import re
from datetime import datetime
from typing import Any

_DT = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt ](\d{2}):(\d{2})"
    r"(?::(\d{2})(?:\.(\d{1,9}))?(?:\s?(Z|z|[+-]\d{2}(?::?\d{2})?))?)?"
    r")?"
)


def datetime_micros(value: Any) -> int | None:
    """UTC microseconds for a datetime string, None when it is not one."""
    if not isinstance(value, str) or len(value) > 40:
        return None
    m = _DT.fullmatch(value)
    if m is None:
        return None
    year, month, day, hour, minute, second, frac, tz = m.groups()
    try:
        # validates the calendar (month 13, Feb 30, hour 24 ...)
        datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0))
    except ValueError:
        return None
    secs = calendar.timegm(
        (int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0), 0, 0, 0)
    )
    micros = int((frac or "").ljust(6, "0")[:6])
    if tz and tz not in ("Z", "z"):
        digits = tz[1:].replace(":", "")
        offset_h = int(digits[:2])
        offset_m = int(digits[2:4]) if len(digits) > 2 else 0
        if offset_h > 23 or offset_m > 59:
            return None
        offset = (offset_h * 3600 + offset_m * 60) * (1 if tz[0] == "+" else -1)
        secs -= offset
    return secs * 1_000_000 + micros
