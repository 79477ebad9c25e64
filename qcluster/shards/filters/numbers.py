"""JSON numbers as the filter language sees them: booleans are not numbers, integers are exact."""

from __future__ import annotations

import math
from typing import Any


def is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def as_number(x: Any) -> float | None:
    """A JSON number as a double (as Qdrant's ``as_f64``), None for anything else."""
    if isinstance(x, bool) or not isinstance(x, int | float):
        return None
    try:
        return float(x)
    except OverflowError:
        return math.inf if x > 0 else -math.inf
