"""Bounds on request bodies (``service.limits``), checked while a body is validated, before any
work is done on it.

The REST edge validates every body with the validation context ``{"limits": LimitsSettings}``
(:func:`context`); without one the defaults apply. A value beyond a bound raises a pydantic error
of type ``BOUND``, which the edge turns into a 400 naming the field and the bound. The walks over
raw JSON are iterative and stop as soon as a bound is passed, so a hostile body costs no more to
check than the bound allows; list lengths are checked before their items are validated.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BeforeValidator, ValidationInfo
from pydantic_core import PydanticCustomError

from qcluster.errors import BadInputError
from qcluster.settings import LimitsSettings
from qcluster.shards.filters.shape import filter_shape

BOUND = "bound"
DEFAULT_LIMITS = LimitsSettings()
_SCALARS = frozenset({int, float, str, bool, type(None)})


def context(limits: LimitsSettings) -> dict[str, Any]:
    return {"limits": limits}


def limits_of(info: ValidationInfo | None) -> LimitsSettings:
    ctx = None if info is None else info.context
    found = ctx.get("limits") if isinstance(ctx, Mapping) else None
    return found if isinstance(found, LimitsSettings) else DEFAULT_LIMITS


def bound_error(
    what: str, value: int, setting: str, bound: int, *, walked: bool = False
) -> PydanticCustomError:
    """``walked``: ``value`` comes from a walk that stopped once past the bound (the real figure
    may be larger)."""
    return PydanticCustomError(
        BOUND,
        "{what} is {at_least}{value}, above the bound of {bound} (service.limits.{setting})",
        {
            "what": what,
            "at_least": "at least " if walked else "",
            "value": value,
            "bound": bound,
            "setting": setting,
        },
    )


def refuse_above(field: str, what: str, value: int, setting: str, limits: LimitsSettings) -> None:
    """The same refusal outside pydantic (checks that need the collection): 400 naming the field."""
    bound: int = getattr(limits, setting)
    if value > bound:
        raise BadInputError(
            f"{field}: {what} is {value}, above the bound of {bound} (service.limits.{setting})", field
        )


def json_depth(value: Any, stop: int) -> int:
    """Nesting depth of JSON ``value`` (a scalar is 0, ``[]`` / ``{}`` 1); stops counting once
    past ``stop`` and returns ``stop + 1``. Lists of scalars (vectors) cost one C-level pass."""
    if not isinstance(value, dict | list):
        return 0
    deepest = 1
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        items = node.values() if isinstance(node, dict) else node
        if set(map(type, items)) <= _SCALARS:
            continue
        for v in items:
            if isinstance(v, dict | list):
                if depth + 1 > stop:
                    return stop + 1
                deepest = max(deepest, depth + 1)
                stack.append((v, depth + 1))
    return deepest


def check_json_depth(value: Any, info: ValidationInfo) -> Any:
    """A JSON value that is stored (payload, metadata): its nesting depth."""
    bound = limits_of(info).max_json_depth
    depth = json_depth(value, bound)
    if depth > bound:
        raise bound_error("nesting depth", depth, "max_json_depth", bound, walked=True)
    return value


def check_filter(value: Any, info: ValidationInfo) -> Any:
    """Filter JSON: nesting depth and number of conditions, before anything recurses into it."""
    limits = limits_of(info)
    shape = filter_shape(value, limits.max_filter_depth, limits.max_filter_conditions)
    if shape.depth > limits.max_filter_depth:
        raise bound_error("filter nesting depth", shape.depth, "max_filter_depth", limits.max_filter_depth)
    if shape.conditions > limits.max_filter_conditions:
        raise bound_error(
            "number of filter conditions",
            shape.conditions,
            "max_filter_conditions",
            limits.max_filter_conditions,
            walked=True,
        )
    return value


def bounded_length(setting: str, what: str) -> BeforeValidator:
    """A list whose length is bounded by ``service.limits.<setting>``, checked before its items
    are validated."""

    def check(value: Any, info: ValidationInfo) -> Any:
        bound = getattr(limits_of(info), setting)
        if isinstance(value, list) and len(value) > bound:
            raise bound_error(what, len(value), setting, bound)
        return value

    return BeforeValidator(check)


def prefetch_shape(raw: Any, max_depth: int, max_count: int) -> tuple[int, int]:
    """(depth, count) of the ``prefetch`` tree under query body ``raw``, iteratively; stops once
    either passes its bound."""
    depth = count = 0
    stack: list[tuple[Any, int]] = [(raw, 0)]
    while stack:
        node, level = stack.pop()
        if not isinstance(node, Mapping):
            continue
        pre = node.get("prefetch")
        children = pre if isinstance(pre, list) else [] if pre is None else [pre]
        for child in children:
            count += 1
            depth = max(depth, level + 1)
            if depth > max_depth or count > max_count:
                return depth, count
            stack.append((child, level + 1))
    return depth, count


def check_prefetch(value: Any, info: ValidationInfo) -> Any:
    limits = limits_of(info)
    depth, count = prefetch_shape(value, limits.max_prefetch_depth, limits.max_prefetches)
    if depth > limits.max_prefetch_depth:
        raise bound_error(
            "prefetch nesting depth", depth, "max_prefetch_depth", limits.max_prefetch_depth, walked=True
        )
    if count > limits.max_prefetches:
        raise bound_error("number of prefetches", count, "max_prefetches", limits.max_prefetches, walked=True)
    return value


def key_depth(key: str) -> int:
    """Levels a payload key path (``a.b[].c``) adds when values are set under it."""
    return len([p for p in key.replace("[]", "").split(".") if p])
