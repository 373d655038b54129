"""Pure computations over the tidy cells frame: Spearman with p-values and bootstrap CIs, Pareto fronts,
rank agreement between devices, achieved GFLOP/s and the reparameterization ablation. No I/O."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from bench.analysis.frames import PLATFORM_SHORT, device_order
from bench.reference import paper_spearman
from devices.registry import host_cpu_devices

BOOTSTRAP_RESAMPLES = 4000
BOOTSTRAP_SEED = 20220614  # fixed: the same data always give the same interval
# Devices that run on the host CPU, where the run's matmul peak (torch.mm, fp32, on that CPU) is the roofline.
# Up to this many pairs the p-value is exact (all n! orderings); above it, scipy's t approximation, which
# for a handful of points is far off (it gives p = 0 for any perfect correlation).
EXACT_P_MAX_N = 8
NAN = float("nan")


@dataclass(frozen=True)
class Correlation:
    rho: float
    p_value: float
    n: int
    ci_low: float
    ci_high: float

    def to_dict(self) -> dict:
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(self).items()}


def _rank_rows(a: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata
    return rankdata(a, axis=-1)  # average ranks for ties, as Spearman's rho defines them


def _pearson_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a - a.mean(axis=-1, keepdims=True)
    b = b - b.mean(axis=-1, keepdims=True)
    den = np.sqrt((a * a).sum(axis=-1) * (b * b).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (a * b).sum(axis=-1) / den
    return np.where(den > 0, r, np.nan)


def spearman_ci(x: np.ndarray, y: np.ndarray, level: float = 0.95, resamples: int = BOOTSTRAP_RESAMPLES,
                seed: int = BOOTSTRAP_SEED) -> tuple[float, float]:
    """Percentile bootstrap CI of Spearman's rho, resampling (x, y) pairs. Resamples whose x or y are all tied
    have no rho and are left out (with n = 3 that is a real share of them: read such CIs with care)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    n = len(x)
    if n < 3:
        return NAN, NAN
    idx = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    r = _pearson_rows(_rank_rows(x[idx]), _rank_rows(y[idx]))
    r = r[np.isfinite(r)]
    if len(r) == 0:
        return NAN, NAN
    alpha = (1 - level) / 2
    return float(np.quantile(r, alpha)), float(np.quantile(r, 1 - alpha))


def exact_p_value(x: np.ndarray, y: np.ndarray) -> float:
    """Two-sided permutation p-value of Spearman's rho: the share of all n! pairings of y with x whose |rho| is
    at least the observed one."""
    import itertools

    rx, ry = _rank_rows(np.asarray(x, float)), _rank_rows(np.asarray(y, float))
    observed = abs(_pearson_rows(rx, ry))
    perms = np.array(list(itertools.permutations(ry)))
    rhos = np.abs(_pearson_rows(np.broadcast_to(rx, perms.shape), perms))
    return float(np.mean(rhos >= observed - 1e-12))


