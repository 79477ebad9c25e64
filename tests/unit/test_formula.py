"""Formula expressions (pure): arithmetic, variables with defaults, decays, errors."""

from __future__ import annotations

import math

import pytest

from qcluster.collection.query.formula import Compiler, Point
from qcluster.errors import BadInputError


def run(
    formula: object, payload: dict | None = None, scores: list | None = None, **defaults: object
) -> float:
    c = Compiler(defaults, [])
    expr = c.compile(formula, "query.formula")
    return expr(Point(1, scores if scores is not None else [0.5], payload or {}, [True] * len(c.conditions)))


def test_arithmetic_and_variables() -> None:
    assert run({"sum": [{"mult": ["$score", 0.4]}, {"mult": ["price", 0.6]}]}, {"price": 2}) == pytest.approx(
        1.4
    )
    assert run({"div": {"left": "price", "right": {"sum": [1.0, {"abs": "price"}]}}}, {"price": -3}) == -0.75
    assert run("$score[1]", scores=[0.1, None]) == 0.0  # not found by that prefetch: default 0
    assert run("price", {}, price=7) == 7.0  # the default stands in for a missing value
    assert run("price", {"price": None}, price=1) == 1.0
    assert run({"pow": {"base": 2, "exponent": 10}}) == 1024
    assert run({"key": "city", "match": {"value": "x"}}) == 1.0  # a condition that holds
    assert run({"div": {"left": 1, "right": 0, "by_zero_default": 5}}) == 5


def test_decays() -> None:
    # midpoint at |x - target| == scale
    assert run({"lin_decay": {"x": 3, "target": 1, "scale": 2, "midpoint": 0.3}}) == pytest.approx(0.3)
    assert run({"exp_decay": {"x": 2, "scale": 2}}) == pytest.approx(0.5)
    assert run({"gauss_decay": {"x": -1, "midpoint": 0.25}}) == pytest.approx(0.25)
    assert run({"datetime": "1970-01-01T00:01:00Z"}) == 60.0


def test_errors_name_the_problem() -> None:
    with pytest.raises(BadInputError, match="No value found in a payload nor defaults"):
        run("price", {})
    with pytest.raises(BadInputError, match="Value is not a number"):
        run("price", {"price": "abc"})
    with pytest.raises(BadInputError, match="non-finite"):
        run({"sqrt": -1})
    with pytest.raises(BadInputError, match="non-finite"):
        run({"div": {"left": 1, "right": 0}})
    with pytest.raises(BadInputError, match="midpoint"):
        run({"exp_decay": {"x": 1, "midpoint": 1.5}})
    assert math.isfinite(run({"ln": 1}))
