"""The gate's statistics on synthetic rounds whose answers are known."""
import itertools
import math

import numpy as np
import pytest

from bench.stats import (bootstrap_center_ci, familywise_level, hodges_lehmann, paired_log_ratios, paired_ratio,
                         ratio_of_medians_ci, robust_sd, round_medians, signed_rank_cdf, suggest_min_effect,
                         summary_ratio)


def test_signed_rank_distribution_matches_enumeration():
    n = 8
    sums = [sum(k for k, bit in zip(range(1, n + 1), bits) if bit) for bits in itertools.product((0, 1), repeat=n)]
    counts = np.bincount(sums, minlength=n * (n + 1) // 2 + 1)
    assert np.allclose(signed_rank_cdf(n), np.cumsum(counts) / 2 ** n)
    # The textbook table: n = 10, P(T+ <= 8) = 25/1024, the two-sided 5% critical value.
    assert signed_rank_cdf(10)[8] == pytest.approx(25 / 1024)
    assert signed_rank_cdf(10)[9] > 0.025


def test_normal_approximation_takes_over_for_large_n():
    cdf = signed_rank_cdf(500)
    assert cdf[-1] == pytest.approx(1.0) and cdf[len(cdf) // 2] == pytest.approx(0.5, abs=0.01)


def test_hodges_lehmann_known_answer():
    x = np.arange(10.0)  # Walsh averages of 0..9, sorted; n = 10 cuts 8 from each end at 95%
    i, j = np.triu_indices(10)
    walsh = np.sort((x[i] + x[j]) / 2)
    est, lo, hi = hodges_lehmann(x, 0.95)
    assert est == 4.5 and lo == walsh[8] and hi == walsh[len(walsh) - 9]


def test_hodges_lehmann_cannot_bound_five_values_at_95():
    est, lo, hi = hodges_lehmann([0.1, 0.2, 0.3, 0.4, 0.5], 0.95)
    assert est == pytest.approx(0.3) and lo == -math.inf and hi == math.inf
    assert math.isfinite(hodges_lehmann(np.arange(6.0), 0.95)[1])  # six values can (P(T+ = 0) = 1/64)


@pytest.mark.parametrize("noise", ["normal", "t3"])
def test_hodges_lehmann_interval_covers_the_true_ratio(noise):
    rng = np.random.default_rng(7)
    truth, hits, trials = math.log(1.07), 0, 600
    for _ in range(trials):
        e = rng.normal(0, 0.03, 12) if noise == "normal" else 0.02 * rng.standard_t(3, 12)
        est = paired_ratio(truth + e, 0.95)
        hits += est.low <= 1.07 <= est.high
    assert 0.93 <= hits / trials <= 0.99


def test_paired_ratio_of_a_constant_slowdown_is_exact():
    est = paired_ratio(np.full(12, math.log(1.1)), 0.95)
    assert est.ratio == pytest.approx(1.1) and est.low == pytest.approx(1.1) and est.high == pytest.approx(1.1)
    assert est.width == pytest.approx(0.0, abs=1e-12) and est.n == 12


def test_bootstrap_option_of_the_paired_ratio():
    rng = np.random.default_rng(3)
    est = paired_ratio(math.log(1.2) + rng.normal(0, 0.02, 30), 0.95, "bootstrap")
    assert est.method == "bootstrap" and est.low < 1.2 < est.high and est.width < 0.05
    with pytest.raises(ValueError, match="unknown CI method"):
        paired_ratio([0.0, 0.1], 0.95, "magic")
    assert bootstrap_center_ci([0.1], 0.95)[1] == -math.inf


def test_round_medians_and_paired_log_ratios():
    base = [[1.0, 2.0, 3.0], [2.0, 2.0, 9.0]]
    head = [[2.0, 4.0, 6.0], [1.0, 1.0, 1.0]]
    assert list(round_medians(base)) == [2.0, 2.0]
    assert np.allclose(paired_log_ratios(base, head), [math.log(2), math.log(0.5)])
    with pytest.raises(ValueError, match="differ in number"):
        paired_log_ratios(base, head[:1])


def test_ratio_of_medians_known_answer_and_coverage():
    r, lo, hi = ratio_of_medians_ci([10.0] * 8, [12.0] * 8)
    assert (r, lo, hi) == pytest.approx((1.2, 1.2, 1.2))
    rng = np.random.default_rng(11)
    hits, trials = 0, 300
    for _ in range(trials):
        b = np.exp(rng.normal(0, 0.03, 10))
        n = 1.1 * np.exp(rng.normal(0, 0.03, 10))
        _, lo, hi = ratio_of_medians_ci(b, n, 0.95, seed=int(rng.integers(1 << 30)))
        hits += lo <= 1.1 <= hi
    assert 0.92 <= hits / trials <= 1.0


def test_summary_ratio_combines_both_intervals():
    base = {"latency_ms": 10.0, "ci_low_ms": 9.5, "ci_high_ms": 10.5}
    new = {"latency_ms": 12.0, "ci_low_ms": 11.4, "ci_high_ms": 12.6}
    est = summary_ratio(base, new, 0.95)
    assert est.ratio == pytest.approx(1.2) and est.low < 1.2 < est.high
    half = math.log(est.high / est.ratio)  # each side +-5% -> combined ~ sqrt(2) x 5%
    assert half == pytest.approx(math.hypot(math.log(10.5 / 9.5) / 2, math.log(12.6 / 11.4) / 2), rel=1e-6)
    assert summary_ratio(base, {"latency_ms": 12.0, "ci_low_ms": None, "ci_high_ms": None}) is None


def test_familywise_level_is_bonferroni():
    assert familywise_level(0.05, 4) == pytest.approx(0.9875)
    assert familywise_level(0.05, 0) == pytest.approx(0.95)
    with pytest.raises(ValueError):
        familywise_level(1.5, 3)


def test_robust_sd_and_suggested_effect():
    x = np.random.default_rng(0).normal(0, 0.02, 4000)
    assert robust_sd(np.append(x, [5.0] * 20)) == pytest.approx(0.02, rel=0.08)  # outliers do not move it
    assert suggest_min_effect([0.03], [1.01]) == pytest.approx(0.04)  # 1.25 x 3% = 3.75% -> 4%
    assert suggest_min_effect([0.01], [1.03]) == pytest.approx(0.06)  # twice the A/A offset
    assert suggest_min_effect([0.001], [1.0]) == pytest.approx(0.02)  # the floor
    assert suggest_min_effect([math.inf, 0.02], [1.0]) == pytest.approx(0.025)
