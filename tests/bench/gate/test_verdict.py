"""Verdicts, exit codes, ordering and the plan's levels (bench/gate/verdict.py), on reports with known numbers."""
import math

import pytest

from bench.core.errors import UserError
from bench.gate.verdict import (
    ERROR,
    EXIT_FAIL,
    EXIT_PASS,
    EXIT_UNSTABLE,
    FAIL,
    PASS,
    SKIP,
    UNSTABLE,
    ABPlan,
    verdict,
)
from bench.stats import RatioEstimate

from gate_helpers import comparison as cell, gate_report as report


def est(ratio, low, high):
    return RatioEstimate(ratio, low, high, 0.95, "hodges-lehmann", 12)


@pytest.mark.parametrize("estimate, expected", [
    (est(1.10, 1.07, 1.12), FAIL),  # slower than 5% and surely slower
    (est(1.40, 1.10, 1.80), FAIL),  # a clear regression is FAIL even when the interval is wide
    (est(1.00, 0.99, 1.02), PASS),
    (est(1.04, 1.02, 1.06), PASS),  # surely slower, but less than the minimum effect
    (est(0.80, 0.78, 0.82), PASS),  # faster
    (est(1.00, 0.95, 1.06), UNSTABLE),  # 11% wide: a 5% regression could hide in it
    (est(1.07, 0.99, 1.15), UNSTABLE),  # above the effect but not surely slower: never a silent pass
    (est(1.00, -math.inf, math.inf), UNSTABLE),  # too few rounds to bound it
    (est(math.nan, math.nan, math.nan), UNSTABLE),
])
def test_verdict(estimate, expected):
    assert verdict(estimate, 0.05) == expected


def test_minimum_effect_moves_the_line():
    assert verdict(est(1.08, 1.06, 1.10), 0.05) == FAIL
    assert verdict(est(1.08, 1.06, 1.10), 0.10) == PASS


@pytest.mark.parametrize("verdicts, code", [
    ((PASS, PASS), EXIT_PASS),
    ((PASS, FAIL), EXIT_FAIL),
    ((PASS, UNSTABLE), EXIT_UNSTABLE),
    ((UNSTABLE, FAIL), EXIT_FAIL),
    ((PASS, ERROR), EXIT_FAIL),  # the head could not be measured: a regression, not a pass
    ((PASS, SKIP), EXIT_PASS),  # the base had no such model: nothing to regress against
])
def test_exit_codes(verdicts, code):
    assert report(*[cell(f"m{i}", v) for i, v in enumerate(verdicts)]).exit_code == code
    assert (EXIT_PASS, EXIT_FAIL, EXIT_UNSTABLE) == (0, 1, 3)


def test_advisory_cells_do_not_set_the_exit_code():
    r = report(cell("a", PASS), cell("b", FAIL, 1.3, advisory=True))
    assert r.exit_code == EXIT_PASS and r.outcome == PASS


def test_cells_sorted_worst_first():
    r = report(cell("fast", PASS, 0.9), cell("bad", FAIL, 1.3), cell("meh", UNSTABLE, 1.02), cell("err", ERROR))
    assert [c.model for c in r.sorted_cells()] == ["err", "bad", "meh", "fast"]


def test_plan_looks_and_level():
    plan = ABPlan(12, 44, 8)
    assert plan.looks == 5  # 12, 20, 28, 36, 44
    assert plan.level(0.05, 4) == pytest.approx(1 - 0.05 / 20)
    assert ABPlan(10, 10, 1).looks == 1
    with pytest.raises(UserError, match="--rounds"):
        ABPlan(12, 6, 4)
