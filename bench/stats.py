"""Pure statistics over latency samples: summaries, confidence intervals, trimmed means, early-stopping p90.

No I/O, no clocks: everything here is a function of arrays, so it is tested on known answers.
"""
from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass, replace

import numpy as np
from scipy import stats as sps

from bench.core.protocol import STATISTICS  # the protocol names them; this module computes them

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
    # The interval of this run's rounds alone, where the reported one is widened for run-to-run spread.
    within_low_ms: float | None = None
    within_high_ms: float | None = None

    @property
    def ci_rel_halfwidth(self) -> float:
        return (self.ci_high_ms - self.ci_low_ms) / 2 / self.latency_ms if self.latency_ms else math.inf

    @property
    def within_rel_halfwidth(self) -> float:
        """The half-width of the rounds' own interval: what more rounds can shrink."""
        if self.within_low_ms is None or self.within_high_ms is None:
            return self.ci_rel_halfwidth
        return (self.within_high_ms - self.within_low_ms) / 2 / self.latency_ms if self.latency_ms else math.inf

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ci_rel_halfwidth"] = self.ci_rel_halfwidth
        if self.within_low_ms is None:
            del d["within_low_ms"], d["within_high_ms"]
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


def cluster_bootstrap_median_ci(rounds: list[np.ndarray], level: float = 0.95,
                                resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED,
                                max_table: int = 8_000_000) -> tuple[float, float]:
    """The same interval as cluster_bootstrap_ci(rounds, np.median), computed without building any
    resampled array. The stopping rule recomputes it after every round, and the plain loop cost 0.1-1 s a
    time (2,000 concatenations of up to 30,000 samples), dead time between rounds that made cells slower.

    A resample is a count per round (how often it was drawn). Its rank function at a pooled value (how
    many of its samples are <= it) is the count-weighted sum of each round's rank there; its r-th order
    statistic is the smallest pooled value where that reaches r, found by a bisection over the pooled
    sorted values, for all resamples at once. Each round's rank at every pooled value is tabulated (rounds
    x samples, int32) while that table has at most `max_table` entries (32 MB); beyond, it is looked up by
    searchsorted at each bisection step (2-3x slower, memory resamples x rounds). np.median's even-length
    average is the mean of the two middle order statistics."""
    arrs = [np.asarray(r, dtype=float) for r in rounds]
    k = len(arrs)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, k, size=(resamples, k))  # the same draws, in order, as cluster_bootstrap_ci's
    counts = np.zeros((resamples, k), dtype=np.int64)
    np.add.at(counts, (np.repeat(np.arange(resamples), k), picks.ravel()), 1)
    sorted_rounds = [np.sort(a) for a in arrs]
    x = np.sort(np.concatenate(arrs))
    n = counts @ np.array([len(a) for a in arrs])
    if k * len(x) <= max_table:
        table = np.stack([np.searchsorted(srt, x, side="right").astype(np.int32) for srt in sorted_rounds])

        def rank_at(mid: np.ndarray) -> np.ndarray:  # per resample: how many of its samples are <= x[mid]
            return (counts * table[:, mid].T).sum(axis=1)
    else:
        def rank_at(mid: np.ndarray) -> np.ndarray:
            total = np.zeros(resamples, dtype=np.int64)
            for j, srt in enumerate(sorted_rounds):
                total += counts[:, j] * np.searchsorted(srt, x[mid], side="right")
            return total

    def order_stat(rank: np.ndarray) -> np.ndarray:  # the rank-th smallest (1-based) of each resample
        lo = np.zeros(resamples, dtype=np.int64)
        hi = np.full(resamples, len(x) - 1, dtype=np.int64)
        while np.any(lo < hi):
            mid = (lo + hi) // 2
            reached = rank_at(mid) >= rank
            hi = np.where(reached, mid, hi)
            lo = np.where(reached, lo, mid + 1)
        return x[lo]

    values = (order_stat((n + 1) // 2) + order_stat(n // 2 + 1)) / 2
    alpha = (1 - level) / 2
    return float(np.quantile(values, alpha)), float(np.quantile(values, 1 - alpha))


def latency_ci(rounds: list[np.ndarray], stat, level: float = 0.95) -> tuple[float, float]:
    """CI of a pooled statistic: cluster bootstrap over rounds when there are enough of them; with fewer
    than 3 rounds, the order-statistic CI of the median (which assumes independent samples, so is narrower)."""
    if len(rounds) >= 3:
        if stat is np.median:
            return cluster_bootstrap_median_ci(rounds, level)
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


def widen_for_runs(s: Summary, between_runs_rel: float, level: float = 0.95) -> Summary:
    """The interval a run can honestly report: its rounds' interval with the run-to-run spread it cannot see
    (relative sd `between_runs_rel`) added in quadrature on each side. The rounds' own interval is kept as
    `within` (what the stopping rule and the precision flag judge)."""
    if between_runs_rel <= 0:
        return s
    extra = sps.norm.ppf(0.5 + level / 2) * between_runs_rel * s.latency_ms
    low = s.latency_ms - math.hypot(max(0.0, s.latency_ms - s.ci_low_ms), extra)
    high = s.latency_ms + math.hypot(max(0.0, s.ci_high_ms - s.latency_ms), extra)
    return replace(s, ci_low_ms=max(0.0, low), ci_high_ms=high, within_low_ms=s.ci_low_ms,
                   within_high_ms=s.ci_high_ms)


# --- The regression gate (bench ab, bench compare, bench calibrate) --------------------------------------
# Ratios are head / base (above 1 = slower) and are handled as logs, where a slowdown and the matching
# speedup are symmetric and per-round noise is closer to additive.

EXACT_SIGNED_RANK_MAX_N = 400  # beyond this the null distribution is taken as normal (and the exact DP grows as n^3)


@dataclass(frozen=True)
class RatioEstimate:
    """A head/base latency ratio with its confidence interval; low/high are -inf/inf when the data cannot
    bound it at this level (too few rounds)."""

    ratio: float
    low: float
    high: float
    level: float
    method: str  # "hodges-lehmann" | "bootstrap" | "bootstrap-medians" | "summary-ci"
    n: int  # paired rounds, or the smaller side's rounds

    @property
    def width(self) -> float:
        """Full width of the interval on the ratio scale (inf when unbounded)."""
        return self.high - self.low


def round_medians(rounds: list[list[float]] | list[np.ndarray]) -> np.ndarray:
    """The median of each non-empty round: the unit of replication of every gate statistic."""
    return np.array([float(np.median(r)) for r in rounds if len(r)])


def paired_log_ratios(base_rounds: list, head_rounds: list) -> np.ndarray:
    """Per pair of rounds, log(median(head round) / median(base round))."""
    b, h = round_medians(base_rounds), round_medians(head_rounds)
    if len(b) != len(h):
        raise ValueError(f"paired rounds differ in number: {len(b)} base vs {len(h)} head")
    return np.log(h) - np.log(b)


@functools.lru_cache(maxsize=256)
def signed_rank_cdf(n: int) -> np.ndarray:
    """P(T+ <= t), t = 0..n(n+1)/2, of the Wilcoxon signed-rank statistic under the null (n values
    symmetric about 0, no ties): each rank k joins the positive set with probability 1/2, so the
    distribution of T+ is the convolution of n two-point laws, built one rank at a time."""
    total = n * (n + 1) // 2
    if n > EXACT_SIGNED_RANK_MAX_N:
        t = np.arange(total + 1)
        sd = math.sqrt(n * (n + 1) * (2 * n + 1) / 24)
        cdf = sps.norm.cdf((t + 0.5 - total / 2) / sd)  # with continuity correction
        cdf.flags.writeable = False
        return cdf
    p = np.zeros(total + 1)
    p[0] = 1.0
    for k in range(1, n + 1):
        shifted = np.zeros_like(p)
        shifted[k:] = p[:-k]
        p = (p + shifted) / 2
    cdf = np.minimum(np.cumsum(p), 1.0)
    cdf.flags.writeable = False  # cached and shared between callers
    return cdf


def hodges_lehmann(x, level: float = 0.95) -> tuple[float, float, float]:
    """One-sample Hodges-Lehmann estimate of the centre of `x` (median of the Walsh averages (x_i + x_j)/2,
    i <= j) and its distribution-free CI: the Walsh averages of rank k and M + 1 - k, with k the largest
    count whose signed-rank tail P(T+ <= k - 1) is at most (1 - level)/2 (Hollander & Wolfe, ch. 3).
    Exact for any continuous distribution symmetric about its centre; (-inf, inf) when n is too small for
    the level (n < 6 at 95%)."""
    x = np.asarray(x, dtype=float)
    n = len(x)
    if n == 0:
        raise ValueError("no values: the Hodges-Lehmann estimate needs at least one")
    i, j = np.triu_indices(n)
    walsh = np.sort((x[i] + x[j]) / 2)
    estimate = float(np.median(walsh))
    k = int(np.searchsorted(signed_rank_cdf(n), (1 - level) / 2 + 1e-12, side="right"))
    if k == 0:
        return estimate, -math.inf, math.inf
    return estimate, float(walsh[k - 1]), float(walsh[len(walsh) - k])


def _resamples_for(level: float) -> int:
    # A percentile interval needs enough resamples in each tail: at least ~25 beyond each bound.
    return max(BOOTSTRAP_RESAMPLES, int(math.ceil(50 / (1 - level))))


def bootstrap_center_ci(x, level: float = 0.95, stat=np.median,
                        seed: int = BOOTSTRAP_SEED) -> tuple[float, float, float]:
    """Percentile bootstrap CI of stat(x) (x: per-round log ratios), resampling rounds."""
    x = np.asarray(x, dtype=float)
    n = len(x)
    if n < 2:
        return float(stat(x)) if n else math.nan, -math.inf, math.inf
    rng = np.random.default_rng(seed)
    draws = stat(x[rng.integers(0, n, size=(_resamples_for(level), n))], axis=1)
    a = (1 - level) / 2
    return float(stat(x)), float(np.quantile(draws, a)), float(np.quantile(draws, 1 - a))


def ratio_of_medians_ci(base, new, level: float = 0.95, seed: int = BOOTSTRAP_SEED) -> tuple[float, float, float]:
    """median(new) / median(base) of two independent sets of per-round medians, with a percentile
    bootstrap CI that resamples each set's rounds on its own (stored runs measured at different times
    have no pairing)."""
    b, h = np.asarray(base, dtype=float), np.asarray(new, dtype=float)
    if len(b) == 0 or len(h) == 0:
        raise ValueError("both sides need at least one round")
    ratio = float(np.median(h) / np.median(b))
    rng = np.random.default_rng(seed)
    reps = _resamples_for(level)
    mb = np.median(b[rng.integers(0, len(b), size=(reps, len(b)))], axis=1)
    mh = np.median(h[rng.integers(0, len(h), size=(reps, len(h)))], axis=1)
    a = (1 - level) / 2
    ratios = mh / mb
    return ratio, float(np.quantile(ratios, a)), float(np.quantile(ratios, 1 - a))


def paired_ratio(log_ratios, level: float = 0.95, method: str = "hodges-lehmann") -> RatioEstimate:
    """The head/base ratio of an interleaved A/B from its per-pair log ratios."""
    d = np.asarray(log_ratios, dtype=float)
    if method == "hodges-lehmann":
        c, lo, hi = hodges_lehmann(d, level)
    elif method == "bootstrap":
        c, lo, hi = bootstrap_center_ci(d, level)
    else:
        raise ValueError(f"unknown CI method {method!r}; use hodges-lehmann or bootstrap")
    return RatioEstimate(math.exp(c), math.exp(lo), math.exp(hi), level, method, len(d))


def summary_ratio(base: dict, new: dict, level: float = 0.95) -> RatioEstimate | None:
    """Fallback for cells stored without raw rounds (a tool that reports only aggregates): each side's
    own 95% CI read as a normal interval on the log scale, combined. None when either side has no CI."""
    try:
        lb, hb, cb = base["ci_low_ms"], base["ci_high_ms"], base["latency_ms"]
        ln, hn, cn = new["ci_low_ms"], new["ci_high_ms"], new["latency_ms"]
    except (KeyError, TypeError):
        return None
    if not all(v is not None and v > 0 for v in (lb, hb, cb, ln, hn, cn)) or hb <= lb or hn <= ln:
        return None
    z95 = sps.norm.ppf(0.975)
    se = math.hypot((math.log(hb) - math.log(lb)) / (2 * z95), (math.log(hn) - math.log(ln)) / (2 * z95))
    z = sps.norm.ppf(0.5 + level / 2)
    r = cn / cb
    return RatioEstimate(r, r * math.exp(-z * se), r * math.exp(z * se), level, "summary-ci", 1)


def familywise_level(alpha: float, cells: int) -> float:
    """Bonferroni: each of `cells` intervals at 1 - alpha/cells keeps the chance of any false alarm among
    them at most alpha (one-sided: alpha/2), whatever the dependence between cells."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha {alpha} must be in (0, 1)")
    return 1 - alpha / max(1, cells)


def robust_sd(x) -> float:
    """1.4826 x the median absolute deviation: the standard deviation for normal data, unmoved by outliers."""
    x = np.asarray(x, dtype=float)
    return float(1.4826 * np.median(np.abs(x - np.median(x)))) if len(x) else math.nan


def suggest_min_effect(ci_widths, ratios, floor: float = 0.02, step: float = 0.005) -> float:
    """A minimum effect an A/A calibration supports: wider than the widest interval it saw (x 1.25, so
    that a real run on a slightly noisier day is not UNSTABLE) and than twice the largest apparent A/A
    effect (so that no A/A difference could reach it), never below `floor`; rounded up to `step`."""
    widths = [w for w in ci_widths if math.isfinite(w)]
    offsets = [abs(r - 1) for r in ratios if math.isfinite(r)]
    need = max([floor, 1.25 * max(widths, default=0.0), 2 * max(offsets, default=0.0)])
    return round(math.ceil(need / step - 1e-9) * step, 6)


# ------------------------------------------------------------------------------- stability of the rounds

MIN_ROUNDS_FOR_STABILITY = 6  # fewer rounds cannot tell a trend or two levels from noise
DRIFT_P = 0.01  # Kendall's tau test of round medians against round order
LEVEL_GAP = 4.0  # two levels: the gap between them exceeds this many within-level MADs...
MIN_SHIFT = 0.05  # ...and both a trend and a split must move the median by at least 5% to matter


@dataclass(frozen=True)
class Stability:
    """Whether a cell's round medians drift (a CPU clock changing, a neighbour arriving) or split into two
    levels; `evidence` says how, for the flag."""

    kind: str  # "" (stable) | "drift" | "bimodal"
    evidence: str = ""

    @property
    def stable(self) -> bool:
        return not self.kind


def round_stability(rounds: list[list[float]] | list[np.ndarray]) -> Stability:
    """Drift: the round medians trend with the round order (Kendall's tau, p < 0.01) and the fitted trend
    moves them by at least 5% end to end. Two levels: sorted round medians have one gap larger than 4 MADs of
    the rounds on each side and 5% of the median, with at least 2 rounds on each side. Pure: tested on
    synthetic rounds with known answers."""
    meds = np.array([np.median(r) for r in rounds if len(r)], dtype=float)
    n = len(meds)
    if n < MIN_ROUNDS_FOR_STABILITY:
        return Stability("")
    center = float(np.median(meds))
    tau, p = sps.kendalltau(np.arange(n), meds)
    if np.isfinite(p) and p < DRIFT_P:
        slope = sps.theilslopes(meds, np.arange(n))[0]
        change = slope * (n - 1) / center
        if abs(change) >= MIN_SHIFT:
            return Stability("drift", f"{change:+.1%} over {n} rounds (Kendall tau {tau:.2f}, p={p:.2g})")
    order = np.sort(meds)
    gaps = np.diff(order)
    for i in np.argsort(gaps)[::-1][:1]:
        low, high = order[: i + 1], order[i + 1:]
        if len(low) < 2 or len(high) < 2:
            break
        spread = max(_mad(low), _mad(high), 1e-9 * center)
        if gaps[i] > LEVEL_GAP * spread and gaps[i] >= MIN_SHIFT * center:
            return Stability("bimodal", f"two levels {np.median(low):.3g} ms ({len(low)} rounds) and "
                                        f"{np.median(high):.3g} ms ({len(high)} rounds)")
    return Stability("")


def _mad(x: np.ndarray) -> float:
    return float(np.median(np.abs(x - np.median(x))))
