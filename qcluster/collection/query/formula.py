"""Formula queries (``{"formula": <expression>, "defaults": {...}}``): rescore the prefetched
points with an arithmetic expression over their prefetch scores, payload values and conditions.

Expressions, as Qdrant defines them: a number; a string naming a variable (``$score`` /
``$score[i]``: the point's score in prefetch ``i``, default 0; otherwise a payload key); a filter
condition (1 when it holds, else 0); ``sum`` / ``mult`` (lists); ``neg``, ``abs``, ``sqrt``,
``exp``, ``ln``, ``log10``; ``div`` ``{left, right, by_zero_default}``; ``pow`` ``{base,
exponent}``; ``geo_distance`` ``{origin, to}`` (metres); ``datetime`` / ``datetime_key`` (seconds
since the epoch); ``lin_decay`` / ``exp_decay`` / ``gauss_decay`` ``{x, target, scale, midpoint}``.

A payload variable that a point lacks takes ``defaults[key]``; without one the query fails (400),
as does any step that is not a finite number. Arithmetic is float64, like Qdrant's.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from qcluster.collection.query.context import Hit, QueryContext, datetime_micros, hydrate
from qcluster.errors import BadInputError
from qcluster.shards.base import ALL_PAYLOAD, NO_PAYLOAD, NO_VECTORS, ScrollRequest
from qcluster.shards.filters.geo import geo_point, haversine_m
from qcluster.shards.filters.paths import parse_path, raw_values
from qcluster.types import PointId

UNARY = {
    "neg": lambda v: -v,
    "abs": abs,
    "sqrt": math.sqrt,
    "exp": math.exp,
    "ln": math.log,
    "log10": math.log10,
}
UNARY_SYMBOL = {"sqrt": "√{}", "exp": "exp({})", "ln": "ln({})", "log10": "log10({})"}


@dataclass(slots=True)
class Point:
    """What an expression reads for one point."""

    id: PointId
    scores: list[float | None]  # per prefetch (None: not found by it)
    payload: dict[str, Any]
    conditions: list[bool]


Expr = Callable[[Point], float]


def _finite(value: float, text: str) -> float:
    if not math.isfinite(value):
        raise BadInputError(f"The expression {text} produced a non-finite number", "query.formula")
    return value


@dataclass(slots=True)
class Compiler:
    defaults: Mapping[str, Any]
    conditions: list[Any]

    def compile(self, raw: Any, field: str) -> Expr:
        if isinstance(raw, bool):
            raise BadInputError(f"{field}: expected an expression, got a boolean", field)
        if isinstance(raw, int | float):
            value = float(raw)
            return lambda p: value
        if isinstance(raw, str):
            return self._variable(raw, field)
        if not isinstance(raw, Mapping):
            raise BadInputError(f"{field}: expected an expression", field)
        if "sum" in raw or "mult" in raw:
            op = "sum" if "sum" in raw else "mult"
            items = raw[op]
            if not isinstance(items, list):
                raise BadInputError(f"{field}.{op}: expected a list of expressions", f"{field}.{op}")
            parts = [self.compile(x, f"{field}.{op}[{i}]") for i, x in enumerate(items)]
            return _sum(parts) if op == "sum" else _mult(parts)
        for name, fn in UNARY.items():
            if name in raw:
                inner = self.compile(raw[name], f"{field}.{name}")
                return _unary(name, fn, inner)
        if "div" in raw:
            return self._div(raw["div"], f"{field}.div")
        if "pow" in raw:
            spec = _params(raw["pow"], ("base", "exponent"), f"{field}.pow")
            base, exponent = self.compile(spec["base"], field), self.compile(spec["exponent"], field)

            def power(p: Point) -> float:
                b, e = base(p), exponent(p)
                try:
                    value = math.pow(b, e)
                except (OverflowError, ValueError):
                    value = math.nan
                return _finite(value, f"{b}^{e} = {value}")

            return power
        if "geo_distance" in raw:
            return self._geo(raw["geo_distance"], f"{field}.geo_distance")
        if "datetime" in raw:
            seconds = _seconds(raw["datetime"], f"{field}.datetime")
            return lambda p: seconds
        if "datetime_key" in raw:
            return self._datetime_key(raw["datetime_key"], f"{field}.datetime_key")
        for kind in ("lin_decay", "exp_decay", "gauss_decay"):
            if kind in raw:
                return self._decay(kind, raw[kind], f"{field}.{kind}")
        # anything else is a filter condition: 1.0 when it holds
        index = len(self.conditions)
        self.conditions.append(raw)
        return lambda p: 1.0 if p.conditions[index] else 0.0

    # ------------------------------------------------------------------ variables
    def _variable(self, name: str, field: str) -> Expr:
        if name.startswith("$score"):
            rest = name[len("$score") :]
            idx = 0
            if rest:
                if not (rest.startswith("[") and rest.endswith("]") and rest[1:-1].isdigit()):
                    raise BadInputError(f"{field}: unknown variable {name!r}", field)
                idx = int(rest[1:-1])
            default = self.defaults.get(name, self.defaults.get("$score", 0.0) if idx == 0 else 0.0)
            fallback = (
                float(default) if isinstance(default, int | float) and not isinstance(default, bool) else 0.0
            )

            def score(p: Point) -> float:
                value = p.scores[idx] if idx < len(p.scores) else None
                return fallback if value is None else value

            return score
        path = parse_path(name, field)

        def payload_value(p: Point) -> float:
            value = self._lookup(p, name, path, "number")
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise _type_error(name, "number", "Value is not a number")
            return float(value)

        return payload_value

    def _lookup(self, p: Point, name: str, path: Any, expected: str) -> Any:
        found = raw_values(p.payload, path)
        flat = [v for v in found for v in (v if isinstance(v, list) else [v]) if v is not None]
        if len(flat) == 1:
            return flat[0]
        if not flat:
            if name in self.defaults:
                return self.defaults[name]
            raise _type_error(name, expected, "No value found in a payload nor defaults")
        return flat

    # ------------------------------------------------------------------ compound expressions
    def _div(self, spec_raw: Any, field: str) -> Expr:
        spec = _params(spec_raw, ("left", "right"), field)
        left, right = (
            self.compile(spec["left"], f"{field}.left"),
            self.compile(spec["right"], f"{field}.right"),
        )
        by_zero = spec.get("by_zero_default")
        if by_zero is not None and (isinstance(by_zero, bool) or not isinstance(by_zero, int | float)):
            raise BadInputError(f"{field}.by_zero_default: expected a number", f"{field}.by_zero_default")

        def divide(p: Point) -> float:
            num = left(p)
            if num == 0.0:
                return 0.0
            den = right(p)
            if den == 0.0 and by_zero is not None:
                return float(by_zero)
            value = num / den if den != 0.0 else math.copysign(math.inf, num)
            return _finite(value, f"{num}/{den} = {value}")

        return divide

    def _geo(self, spec_raw: Any, field: str) -> Expr:
        spec = _params(spec_raw, ("origin", "to"), field)
        origin = geo_point(spec["origin"])
        if origin is None:
            raise BadInputError(f"{field}.origin: expected a geo point {{lat, lon}}", f"{field}.origin")
        key = spec["to"]
        path = parse_path(key, f"{field}.to")
        lat0, lon0 = origin

        def distance(p: Point) -> float:
            point = geo_point(self._lookup(p, key, path, "geo point"))
            if point is None:
                raise _type_error(key, "geo point", "Value is not a geo point")
            lat, lon = point
            return float(haversine_m(np.array([lat]), np.array([lon]), lat0, lon0)[0])

        return distance

    def _datetime_key(self, key: Any, field: str) -> Expr:
        path = parse_path(key, field)

        def seconds(p: Point) -> float:
            value = self._lookup(p, key, path, "datetime")
            if not isinstance(value, str):
                raise _type_error(key, "datetime", "Value is not a string")
            return _seconds(value, field)

        return seconds

    def _decay(self, kind: str, spec_raw: Any, field: str) -> Expr:
        spec = _params(spec_raw, ("x",), field)
        x = self.compile(spec["x"], f"{field}.x")
        target = self.compile(spec["target"], f"{field}.target") if spec.get("target") is not None else None
        midpoint = _number(spec.get("midpoint"), 0.5, f"{field}.midpoint")
        scale = _number(spec.get("scale"), 1.0, f"{field}.scale")
        if kind == "lin_decay" and not 0.0 <= midpoint <= 1.0:
            raise BadInputError(
                f"Linear decay midpoint should be in the range [0.0, 1.0], got {midpoint}.",
                f"{field}.midpoint",
            )
        if kind != "lin_decay" and not 0.0 < midpoint < 1.0:
            raise BadInputError(
                f"Decay midpoint should be in the range (0.0, 1.0), got {midpoint}.", f"{field}.midpoint"
            )
        if scale <= 0.0:
            raise BadInputError(f"Decay scale should be non-zero positive, got {scale}.", f"{field}.scale")
        if kind == "lin_decay":
            lam = (1.0 - midpoint) / scale
        elif kind == "exp_decay":
            lam = math.log(midpoint) / scale
        else:
            lam = math.log(midpoint) / scale**2

        def decay(p: Point) -> float:
            diff = x(p) - (0.0 if target is None else target(p))
            if kind == "lin_decay":
                return max(1.0 - lam * abs(diff), 0.0)
            if kind == "exp_decay":
                return math.exp(lam * abs(diff))
            return math.exp(lam * diff * diff)

        return decay


def _type_error(name: str, expected: str, why: str) -> BadInputError:
    return BadInputError(
        f"Expected {expected} value for {name} in the payload and/or in the formula defaults. Error: {why}",
        "query.formula",
    )


def _params(raw: Any, required: Sequence[str], field: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise BadInputError(f"{field}: expected an object", field)
    for key in required:
        if key not in raw:
            raise BadInputError(f"{field}.{key}: missing field", f"{field}.{key}")
    return raw


def _number(raw: Any, default: float, field: str) -> float:
    if raw is None:
        return default
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise BadInputError(f"{field}: expected a number", field)
    return float(raw)


def _seconds(text: Any, field: str) -> float:
    if not isinstance(text, str):
        raise BadInputError(f"{field}: expected a datetime string", field)
    return datetime_micros(text, field) / 1_000_000.0


def _sum(parts: list[Expr]) -> Expr:
    def total(p: Point) -> float:
        acc = 0.0
        for part in parts:
            acc += part(p)
        return acc

    return total


def _mult(parts: list[Expr]) -> Expr:
    def product(p: Point) -> float:
        acc = 1.0
        for part in parts:
            value = part(p)
            if value == 0.0:
                return 0.0
            acc *= value
        return acc

    return product


def _unary(name: str, fn: Callable[[float], float], inner: Expr) -> Expr:
    symbol = UNARY_SYMBOL.get(name)

    def apply(p: Point) -> float:
        value = inner(p)
        try:
            out = fn(value)
        except (ValueError, OverflowError):
            out = math.nan if name != "exp" else math.inf
        if symbol is not None:
            _finite(out, f"{symbol.format(value)} = {out}")
        return out

    return apply


async def formula_query(ctx: QueryContext, raw: Mapping[str, Any], pre: list[list[Hit]] | None) -> list[Hit]:
    if pre is None:
        raise BadInputError("formula queries need `prefetch`: they rescore the prefetched points", "prefetch")
    defaults = raw.get("defaults") or {}
    if not isinstance(defaults, Mapping):
        raise BadInputError("query.defaults: expected an object", "query.defaults")
    compiler = Compiler(defaults, [])
    expr = compiler.compile(raw.get("formula"), "query.formula")
    scores: dict[PointId, list[float | None]] = {}
    for i, hits in enumerate(pre):
        for h in hits:
            scores.setdefault(h.id, [None] * len(pre))[i] = h.score
    ids = list(scores)
    if not ids:
        return []
    recs = {r.id: r for r in await ctx.col.retrieve(ids, ALL_PAYLOAD, NO_VECTORS)}
    holds: list[set[PointId]] = []
    for cond in compiler.conditions:
        page = await ctx.col.scroll(
            ScrollRequest(limit=len(ids), filter={"must": [cond, {"has_id": ids}]}, with_payload=NO_PAYLOAD)
        )
        holds.append({r.id for r in page.points})
    scored: list[tuple[PointId, float]] = []
    for pid in ids:
        rec = recs.get(pid)
        if rec is None:
            continue
        point = Point(pid, scores[pid], rec.payload or {}, [pid in h for h in holds])
        value = expr(point)
        if ctx.score_threshold is not None and value < ctx.score_threshold:
            continue
        scored.append((pid, value))
    scored.sort(key=lambda kv: -kv[1])
    return await hydrate(ctx, scored[ctx.offset : ctx.offset + ctx.limit])
