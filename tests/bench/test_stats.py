"""Statistics on samples whose answers are known by hand."""
import math

import numpy as np
import pytest

from bench.stats import (
    cluster_bootstrap_ci,
    cluster_bootstrap_median_ci,
    early_stopping_percentile,
    median_ci_order_stat,
    min_samples_for_early_stopping,
    summarize,
    trimmed_round_means,
)


def test_summary_of_known_samples():
    s = summarize([[1.0, 2.0, 3.0], [4.0, 5.0]])
    assert (s.median_ms, s.mean_ms, s.min_ms, s.max_ms, s.count, s.rounds) == (3.0, 3.0, 1.0, 5.0, 5, 2)
    assert s.std_ms == pytest.approx(np.std([1, 2, 3, 4, 5], ddof=1))
    assert s.p90_ms == pytest.approx(4.6)
    assert s.latency_ms == s.median_ms


def test_min_statistic():
    assert summarize([[5.0, 3.0], [4.0]], "min").latency_ms == 3.0


def test_trimmed_round_means():
    r = [np.arange(1, 51, dtype=float)]
    assert trimmed_round_means(r, 10, 10)[0] == pytest.approx(np.arange(11, 41).mean())
    with pytest.raises(ValueError):
        trimmed_round_means([np.arange(5.0)], 3, 3)


def test_order_statistic_ci_covers_the_median():
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(400):
        x = rng.exponential(1.0, 101)
        lo, hi = median_ci_order_stat(x)
        hits += lo <= np.log(2) <= hi
    assert 0.92 <= hits / 400 <= 0.99


def test_ci_from_rounds_reflects_between_round_noise():
    steady = [np.full(50, 10.0) + np.random.default_rng(i).normal(0, 0.01, 50) for i in range(5)]
    shifted = [np.full(50, lvl) for lvl in (8.0, 10.0, 12.0, 9.0, 11.0)]
    assert summarize(steady).ci_rel_halfwidth < 0.002
    assert summarize(shifted).ci_rel_halfwidth > 0.05


def test_early_stopping_p90():
    # With 64 samples 1..64, a 99% upper bound on p90 needs a high order statistic, above the plain p90.
    x = np.arange(1, 65, dtype=float)
    est = early_stopping_percentile(x)
    assert est > np.quantile(x, 0.9) and est <= 64
    n = min_samples_for_early_stopping()
    assert 40 <= n <= 64  # MLPerf documents 64 as the minimum query count for its early-stopping p90
    with pytest.raises(ValueError, match="too few"):
        early_stopping_percentile(np.arange(10.0))


@pytest.mark.parametrize("per_round,rounds", [(1, 3), (2, 4), (7, 5), (50, 12), (300, 30)])
def test_fast_median_bootstrap_equals_the_plain_one(per_round, rounds):
    # Uneven round lengths, ties (values rounded to 1 us) and both odd and even pooled lengths.
    rng = np.random.default_rng(per_round * 100 + rounds)
    data = [np.round(rng.lognormal(0, 0.05, per_round + int(rng.integers(0, 3))), 3) for _ in range(rounds)]
    plain = cluster_bootstrap_ci(data, np.median)
    assert cluster_bootstrap_median_ci(data) == pytest.approx(plain, abs=1e-12)
    assert cluster_bootstrap_median_ci(data, max_table=0) == pytest.approx(plain, abs=1e-12)  # untabulated path


def test_fast_median_bootstrap_reflects_between_round_noise():
    steady = [np.full(20, 1.0) + 0.001 * np.arange(20) for _ in range(6)]
    shifted = [r * (1 + 0.1 * (i % 2)) for i, r in enumerate(steady)]
    lo_s, hi_s = cluster_bootstrap_median_ci(steady)
    lo_d, hi_d = cluster_bootstrap_median_ci(shifted)
    assert hi_s - lo_s < 0.02 < hi_d - lo_d


def _rounds(medians, sd=0.005, seed=0):
    rng = np.random.default_rng(seed)
    return [list(m * np.exp(rng.normal(0, sd, 15))) for m in medians]


def test_round_stability_on_known_answers():
    from bench.stats import round_stability

    steady = round_stability(_rounds([10.0] * 12))
    assert steady.stable and steady.kind == ""
    drift = round_stability(_rounds([10.0 * (1 + 0.02 * i) for i in range(12)]))  # +22% over the cell
    assert drift.kind == "drift" and drift.evidence.startswith("+19.") and "Kendall" in drift.evidence
    levels = round_stability(_rounds([10.0, 12.0, 10.0, 12.0, 10.0, 12.0, 10.0, 12.0]))  # alternating levels
    assert levels.kind == "bimodal" and "(4 rounds)" in levels.evidence
    assert round_stability(_rounds([10.0, 12.0] * 2)).stable  # too few rounds to tell
    small = round_stability(_rounds([10.0 * (1 + 0.002 * i) for i in range(12)]))  # a real but tiny trend
    assert small.stable  # below the 5% that matters


def test_unstable_rounds_are_flagged_by_the_loop():
    from bench.core.protocol import Protocol
    from bench.core.runner import TimedRound
    from bench.measure import measure

    class Drifting:
        def __init__(self):
            self.i = 0

        def warm_up(self, p):
            return 0, 0.0

        def time_round(self, p):
            self.i += 1
            return TimedRound(tuple([10.0 * (1 + 0.03 * self.i)] * 5), measured_s=0.05)

    p = Protocol("t", min_rounds=8, max_rounds=8, target_rel_ci=None)
    m = measure(Drifting(), p)
    assert any(f.startswith("unstable:drift") for f in m.flags)


def test_the_reported_interval_adds_the_run_to_run_spread_in_quadrature():
    from bench.stats import Summary, widen_for_runs

    s = Summary("median", 10.0, 10.0, 11.0, 10.1, 0.5, 9.0, 12.0, ci_low_ms=9.97, ci_high_ms=10.04, count=100,
                rounds=10)
    assert widen_for_runs(s, 0.0) is s  # no spread declared: the rounds' own interval
    w = widen_for_runs(s, 0.02)
    extra = 1.959964 * 0.02 * 10.0  # 0.392 ms
    assert w.ci_low_ms == pytest.approx(10.0 - math.hypot(0.03, extra), rel=1e-5)
    assert w.ci_high_ms == pytest.approx(10.0 + math.hypot(0.04, extra), rel=1e-5)
    assert (w.within_low_ms, w.within_high_ms) == (9.97, 10.04)
    assert w.within_rel_halfwidth == pytest.approx(s.ci_rel_halfwidth)
    assert w.ci_rel_halfwidth > 0.0195  # at least the spread's own 1.96 sd
    d = w.to_dict()
    assert d["within_low_ms"] == 9.97 and "within_low_ms" not in s.to_dict()
