"""Figures from the tidy cells, PNG and SVG: accuracy vs latency, latency vs complexity, ours vs the paper, rank
agreement between devices, and the reparameterization ablation.

matplotlib (the `plot` extra) is imported inside the functions, and only its object API is used (Figure plus the
Agg canvas, never pyplot), so nothing global changes and figures are freed when dropped.
"""
from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bench.analysis import correlate
from bench.analysis.frames import PLATFORM_SHORT, Dataset, device_order, slug
from bench.errors import MissingBackendError

C_MOBILEONE = "#d62728"
C_OTHER = "#1f77b4"
C_TRAIN = "#ff7f0e"
C_FRONT = "0.35"
LOG_SPAN = 8.0  # values spanning at least this factor get a log axis
DPI = 150
FORMATS = ("png", "svg")


@dataclass(frozen=True)
class Written:
    what: str  # the figure's kind
    series: str  # the device (or paper platform) it shows, '' for figures over all
    paths: tuple[Path, ...]


def _mpl():
    try:
        import matplotlib
    except ImportError:
        raise MissingBackendError("bench plot needs matplotlib; install it with pip install "
                                  "'mobileone-bench[plot]'") from None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    return matplotlib, Figure, FigureCanvasAgg


STYLE = {"font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "legend.fontsize": 8,
         "legend.title_fontsize": 8, "axes.grid": True, "grid.alpha": 0.25, "grid.linewidth": 0.6,
         "axes.spines.top": False, "axes.spines.right": False, "svg.fonttype": "path"}


def _new_figure(width: float, height: float, **subplots):
    _, Figure, FigureCanvasAgg = _mpl()
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(**subplots) if subplots else fig.subplots()
    return fig, axes


def _save(fig, out_dir: Path, stem: str) -> tuple[Path, ...]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for ext in FORMATS:
        path = out_dir / f"{stem}.{ext}"
        fig.savefig(path, format=ext, dpi=DPI)
        paths.append(path)
    return tuple(paths)


def _freeze_layout(fig) -> None:
    """Run the layout once and keep it: labels placed afterwards are placed against final positions."""
    fig.canvas.draw()
    fig.set_layout_engine("none")


# ---------------------------------------------------------------- axes helpers

def _span(values) -> float:
    v = np.asarray(values, float)
    v = v[np.isfinite(v) & (v > 0)]
    return float(v.max() / v.min()) if len(v) else 1.0


def _ticks_label(v, _pos=None) -> str:
    return f"{v:g}"