def spearman(x, y, level: float = 0.95, resamples: int = BOOTSTRAP_RESAMPLES,
             seed: int = BOOTSTRAP_SEED) -> Correlation:
    """Spearman's rho of paired values (pairs with a missing value dropped), its two-sided p-value (exact up to
    EXACT_P_MAX_N pairs, else scipy's t approximation), and a bootstrap CI. Fewer than 3 pairs, or all of x or
    of y tied: no correlation (NaN)."""
    from scipy.stats import spearmanr

    x, y = np.asarray(x, float), np.asarray(y, float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    n = int(len(x))
    if n < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return Correlation(NAN, NAN, n, NAN, NAN)
    res = spearmanr(x, y)
    p = exact_p_value(x, y) if n <= EXACT_P_MAX_N else float(res.pvalue)
    lo, hi = spearman_ci(x, y, level, resamples, seed)
    return Correlation(float(res.statistic), p, n, lo, hi)


def pareto_front(latency, accuracy) -> np.ndarray:
    """Mask of the points no other point beats: none is at least as fast and at least as accurate, and
    strictly better in one of the two. Points with a missing value are never on the front."""
    lat, acc = np.asarray(latency, float), np.asarray(accuracy, float)
    ok = np.isfinite(lat) & np.isfinite(acc)
    front = ok.copy()
    for i in np.flatnonzero(ok):
        others = ok & (lat <= lat[i]) & (acc >= acc[i]) & ((lat < lat[i]) | (acc > acc[i]))
        if others.any():
            front[i] = False
    return front


def achieved_gflops(macs_m, latency_ms):
    """2 x MACs per inference over the latency: (2 * MACs_M * 1e6 FLOP) / (latency_ms * 1e-3 s) / 1e9."""
    return 2.0 * np.asarray(macs_m, float) / np.asarray(latency_ms, float)


def _ok_deploy(cells: pd.DataFrame) -> pd.DataFrame:
    return cells[(cells["status"] == "ok") & (cells["form"] == "deploy") & cells["latency_ms"].notna()]


def reference_platform(row) -> str | None:
    """The paper platform a series answers to: a device's matching platform, or a paper column's own."""
    if row["source"] == "paper":
        return str(row["device_key"]).removeprefix("paper:")
    platform = row.get("platform")
    return platform if isinstance(platform, str) else None


def paper_claims() -> dict[tuple[str, str], tuple[float, float]]:
    """(platform column, 'macs' | 'params') -> (rho, p) of the paper's Table 1(a). The paper's FLOPs are MACs."""

    out = {}
    for row in paper_spearman():
        metric = "macs" if row["metric"] == "flops" else row["metric"]
        out[(f"{row['platform']}_ms", metric)] = (float(row["rho"]), float(row["p_value"]))
    return out


def complexity_correlations(cells: pd.DataFrame) -> pd.DataFrame:
    """Per device key: Spearman of latency vs MACs and vs params (deploy form, ok cells), next to the paper's
    own rho and p for the matching platform where it published one."""
    claims = paper_claims()
    rows = []
    data = _ok_deploy(cells)
    for key, g in data.groupby("device_key", sort=False):
        first = g.iloc[0]
        ref = reference_platform(first)
        for metric in ("macs", "params"):
            c = spearman(g[f"{metric}_m"], g["latency_ms"])
            claim = claims.get((ref, metric), (None, None)) if ref else (None, None)
            rows.append({"device_key": key, "device_label": first["device_label"], "device": first["device"],
                         "env_label": first["env_label"], "platform": ref, "metric": metric, **c.to_dict(),
                         "paper_rho": claim[0], "paper_p_value": claim[1]})
    return pd.DataFrame(rows, columns=_CORR_COLUMNS)


_CORR_COLUMNS = ["device_key", "device_label", "device", "env_label", "platform", "metric", "rho", "p_value", "n",
                 "ci_low", "ci_high", "paper_rho", "paper_p_value"]


def paper_agreement(cells: pd.DataFrame) -> pd.DataFrame:
    """Per measured device key with a matching paper platform: Spearman between our latencies and the paper's
    over the models both have, and the median ratio ours / paper."""
    rows = []
    data = _ok_deploy(cells)
    data = data[data["source"] != "paper"]
    for key, g in data.groupby("device_key", sort=False):
        platform = g["platform"].iloc[0]
        if not isinstance(platform, str):
            continue
        paper = g[f"paper_{platform}"].astype(float)
        c = spearman(g["latency_ms"], paper)
        ratio = (g["latency_ms"] / paper).replace([np.inf, -np.inf], np.nan).dropna()
        rows.append({"device_key": key, "device_label": g["device_label"].iloc[0],
                     "env_label": g["env_label"].iloc[0], "platform": platform, **c.to_dict(),
                     "median_ratio": float(ratio.median()) if len(ratio) else None})
    return pd.DataFrame(rows, columns=["device_key", "device_label", "env_label", "platform", "rho", "p_value",
                                       "n", "ci_low", "ci_high", "median_ratio"])


def latency_series(cells: pd.DataFrame, with_paper: bool = True) -> pd.DataFrame:
    """Wide frame, index model, one column per series (device label), deploy-form latency. with_paper adds
    each paper platform's latencies over the same models (once, even when the cells are the paper's own)."""

    data = _ok_deploy(cells)
    wide = data.pivot_table(index="model", columns="device_label", values="latency_ms", aggfunc="first",
                            sort=False)
    labels = dict(zip(data["device_key"], data["device_label"]))
    wide = wide[[labels[k] for k in device_order(data)]] if len(data) else wide
    if with_paper and not (cells["source"] == "paper").all():
        models = cells.drop_duplicates("model").set_index("model")
        for platform, short in PLATFORM_SHORT.items():
            wide[f"paper {short}"] = models[f"paper_{platform}"].astype(float).reindex(wide.index)
    return wide


def rank_agreement(wide: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Spearman rho and n between every pair of columns, each pair over the models both have."""
    cols = list(wide.columns)
    rho = pd.DataFrame(np.nan, index=cols, columns=cols)
    n = pd.DataFrame(0, index=cols, columns=cols)
    for i, a in enumerate(cols):
        for b in cols[i:]:
            c = spearman(wide[a], wide[b])
            rho.loc[a, b] = rho.loc[b, a] = c.rho
            n.loc[a, b] = n.loc[b, a] = c.n
    return rho, n


def gflops_frame(cells: pd.DataFrame) -> pd.DataFrame:
    """Per deploy-form ok cell: achieved GFLOP/s and, on the host CPU, its share of the run's matmul peak."""
    data = _ok_deploy(cells).copy()
    data["gflops"] = achieved_gflops(data["macs_m"], data["latency_ms"])
    on_host = data["device"].isin(host_cpu_devices()) & (data["source"] != "paper")
    measured_peak = pd.to_numeric(data["matmul_peak_gflops"], errors="coerce").where(on_host)
    # The roofline is the most this machine and runtime reached: the run's measured GEMM peak, or a cell of
    # the same device key that went past it (then that cell is the roofline, and the note says so). A share
    # above 100% is impossible by construction.
    best_cell = data["gflops"].where(on_host).groupby(data["device_key"]).transform("max") \
        if "device_key" in data else data["gflops"].where(on_host)
    peak = pd.concat([measured_peak, best_cell], axis=1).max(axis=1, skipna=False).where(measured_peak.notna())
    data["peak_gflops"] = peak
    data["roofline"] = np.where(best_cell > measured_peak, "best cell (above the GEMM peak)", "GEMM peak")
    data["pct_of_peak"] = 100 * data["gflops"] / peak
    cols = ["model", "paper_name", "device_label", "device", "threads", "latency_ms", "macs_m", "gflops",
            "peak_gflops", "matmul_peak_threads", "pct_of_peak", "roofline"]
    for c in cols:
        if c not in data:
            data[c] = None
    return data[cols].reset_index(drop=True)


ABLATION_COLUMNS = ["device_key", "device_label", "env_label", "model", "paper_name", "order", "deploy_ms",
                    "deploy_ci_low_ms", "deploy_ci_high_ms", "train_ms", "train_ci_low_ms", "train_ci_high_ms",
                    "speedup"]


def ablation_frame(cells: pd.DataFrame) -> pd.DataFrame:
    """Per (device key, model) measured in both forms: deploy and train latency with their CIs, and
    train / deploy (how much the reparameterization saves)."""
    ok = cells[(cells["status"] == "ok") & cells["latency_ms"].notna()]
    deploy = ok[ok["form"] == "deploy"].set_index(["device_key", "model"])
    train = ok[ok["form"] == "train"].set_index(["device_key", "model"])
    both = deploy.index.intersection(train.index)
    if len(both) == 0:
        return pd.DataFrame(columns=ABLATION_COLUMNS)
    d, t = deploy.loc[both], train.loc[both]
    out = pd.DataFrame({
        "device_label": d["device_label"], "env_label": d["env_label"], "paper_name": d["paper_name"],
        "order": d["order"], "deploy_ms": d["latency_ms"].astype(float),
        "deploy_ci_low_ms": pd.to_numeric(d["ci_low_ms"], errors="coerce"),
        "deploy_ci_high_ms": pd.to_numeric(d["ci_high_ms"], errors="coerce"),
        "train_ms": t["latency_ms"].astype(float),
        "train_ci_low_ms": pd.to_numeric(t["ci_low_ms"], errors="coerce"),
        "train_ci_high_ms": pd.to_numeric(t["ci_high_ms"], errors="coerce")}).reset_index()
    out["speedup"] = out["train_ms"] / out["deploy_ms"]
    return out.sort_values(["device_key", "order"]).reset_index(drop=True)[ABLATION_COLUMNS]


def analysis_frames(cells: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Everything `bench analyze` reports, as frames (the CLI only prints them)."""
    wide = latency_series(cells, with_paper=True)
    rho, n = rank_agreement(wide)
    return {"complexity": complexity_correlations(cells), "paper_agreement": paper_agreement(cells),
            "rank_agreement_rho": rho, "rank_agreement_n": n, "gflops": gflops_frame(cells),
            "ablation": ablation_frame(cells)}


def records(frame: pd.DataFrame) -> list[dict]:
    """JSON-ready rows: NaN and NA as None."""
    return frame.astype(object).where(frame.notna(), None).to_dict("records")
