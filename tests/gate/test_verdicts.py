"""Verdicts, exit codes and the Markdown summary, on reports with known numbers."""
import math

import pytest

from bench.compare import (ERROR, EXIT_FAIL, EXIT_PASS, EXIT_UNSTABLE, FAIL, PASS, SKIP, UNSTABLE, ABPlan,
                           CellComparison, Effects, GateReport, load_effects, to_markdown, verdict)
from bench.core.errors import UserError
from bench.stats import RatioEstimate


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


def cell(model, v, ratio=1.0, advisory=False, note=""):
    return CellComparison(model, "cpu", "onnxruntime", "deploy", 1, v, base_ms=10.0, head_ms=10.0 * ratio,
                          ratio=ratio, ci_low=ratio - 0.01, ci_high=ratio + 0.01, level=0.9875, advisory=advisory,
                          note=note)


def report(*cells):
    return GateReport("ab", "rev aaaa", "rev bbbb", tuple(cells), 0.05, "Bonferroni", "Test CPU, 1 thread(s)")


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


def test_markdown_summary():
    r = report(cell("mobileone_s0", PASS, 1.001), cell("mobileone_s1", FAIL, 1.25, note="a|b"),
               cell("mobilenetv2_100", UNSTABLE, 1.03), cell("mobileone_s2", FAIL, 1.4, advisory=True))
    md = to_markdown(r)
    lines = md.splitlines()
    assert lines[0].startswith("### Latency gate (ab): ❌ **FAIL**: 1 of 3 cells slower than allowed")
    rows = [ln for ln in lines if ln.startswith("| ") and "`" in ln]
    assert [row.split("`")[1] for row in rows] == ["mobileone_s2", "mobileone_s1", "mobilenetv2_100", "mobileone_s0"]
    assert "FAIL (advisory)" in rows[0]
    assert "**1.250**" in rows[1] and "1.240 – 1.260" in rows[1] and "a\\|b" in rows[1]
    header = next(ln for ln in lines if ln.startswith("| verdict"))
    assert header.count("|") == rows[1].count("|") - 1  # the escaped pipe is not a column
    assert "98.75%" in header and "- base: rev aaaa" in md and "Test CPU" in md


def test_markdown_headlines():
    assert "✅ **PASS**: no regression in 1 cells" in to_markdown(report(cell("a", PASS)))
    assert "⚠️ **UNSTABLE**: 1 of 2 cells" in to_markdown(report(cell("a", PASS), cell("b", UNSTABLE)))


def test_plan_looks_and_level():
    plan = ABPlan(12, 44, 8)
    assert plan.looks == 5  # 12, 20, 28, 36, 44
    assert plan.level(0.05, 4) == pytest.approx(1 - 0.05 / 20)
    assert ABPlan(10, 10, 1).looks == 1
    with pytest.raises(UserError, match="--rounds"):
        ABPlan(12, 6, 4)


def test_effects_file(tmp_path):
    p = tmp_path / "effects.json"
    p.write_text('{"kind": "mobileone-bench/effects", "effects": {"mobileone_s0": 0.03}}')
    e = load_effects(str(p), 0.07)
    assert e.of("mobileone_s0") == 0.03 and e.of("mobileone_s1") == 0.07
    p.write_text('{"mobileone_s0": 0.04}')
    assert load_effects(str(p), None).of("mobileone_s0") == 0.04
    assert load_effects(None, None) == Effects()
    p.write_text('{"effects": {"mobileone_s0": 3}}')
    with pytest.raises(UserError, match="between 0 and 1"):
        load_effects(str(p), None)
    with pytest.raises(UserError, match="bench calibrate"):
        load_effects(str(tmp_path / "missing.json"), None)