def set_scale(ax, axis: str, values, force_log: bool = False) -> bool:
    """Log scale where the values span about a decade or more (with 1-2-5 ticks labelled plainly)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    log = force_log or _span(values) >= LOG_SPAN
    target = ax.xaxis if axis == "x" else ax.yaxis
    if log:
        (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
        target.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        target.set_major_formatter(FuncFormatter(_ticks_label))
        target.set_minor_formatter(NullFormatter())
    return log


def _pad_limits(ax, axis: str, values, log: bool, pad: float = 0.08) -> None:
    v = np.asarray(values, float)
    v = v[np.isfinite(v) & ((v > 0) if log else True)]
    if not len(v):
        return
    lo, hi = float(v.min()), float(v.max())
    if log:
        a, b = math.log10(lo), math.log10(hi)
        span = max(b - a, 0.3)
        lims = (10 ** (a - pad * span), 10 ** (b + pad * span))
    else:
        span = (hi - lo) or max(abs(hi), 1.0) * 0.2
        lims = (lo - pad * span, hi + pad * span)
    (ax.set_xlim if axis == "x" else ax.set_ylim)(*lims)


def _fmt_p(p) -> str:
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "p = n/a"
    return "p < 0.001" if p < 0.001 else f"p = {p:.2g}"


def corr_text(c: correlate.Correlation) -> str:
    if c.n < 3 or math.isnan(c.rho):
        return f"Spearman ρ: n/a (n = {c.n}, needs 3 or more distinct values)"
    ci = "" if math.isnan(c.ci_low) else f", 95% CI [{c.ci_low:.2f}, {c.ci_high:.2f}]"
    return f"Spearman ρ = {c.rho:.2f} ({_fmt_p(c.p_value)}, n = {c.n}{ci})"


def _wrap(text: str, width: int = 95) -> str:
    return "\n".join(textwrap.wrap(text, width)) or text


# ---------------------------------------------------------------- label placement

_DIRECTIONS = [(1, 1), (1, -1), (-1, 1), (-1, -1), (1, 0), (-1, 0), (0, 1), (0, -1)]
_RADII_PT = (4, 8, 14, 22, 32, 44)


def _overlap(a, b) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return w * h if w > 0 and h > 0 else 0.0


def place_labels(ax, xs, ys, texts, *, fontsize: float = 7.5, color: str = "0.15", obstacles=()) -> list:
    """Label each point without overlaps where a free spot exists: for each label in turn, the nearest of 8
    directions at growing distances whose box touches no placed label, no marker and no obstacle and stays
    inside the axes; where none is free, the spot of least overlap. Labels placed away from their point get a
    thin leader line. Call after the layout is frozen: it works in pixels."""
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    px = fig.dpi / 72.0
    xs, ys = np.asarray(xs, float), np.asarray(ys, float)
    pts = ax.transData.transform(np.column_stack([xs, ys]))
    f = ax.get_window_extent(renderer)
    frame = (f.x0, f.y0, f.x1, f.y1)
    r = 4.5 * px
    blocked = [(x - r, y - r, x + r, y + r) for x, y in pts] + [tuple(o) for o in obstacles]
    artists = []
    for (x, y), xd, yd, text in zip(pts, xs, ys, texts):
        probe = ax.text(0, 0, text, fontsize=fontsize)
        bb = probe.get_window_extent(renderer)
        probe.remove()
        w, h = bb.width, bb.height
        best = None
        for radius in _RADII_PT:
            for dx, dy in _DIRECTIONS:
                k = 0.75 if dx and dy else 1.0
                ox, oy = dx * radius * k * px, dy * radius * k * px
                x0 = x + ox - (0 if dx > 0 else w if dx < 0 else w / 2)
                y0 = y + oy - (0 if dy > 0 else h if dy < 0 else h / 2)
                box = (x0, y0, x0 + w, y0 + h)
                clash = sum(_overlap(box, o) for o in blocked) + 4 * (w * h - _overlap(box, frame))
                if best is None or clash < best[0]:
                    best = (clash, ox, oy, dx, dy, box, radius)
            if best[0] == 0:
                break  # nearest free spot found
        _, ox, oy, dx, dy, box, radius = best
        blocked.append(box)
        arrow = dict(arrowstyle="-", lw=0.5, color="0.55", shrinkA=1, shrinkB=3) if radius >= 14 else None
        artists.append(ax.annotate(
            text, xy=(xd, yd), xytext=(ox / px, oy / px), textcoords="offset points",
            ha="left" if dx > 0 else "right" if dx < 0 else "center",
            va="bottom" if dy > 0 else "top" if dy < 0 else "center", fontsize=fontsize, color=color,
            arrowprops=arrow, zorder=5, annotation_clip=False))
    return artists


# ---------------------------------------------------------------- data helpers

def _ok(cells: pd.DataFrame, form: str = "deploy") -> pd.DataFrame:
    return cells[(cells["status"] == "ok") & (cells["form"] == form) & cells["latency_ms"].notna()]


def _not_shown(cells: pd.DataFrame, key: str) -> str:
    bad = cells[(cells["device_key"] == key) & (cells["form"] == "deploy") & (cells["status"] != "ok")]
    if bad.empty:
        return ""
    return "not shown (failed): " + ", ".join(bad["paper_name"].astype(str))


def _xerr(g: pd.DataFrame):
    lo = pd.to_numeric(g["ci_low_ms"], errors="coerce")
    hi = pd.to_numeric(g["ci_high_ms"], errors="coerce")
    if lo.isna().all():
        return None
    lat = g["latency_ms"].astype(float)
    return np.vstack([(lat - lo).clip(lower=0).fillna(0), (hi - lat).clip(lower=0).fillna(0)])


def _stat_name(g: pd.DataFrame) -> str:
    stat = g["statistic"].dropna().astype(str)
    stat = stat.iloc[0] if len(stat) else "median"
    return "as published" if stat == "as published" else stat


def _series_name(label: str) -> str:
    return label.removeprefix("paper ") if label.startswith("paper ") else label


def _footer(fig, text: str) -> None:
    if text:
        fig.text(0.01, 0.005, _wrap(text, 140), fontsize=7, color="0.35", ha="left", va="bottom")


# ---------------------------------------------------------------- figures

def accuracy_vs_latency(cells: pd.DataFrame, key: str, out_dir: Path, source: str) -> Written:
    """The paper's Figure 1 style: top-1 vs latency, MobileOne highlighted, the Pareto front drawn."""
    g = _ok(cells)
    g = g[(g["device_key"] == key) & g["top1"].notna()].sort_values("latency_ms")
    label, env = g["device_label"].iloc[0], g["env_label"].iloc[0]
    fig, ax = _new_figure(7.5, 5.6)
    others, mo = g[~g["mobileone"].astype(bool)], g[g["mobileone"].astype(bool)]
    front = g[correlate.pareto_front(g["latency_ms"], g["top1"])].sort_values("latency_ms")
    log = set_scale(ax, "x", g["latency_ms"])
    handles = []
    if len(front) > 1:
        handles.append(ax.step(front["latency_ms"], front["top1"], where="post", ls="--", lw=1.0,
                               color=C_FRONT, zorder=2, label="Pareto front (no model both faster and "
                                                              "more accurate)")[0])
    elif len(front) == 1:
        handles.append(ax.scatter([], [], marker="s", s=0, label="Pareto front: one model"))
    for part, color, marker, size, name in ((others, C_OTHER, "o", 30, "other models"),
                                            (mo, C_MOBILEONE, "*", 140, "MobileOne")):
        if part.empty:
            continue
        xerr = _xerr(part)
        if xerr is not None:
            ax.errorbar(part["latency_ms"], part["top1"], xerr=xerr, fmt="none", ecolor=color, alpha=0.5,
                        lw=0.8, capsize=0, zorder=3)
        handles.append(ax.scatter(part["latency_ms"], part["top1"], marker=marker, s=size, color=color,
                                  edgecolor="white", linewidth=0.5, zorder=4, label=name))
    if len(mo) > 1:
        ax.plot(mo["latency_ms"], mo["top1"], "-", color=C_MOBILEONE, lw=1.0, alpha=0.6, zorder=3)
    _pad_limits(ax, "x", g["latency_ms"], log, pad=0.12)
    _pad_limits(ax, "y", g["top1"], False, pad=0.12)
    ax.set_xlabel(f"latency (ms, {_stat_name(g)}{', log scale' if log else ''})")
    ax.set_ylabel("ImageNet top-1 accuracy (%)")
    ax.set_title(f"Top-1 accuracy vs latency: {label}")
    fig.legend(handles=handles, loc="outside lower center", ncol=min(3, len(handles)),
               title=_wrap(f"{label}: {env}"), frameon=False)
    _footer(fig, _not_shown(cells, key))
    _freeze_layout(fig)
    order = list(mo.index) + list(others.index)
    place_labels(ax, g.loc[order, "latency_ms"], g.loc[order, "top1"], g.loc[order, "paper_name"])
    stem = f"accuracy_vs_latency-{slug(_series_name(label))}-{source}"
    return Written("accuracy vs latency", label, _save(fig, out_dir, stem))


