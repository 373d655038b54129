"""Pure statistics over latency samples: summaries, confidence intervals, trimmed means, early-stopping p90.

No I/O, no clocks: everything here is a function of arrays, so it is tested on known answers.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats as sps

BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 20220614  # fixed: the same samples always give the same interval


@dataclass(frozen=True)
class Summary:
    """What a cell reports. `latency_ms` is the protocol's statistic (median, min, trimmed mean or p90)."""

    statistic: str
    latency_ms: float
    median_ms: float
    p90_ms: float
    mean_ms: float
    std_ms: float
    min_ms: float
    max_ms: float
    ci_low_ms: float
    ci_high_ms: float
    count: int
    rounds: int

    @property
    def ci_rel_halfwidth(self) -> float:
        return (self.ci_high_ms - self.ci_low_ms) / 2 / self.latency_ms if self.latency_ms else math.inf

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ci_rel_halfwidth"] = self.ci_rel_halfwidth
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Summary":
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


def median_ci_order_stat(samples: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Distribution-free CI of the median of iid samples from binomial order statistics."""
    x = np.sort(np.asarray(samples, dtype=float))
    n = len(x)
    if n < 6:
        return float(x[0]), float(x[-1])
    lo = int(sps.binom.ppf((1 - level) / 2, n, 0.5))
    hi = int(sps.binom.isf((1 - level) / 2, n, 0.5))
    return float(x[max(lo - 1, 0)]), float(x[min(hi, n - 1)])


def cluster_bootstrap_ci(rounds: list[np.ndarray], stat, level: float = 0.95,
                         resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> tuple[float, float]:
    """Percentile CI of stat(pooled samples), resampling whole rounds: rounds are the unit of replication,
    samples within a round are not independent (same session, same cache and frequency state)."""
    rng = np.random.default_rng(seed)
    k = len(rounds)
    values = np.empty(resamples)
    for i in range(resamples):
        pick = rng.integers(0, k, size=k)
        values[i] = stat(np.concatenate([rounds[j] for j in pick]))
    alpha = (1 - level) / 2
    return float(np.quantile(values, alpha)), float(np.quantile(values, 1 - alpha))


def latency_ci(rounds: list[np.ndarray], stat, level: float = 0.95) -> tuple[float, float]:
    """CI of a pooled statistic: cluster bootstrap over rounds when there are enough of them; with fewer
    than 3 rounds, the order-statistic CI of the median (which assumes independent samples, so is narrower)."""
    if len(rounds) >= 3:
        return cluster_bootstrap_ci(rounds, stat, level)
    return median_ci_order_stat(np.concatenate(rounds), level)


def trimmed_round_means(rounds: list[np.ndarray], trim_low: int, trim_high: int) -> np.ndarray:
    """Per round, the mean after dropping the `trim_low` lowest and `trim_high` highest samples (ModelBench)."""
    out = []
    for r in rounds:
        s = np.sort(np.asarray(r, dtype=float))
        kept = s[trim_low:len(s) - trim_high] if trim_high else s[trim_low:]
        if len(kept) == 0:
            raise ValueError(f"a round of {len(s)} samples cannot drop {trim_low}+{trim_high}")
        out.append(kept.mean())
    return np.array(out)


def early_stopping_percentile(samples: np.ndarray, percentile: float = 0.90, confidence: float = 0.99) -> float:
    """MLPerf loadgen's early-stopping estimate: the smallest order statistic that is, with `confidence`,
    an upper bound on the true `percentile` latency. x_(k) >= q_p  iff  fewer than k samples fall at or
    below q_p, so we need P(Binomial(n, p) <= k - 1) >= confidence."""
    x = np.sort(np.asarray(samples, dtype=float))
    n = len(x)
    k = int(sps.binom.ppf(confidence, n, percentile)) + 1  # smallest k with CDF(k-1) >= confidence
    if k > n:
        raise ValueError(f"{n} samples are too few for a {confidence:.0%} bound on p{percentile * 100:.0f}")
    return float(x[k - 1])


def min_samples_for_early_stopping(percentile: float = 0.90, confidence: float = 0.99) -> int:
    n = 1
    while int(sps.binom.ppf(confidence, n, percentile)) + 1 > n:
        n += 1
    return n


STATISTICS = ("median", "min", "trimmed_mean", "p90_early_stop")


def summarize(rounds: list[list[float]] | list[np.ndarray], statistic: str = "median", trim: int = 0,
              level: float = 0.95) -> Summary:
    """Summary of samples kept by round. For 'trimmed_mean', latency = mean of per-round trimmed means."""
    arrs = [np.asarray(r, dtype=float) for r in rounds if len(r)]
    if not arrs:
        raise ValueError("no samples to summarize")
    pooled = np.concatenate(arrs)
    if statistic == "median":
        latency = float(np.median(pooled))
        lo, hi = latency_ci(arrs, np.median, level)
    elif statistic == "min":
        latency = float(pooled.min())
        lo, hi = latency_ci(arrs, np.median, level)  # the minimum has no useful CI; report the median's
    elif statistic == "trimmed_mean":
        means = trimmed_round_means(arrs, trim, trim)
        latency = float(means.mean())
        if len(means) >= 2:
            half = sps.t.ppf(0.5 + level / 2, len(means) - 1) * means.std(ddof=1) / math.sqrt(len(means))
            lo, hi = latency - half, latency + half
        else:
            lo, hi = latency, latency
    elif statistic == "p90_early_stop":
        latency = early_stopping_percentile(pooled)
        lo, hi = float(np.quantile(pooled, 0.9)), latency
    else:
        raise ValueError(f"unknown statistic {statistic!r}; one of {', '.join(STATISTICS)}")
    return Summary(
        statistic=statistic, latency_ms=latency, median_ms=float(np.median(pooled)),
        p90_ms=float(np.quantile(pooled, 0.9)), mean_ms=float(pooled.mean()),
        std_ms=float(pooled.std(ddof=1)) if len(pooled) > 1 else 0.0, min_ms=float(pooled.min()),
        max_ms=float(pooled.max()), ci_low_ms=float(lo), ci_high_ms=float(hi), count=int(len(pooled)),
        rounds=len(arrs))
