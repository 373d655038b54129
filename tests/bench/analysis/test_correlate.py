"""Spearman, its p-value and CI, Pareto fronts, GFLOP/s, rank agreement: answers worked out by hand."""
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from bench.analysis import correlate
from bench.analysis.correlate import Correlation, pareto_front, spearman


def test_spearman_rho_and_exact_p_by_hand():
    # Ranks 1..5 against 2,1,4,3,5: d = -1,1,-1,1,0, sum d^2 = 4, rho = 1 - 6*4/(5*24) = 0.8.
    # Orderings of 5 with sum d^2 <= 4: identity, 4 adjacent swaps, 3 pairs of disjoint adjacent swaps = 8
    # of 120 at rho >= 0.8, and 8 mirror ones at rho <= -0.8: two-sided p = 16/120.
    c = spearman([1, 2, 3, 4, 5], [2, 1, 4, 3, 5])
    assert c.rho == pytest.approx(0.8)
    assert c.p_value == pytest.approx(16 / 120)
    assert c.n == 5


def test_perfect_rank_correlation_of_three_has_p_one_third():
    # 3! = 6 orderings; only the identity and its reverse reach |rho| = 1.
    c = spearman([1.0, 5.0, 9.0], [30.0, 20.0, 10.0])
    assert c.rho == pytest.approx(-1.0)
    assert c.p_value == pytest.approx(2 / 6)
    # Every bootstrap resample with two distinct values is perfectly decreasing too.
    assert (c.ci_low, c.ci_high) == (pytest.approx(-1.0), pytest.approx(-1.0))


def test_monotone_data_give_a_ci_of_exactly_one():
    x = np.arange(12.0)
    c = spearman(x, np.exp(x))
    assert c.rho == pytest.approx(1.0)
    assert (c.ci_low, c.ci_high) == (pytest.approx(1.0), pytest.approx(1.0))


def test_large_n_uses_scipys_t_approximation_and_ci_brackets_rho():
    rng = np.random.default_rng(1)
    x = rng.normal(size=20)
    y = x + rng.normal(scale=1.0, size=20)
    c = spearman(x, y)
    ref = sps.spearmanr(x, y)
    assert c.rho == pytest.approx(ref.statistic)
    assert c.p_value == pytest.approx(ref.pvalue)
    assert c.ci_low < c.rho < c.ci_high
    assert spearman(x, y) == c  # fixed seed: the same interval every time


def test_too_few_or_tied_values_give_no_correlation():
    assert math.isnan(spearman([1, 2], [3, 4]).rho)
    assert math.isnan(spearman([1, 2, 3], [7, 7, 7]).rho)
    c = spearman([1, 2, np.nan, 4], [1, 2, 3, np.nan])  # pairs with a missing value are dropped
    assert c.n == 2 and math.isnan(c.p_value)


def test_pareto_front_by_hand():
    # (latency, top-1): B beats A on accuracy at +1 ms; C is beaten by B; D is the most accurate;
    # E is slower and less accurate than D; F ties B's latency with less accuracy.
    lat = [1, 2, 3, 4, 5, 2]
    acc = [70, 72, 71, 75, 74, 71]
    assert pareto_front(lat, acc).tolist() == [True, True, False, True, False, False]


def test_pareto_front_skips_missing_values():
    assert pareto_front([1, np.nan, 3], [70, 80, 75]).tolist() == [True, False, True]


def test_achieved_gflops():
    # 275 M MACs in 10 ms: 2 * 275e6 / 0.010 s = 55 GFLOP/s.
    assert correlate.achieved_gflops(275.0, 10.0) == pytest.approx(55.0)


def test_rank_agreement_matrix_over_shared_models():
    wide = pd.DataFrame({"a": [1, 2, 3, 4], "b": [10, 20, 30, 40], "c": [4, 3, 2, np.nan]},
                        index=["m1", "m2", "m3", "m4"])
    rho, n = correlate.rank_agreement(wide)
    assert rho.loc["a", "b"] == pytest.approx(1.0) and n.loc["a", "b"] == 4
    assert rho.loc["a", "c"] == pytest.approx(-1.0) and n.loc["a", "c"] == 3
    assert rho.loc["c", "a"] == rho.loc["a", "c"]


def test_correlation_to_dict_turns_nan_into_none():
    assert Correlation(float("nan"), float("nan"), 2, float("nan"), float("nan")).to_dict()["rho"] is None


def test_share_of_peak_never_exceeds_100_percent():
    """A cell faster than the run's measured GEMM peak becomes the roofline itself (and says so)."""
    import pandas as pd

    from bench.analysis.correlate import gflops_frame

    cells = pd.DataFrame({
        "model": ["a", "b", "c"], "paper_name": ["A", "B", "C"], "device_label": ["cpu"] * 3,
        "device": ["cpu"] * 3, "device_key": ["k"] * 3, "threads": [2] * 3, "form": ["deploy"] * 3,
        "status": ["ok"] * 3, "source": ["measured"] * 3, "latency_ms": [1.0, 2.0, 4.0],
        "macs_m": [100.0, 100.0, 100.0], "matmul_peak_gflops": [50.0] * 3, "matmul_peak_threads": [2] * 3})
    frame = gflops_frame(cells)
    assert frame["gflops"].tolist() == pytest.approx([200.0, 100.0, 50.0])
    assert frame["pct_of_peak"].max() == pytest.approx(100.0)
    assert frame["pct_of_peak"].tolist() == pytest.approx([100.0, 50.0, 25.0])
    assert set(frame["roofline"]) == {"best cell (above the GEMM peak)"}
    slower = cells.assign(latency_ms=[10.0, 20.0, 40.0])
    assert set(gflops_frame(slower)["roofline"]) == {"GEMM peak"}
    assert gflops_frame(slower)["pct_of_peak"].tolist() == pytest.approx([40.0, 20.0, 10.0])