def latency_vs_complexity(cells: pd.DataFrame, key: str, out_dir: Path, source: str) -> Written:
    """Latency vs MACs and vs params, Spearman rho with p-value and CI in each panel."""
    g = _ok(cells)
    g = g[g["device_key"] == key]
    label, env = g["device_label"].iloc[0], g["env_label"].iloc[0]
    corr = correlate.complexity_correlations(g)
    fig, axes = _new_figure(11.5, 5.6, ncols=2, sharey=True)
    ylog = set_scale(axes[0], "y", g["latency_ms"])
    handles = []
    for ax, metric, xlabel in ((axes[0], "macs", "MACs (millions, deploy form)"),
                               (axes[1], "params", "parameters (millions, deploy form)")):
        x = g[f"{metric}_m"]
        xlog = set_scale(ax, "x", x)
        mo = g["mobileone"].astype(bool)
        yerr = _xerr(g)
        if yerr is not None:
            ax.errorbar(x, g["latency_ms"], yerr=yerr, fmt="none", ecolor="0.5", alpha=0.6, lw=0.8, zorder=3)
        h1 = ax.scatter(x[~mo], g.loc[~mo, "latency_ms"], s=30, color=C_OTHER, edgecolor="white", lw=0.5,
                        zorder=4, label="other models")
        h2 = ax.scatter(x[mo], g.loc[mo, "latency_ms"], marker="*", s=140, color=C_MOBILEONE, edgecolor="white",
                        lw=0.5, zorder=4, label="MobileOne")
        handles = [h for h, part in ((h2, g[mo]), (h1, g[~mo])) if not part.empty]
        _pad_limits(ax, "x", x, xlog, pad=0.12)
        row = corr[corr["metric"] == metric].iloc[0]
        c = correlate.Correlation(*(float("nan") if row[f] is None else row[f]
                                    for f in ("rho", "p_value", "n", "ci_low", "ci_high")))
        title = f"latency vs {'MACs' if metric == 'macs' else 'params'}\n{corr_text(c)}"
        if row["paper_rho"] is not None and not pd.isna(row["paper_rho"]):
            title += (f"\npaper's own value ({PLATFORM_SHORT.get(row['platform'], row['platform'])}): "
                      f"ρ = {row['paper_rho']:.2f}, {_fmt_p(row['paper_p_value'])}")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(xlabel + (", log scale" if xlog else ""))
    _pad_limits(axes[0], "y", g["latency_ms"], ylog, pad=0.1)
    axes[0].set_ylabel(f"latency (ms, {_stat_name(g)}{', log scale' if ylog else ''})")
    axes[1].tick_params(labelleft=True)
    fig.suptitle(f"Latency vs model size on {label}", fontsize=11)
    fig.legend(handles=handles, loc="outside lower center", ncol=2, title=_wrap(f"{label}: {env}", 130),
               frameon=False)
    _footer(fig, _not_shown(cells, key))
    _freeze_layout(fig)
    for ax, metric in ((axes[0], "macs"), (axes[1], "params")):
        place_labels(ax, g[f"{metric}_m"], g["latency_ms"], g["paper_name"])
    stem = f"latency_vs_complexity-{slug(_series_name(label))}-{source}"
    return Written("latency vs MACs and params", label, _save(fig, out_dir, stem))


