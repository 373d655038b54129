"""Pure: a latency model with a fixed, a compute and a per-operator cost, fitted by least squares.

latency = a + b * MACs + c * operators. Which of the three terms carries a column's latencies tells what kind of
machine (or runtime setting) produced it: a per-operator cost that dominates points at dispatch or
synchronization overhead (a many-core CPU waking its threads for every operator), a MACs term at compute.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

NAN = float("nan")


@dataclass(frozen=True)
class CostFit:
    a_ms: float  # fixed cost per inference
    b_ms_per_gmac: float  # compute cost, per 10^9 multiply-accumulates
    c_us_per_op: float  # cost per operator (graph node), microseconds
    r2: float  # coefficient of determination of the fit on its own points
    n: int
    op_share: float  # share of the mean latency the per-operator term accounts for (c * mean ops / mean latency)
    mac_share: float  # the same for the compute term

    def to_dict(self) -> dict:
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(self).items()}


def fit_costs(latency_ms, macs_m, operators) -> CostFit:
    """Least squares of latency (ms) on [1, MACs, operators]; pairs with a missing value are dropped. Fewer
    points than four (three unknowns and one degree of freedom) give no fit (NaN)."""
    y = np.asarray(latency_ms, float)
    macs = np.asarray(macs_m, float)
    ops = np.asarray(operators, float)
    keep = np.isfinite(y) & np.isfinite(macs) & np.isfinite(ops)
    y, macs, ops = y[keep], macs[keep], ops[keep]
    n = int(len(y))
    if n < 4:
        return CostFit(NAN, NAN, NAN, NAN, n, NAN, NAN)
    # MACs in G and operators in thousands keep the columns of similar size, so lstsq is well conditioned.
    x = np.column_stack([np.ones(n), macs / 1e3, ops / 1e3])
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    pred = x @ coef
    ss_res = float(((y - pred) ** 2).sum())
    ss_tot = float(((y - y.mean()) ** 2).sum())
    r2 = 1 - ss_res / ss_tot if ss_tot > 0 else NAN
    mean_y = float(y.mean())
    op_share = float(coef[2] * (ops / 1e3).mean() / mean_y) if mean_y > 0 else NAN
    mac_share = float(coef[1] * (macs / 1e3).mean() / mean_y) if mean_y > 0 else NAN
    # coef[2] is ms per thousand operators, which is microseconds per operator.
    return CostFit(float(coef[0]), float(coef[1]), float(coef[2]), r2, n, op_share, mac_share)
