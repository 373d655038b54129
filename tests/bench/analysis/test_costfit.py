import math

import numpy as np

from bench.analysis.costfit import fit_costs


def test_recovers_known_coefficients_on_synthetic_data():
    rng = np.random.default_rng(0)
    macs = rng.uniform(50, 5000, 30)  # M
    ops = rng.uniform(50, 400, 30)
    # 2 ms fixed, 3 ms per GMAC, 25 us per operator, a little noise
    lat = 2.0 + 3.0 * macs / 1e3 + 0.025 * ops + rng.normal(0, 0.01, 30)
    fit = fit_costs(lat, macs, ops)
    assert fit.n == 30
    assert abs(fit.a_ms - 2.0) < 0.05
    assert abs(fit.b_ms_per_gmac - 3.0) < 0.02
    assert abs(fit.c_us_per_op - 25.0) < 0.3
    assert fit.r2 > 0.999
    expected_op_share = 0.025 * ops.mean() / lat.mean()
    assert abs(fit.op_share - expected_op_share) < 0.01


def test_exact_data_is_fitted_exactly_and_missing_pairs_dropped():
    macs = np.array([100.0, 200, 400, 800, 1600, np.nan])
    ops = np.array([10.0, 50, 20, 80, 30, 40])
    lat = 1.0 + 0.5 * macs / 1e3 + 0.1 * ops
    fit = fit_costs(lat, macs, ops)
    assert fit.n == 5
    assert math.isclose(fit.a_ms, 1.0, abs_tol=1e-9)
    assert math.isclose(fit.b_ms_per_gmac, 0.5, abs_tol=1e-9)
    assert math.isclose(fit.c_us_per_op, 100.0, abs_tol=1e-6)


def test_too_few_points_give_no_fit():
    fit = fit_costs([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [1.0, 5.0, 2.0])
    assert fit.n == 3 and math.isnan(fit.a_ms)
    assert fit.to_dict()["a_ms"] is None