def measured_vs_paper(cells: pd.DataFrame, out_dir: Path, source: str) -> Written | None:
    """Ours vs the paper's latency, one panel per measured device with a matching paper platform (log-log,
    identity line, the median ratio as a dotted line, Spearman rho)."""
    data = _ok(cells)
    data = data[(data["source"] != "paper") & data["platform"].apply(lambda p: isinstance(p, str))]
    keys = [k for k in device_order(data) if k in set(data["device_key"])]
    panels = []
    for key in keys:
        g = data[data["device_key"] == key].copy()
        g["paper_ms"] = [row[f"paper_{row['platform']}"] for _, row in g.iterrows()]
        g = g[pd.to_numeric(g["paper_ms"], errors="coerce").notna()]
        if not g.empty:
            panels.append((key, g.astype({"paper_ms": float})))
    if not panels:
        return None
    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = _new_figure(5.0 * ncols + 0.5, 4.9 * nrows + 0.9, nrows=nrows, ncols=ncols, squeeze=False)
    flat = list(axes.flat)
    envs = []
    for ax, (key, g) in zip(flat, panels):
        label, platform = g["device_label"].iloc[0], g["platform"].iloc[0]
        short = PLATFORM_SHORT[platform]
        envs.append(f"{label}: {g['env_label'].iloc[0]}")
        both = np.concatenate([g["paper_ms"], g["latency_ms"]])
        lo, hi = both.min() / 1.6, both.max() * 1.6
        set_scale(ax, "x", both, force_log=True)
        set_scale(ax, "y", both, force_log=True)
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_aspect("equal", adjustable="box")
        line = np.array([lo, hi])
        ax.plot(line, line, "-", color="0.6", lw=1.0, zorder=1, label="ours = paper")
        ratio = float((g["latency_ms"] / g["paper_ms"]).median())
        ax.plot(line, line * ratio, ":", color=C_FRONT, lw=1.0, zorder=1,
                label=f"ours = {ratio:.2g} × paper (median ratio)")
        yerr = _xerr(g)
        if yerr is not None:
            ax.errorbar(g["paper_ms"], g["latency_ms"], yerr=yerr, fmt="none", ecolor="0.5", alpha=0.6, lw=0.8)
        mo = g["mobileone"].astype(bool)
        ax.scatter(g.loc[~mo, "paper_ms"], g.loc[~mo, "latency_ms"], s=30, color=C_OTHER, edgecolor="white",
                   lw=0.5, zorder=4, label="other models")
        ax.scatter(g.loc[mo, "paper_ms"], g.loc[mo, "latency_ms"], marker="*", s=140, color=C_MOBILEONE,
                   edgecolor="white", lw=0.5, zorder=4, label="MobileOne")
        c = correlate.spearman(g["paper_ms"], g["latency_ms"])
        ax.set_title(f"{label} vs paper {short}\n{corr_text(c)}", fontsize=9)
        ax.set_xlabel(f"paper {short} latency (ms, log scale)")
        ax.set_ylabel(f"{label} latency (ms, {_stat_name(g)}, log scale)")
        ax.legend(loc="upper left", fontsize=7, frameon=True, framealpha=0.85)
    for ax in flat[len(panels):]:
        ax.set_visible(False)
    fig.suptitle("Measured latency vs the MobileOne paper's Table 1", fontsize=11)
    _footer(fig, " | ".join(envs))
    _freeze_layout(fig)
    for ax, (key, g) in zip(flat, panels):
        legend_box = ax.get_legend().get_window_extent(fig.canvas.get_renderer())
        place_labels(ax, g["paper_ms"], g["latency_ms"], g["paper_name"],
                     obstacles=[(legend_box.x0, legend_box.y0, legend_box.x1, legend_box.y1)])
    return Written("measured vs paper", "", _save(fig, out_dir, f"measured_vs_paper-{source}"))


