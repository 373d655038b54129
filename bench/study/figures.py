"""The study's figures as PNGs: the sweep's rank agreement with its CIs, ours vs the paper's x86 latencies for
the best configuration, the cost fits, and the ablation bars. matplotlib's object API only (no pyplot state)."""
from __future__ import annotations

import math
from pathlib import Path

from bench.analysis.costfit import CostFit
from bench.study.results import AblationRow, ReparamRow, SweepRow

DPI = 120


def _figure(w: float, h: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig, out_dir: Path, name: str) -> str:
    out_dir.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_dir / name, format="png")
    return name


def sweep_rho(rows: list[SweepRow], out_dir: Path, name: str = "sweep_rank_agreement.png") -> str | None:
    rows = [r for r in rows if not math.isnan(r.rho.rho)]
    if not rows:
        return None
    fig = _figure(7, 0.35 * len(rows) + 1.4)
    ax = fig.add_subplot()
    y = list(range(len(rows)))[::-1]
    rho = [r.rho.rho for r in rows]
    lo = [r.rho.rho - r.rho.ci_low if not math.isnan(r.rho.ci_low) else 0 for r in rows]
    hi = [r.rho.ci_high - r.rho.rho if not math.isnan(r.rho.ci_high) else 0 for r in rows]
    ax.errorbar(rho, y, xerr=[lo, hi], fmt="o", color="#1f77b4", capsize=3)
    ax.set_yticks(y, [f"{r.config.label} (n={r.rho.n})" for r in rows])
    ax.set_xlabel("Spearman rho with the paper's x86 CPU column\n(unflagged cells, 95% bootstrap CI)")
    ax.set_xlim(min(0.0, min(r.rho.ci_low for r in rows if not math.isnan(r.rho.ci_low)) if any(
        not math.isnan(r.rho.ci_low) for r in rows) else 0.0) - 0.05, 1.02)
    ax.axvline(1.0, color="0.6", lw=0.8)
    ax.grid(alpha=0.3)
    return _save(fig, out_dir, name)


def ours_vs_paper(points: list[tuple[str, float, float]], label: str, out_dir: Path,
                  name: str = "best_vs_paper.png") -> str | None:
    """(model, paper ms, ours ms) on log-log axes."""
    points = [p for p in points if p[1] and p[2]]
    if len(points) < 2:
        return None
    fig = _figure(6, 4.5)
    ax = fig.add_subplot()
    xs, ys = [p[1] for p in points], [p[2] for p in points]
    ax.scatter(xs, ys, color=["#d62728" if p[0].startswith("mobileone") else "#1f77b4" for p in points], s=18)
    for m, x, y in points:
        ax.annotate(m, (x, y), fontsize=6, xytext=(3, 2), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("paper, x86 CPU (ms)")
    ax.set_ylabel(f"ours, {label} (ms)")
    ax.grid(alpha=0.3, which="both")
    return _save(fig, out_dir, name)


def fit_shares(fits: list[tuple[str, CostFit]], out_dir: Path, name: str = "cost_fit_shares.png") -> str | None:
    """Stacked shares of mean latency: fixed, compute (MACs) and per-operator terms, per series."""
    fits = [(lbl, f) for lbl, f in fits if not math.isnan(f.op_share)]
    if not fits:
        return None
    fig = _figure(7, 0.35 * len(fits) + 1.4)
    ax = fig.add_subplot()
    y = list(range(len(fits)))[::-1]
    ops = [f.op_share for _, f in fits]
    macs = [f.mac_share for _, f in fits]
    fixed = [1 - o - m for o, m in zip(ops, macs)]
    ax.barh(y, fixed, color="0.7", label="fixed (a)")
    ax.barh(y, macs, left=fixed, color="#1f77b4", label="compute (b x MACs)")
    ax.barh(y, ops, left=[a + b for a, b in zip(fixed, macs)], color="#d62728", label="per operator (c x ops)")
    ax.set_yticks(y, [lbl for lbl, _ in fits])
    ax.set_xlabel("share of the mean latency in the fit latency = a + b*MACs + c*operators")
    ax.legend(fontsize=7, loc="lower right")
    return _save(fig, out_dir, name)


def ablation_bars(rows: list[AblationRow], title: str, out_dir: Path, name: str) -> str | None:
    rows = [r for r in rows if r.relative is not None]
    if not rows:
        return None
    devices = list(dict.fromkeys(r.device for r in rows))
    variants = list(dict.fromkeys(r.variant for r in rows))
    fig = _figure(7, 3.5)
    ax = fig.add_subplot()
    width = 0.8 / len(devices)
    for i, d in enumerate(devices):
        rel = {r.variant: r.relative for r in rows if r.device == d}
        ax.bar([j + i * width for j in range(len(variants))], [rel.get(v, 0) for v in variants], width, label=d)
    ax.set_xticks([j + width * (len(devices) - 1) / 2 for j in range(len(variants))], variants, rotation=20)
    ax.axhline(1.0, color="0.4", lw=0.8)
    ax.set_ylabel("latency / baseline")
    if any(r.flagged for r in rows):
        title += "\n(hatched: from cells flagged contended or unstable)"
    for patch_group, d in zip(ax.containers, devices):
        flagged = {r.variant for r in rows if r.device == d and r.flagged}
        for patch, v in zip(patch_group, variants):
            if v in flagged:
                patch.set_hatch("//")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    return _save(fig, out_dir, name)


def reparam_bars(rows: list[ReparamRow], out_dir: Path, name: str = "reparam_speedup.png") -> str | None:
    rows = [r for r in rows if r.speedup is not None]
    if not rows:
        return None
    devices = list(dict.fromkeys(r.device for r in rows))
    models = list(dict.fromkeys(r.model for r in rows))
    fig = _figure(7, 3.5)
    ax = fig.add_subplot()
    width = 0.8 / len(devices)
    for i, d in enumerate(devices):
        sp = {r.model: r.speedup for r in rows if r.device == d}
        ax.bar([j + i * width for j in range(len(models))], [sp.get(m, 0) for m in models], width, label=d)
    ax.set_xticks([j + width * (len(devices) - 1) / 2 for j in range(len(models))], models, rotation=40,
                  ha="right", fontsize=7)
    ax.axhline(1.0, color="0.4", lw=0.8)
    ax.set_ylabel("train form / deploy form latency")
    ax.legend(fontsize=7)
    return _save(fig, out_dir, name)