def rank_agreement_heatmap(cells: pd.DataFrame, out_dir: Path, source: str) -> Written | None:
    """Spearman rho between every pair of series (devices and the paper's platforms) over shared models."""
    wide = correlate.latency_series(cells, with_paper=True)
    if wide.shape[1] < 2:
        return None
    rho, n = correlate.rank_agreement(wide)
    labels = list(rho.columns)
    size = max(4.8, 0.95 * len(labels) + 2.6)
    fig, ax = _new_figure(size + 1.2, size + 0.6)
    masked = np.ma.masked_invalid(rho.to_numpy(float))
    from matplotlib import colormaps
    cmap = colormaps["RdBu"].copy()
    cmap.set_bad("0.9")
    im = ax.imshow(masked, cmap=cmap, vmin=-1, vmax=1)
    ax.grid(False)
    ax.set_xticks(range(len(labels)), labels, rotation=35, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    for i in range(len(labels)):
        for j in range(len(labels)):
            v, k = rho.iat[i, j], int(n.iat[i, j])
            if math.isnan(v):
                text, color = f"n/a\nn = {k}", "0.4"
            else:
                text, color = f"{v:.2f}\nn = {k}", "white" if abs(v) > 0.6 else "0.1"
            ax.text(j, i, text, ha="center", va="center", fontsize=7.5, color=color)
    cbar = fig.colorbar(im, ax=ax, shrink=0.8)
    cbar.set_label("Spearman ρ of latency ranks")
    ax.set_title("Rank agreement between devices and the paper's platforms\n(each pair over the models both "
                 "have; n/a: fewer than 3)", fontsize=10)
    env = [f"{lbl}: {e}" for lbl, e in cells.drop_duplicates("device_label")[["device_label", "env_label"]]
           .itertuples(index=False) if not lbl.startswith("paper ")]
    env += [f"paper {s}: MobileOne paper Table 1" for s in PLATFORM_SHORT.values()
            if f"paper {s}" in labels and not any(e.startswith(f"paper {s}:") for e in env)]
    _footer(fig, " | ".join(env))
    return Written("rank agreement", "", _save(fig, out_dir, f"rank_agreement-{source}"))


def reparam_ablation(cells: pd.DataFrame, key: str, out_dir: Path, source: str) -> Written | None:
    """Deploy vs train form per model on one device: what the reparameterization buys."""
    ab = correlate.ablation_frame(cells)
    ab = ab[ab["device_key"] == key].sort_values("order", ascending=False)
    if ab.empty:
        return None
    label, env = ab["device_label"].iloc[0], ab["env_label"].iloc[0]
    fig, ax = _new_figure(8.0, 1.6 + 0.55 * len(ab))
    y = np.arange(len(ab))
    hb = 0.38
    ax.barh(y + hb / 2, ab["deploy_ms"], height=hb, color=C_OTHER, label="deploy form (reparameterized)")
    ax.barh(y - hb / 2, ab["train_ms"], height=hb, color=C_TRAIN, label="train form (multi-branch)")
    values = np.concatenate([ab["deploy_ms"], ab["train_ms"]])
    log = set_scale(ax, "x", values)
    top = values.max() * (4.0 if log else 1.25)
    ax.set_xlim((values.min() / 2) if log else 0, top)
    for yi, (_, row) in zip(y, ab.iterrows()):
        ax.text(max(row["deploy_ms"], row["train_ms"]) * (1.08 if log else 1.02), yi,
                f"train / deploy = {row['speedup']:.2f}×", va="center", fontsize=8)
    ax.set_yticks(y, ab["paper_name"])
    ax.grid(axis="y", visible=False)
    ax.set_xlabel(f"latency (ms{', log scale' if log else ''})")
    ax.set_title(f"Reparameterization ablation on {label}: train form vs deploy form")
    fig.legend(loc="outside lower center", ncol=2, title=_wrap(f"{label}: {env}"), frameon=False)
    stem = f"reparam_ablation-{slug(_series_name(label))}-{source}"
    return Written("reparameterization ablation", label, _save(fig, out_dir, stem))


def plot_all(ds: Dataset, out_dir: Path) -> tuple[list[Written], list[str]]:
    """Every figure the data allow; returns what was written and, for each figure left out, why."""
    _mpl()
    cells = ds.cells
    written: list[Written] = []
    skipped: list[str] = []
    ok = _ok(cells)
    for key in device_order(cells):
        g = ok[ok["device_key"] == key]
        label = cells.loc[cells["device_key"] == key, "device_label"].iloc[0]
        if g.empty:
            skipped.append(f"{label}: no successful deploy-form cells to plot")
            continue
        if g["top1"].notna().any():
            written.append(accuracy_vs_latency(cells, key, out_dir, ds.source))
        written.append(latency_vs_complexity(cells, key, out_dir, ds.source))
        w = reparam_ablation(cells, key, out_dir, ds.source)
        if w:
            written.append(w)
        elif not ds.paper:
            skipped.append(f"reparameterization ablation on {label}: no train-form results "
                           "(measure them with bench run --both-forms)")
    if ds.paper:
        skipped.append("measured vs paper: --paper has no measurements to compare")
    else:
        w = measured_vs_paper(cells, out_dir, ds.source)
        written.append(w) if w else skipped.append(
            "measured vs paper: no device with a matching paper platform (cpu, torch, trt, cuda, coreml, "
            "iphone, tflite, android)")
    w = rank_agreement_heatmap(cells, out_dir, ds.source)
    written.append(w) if w else skipped.append("rank agreement: needs two or more series")
    return written, skipped
