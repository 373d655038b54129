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
from bench.core.device import PAPER_PLATFORMS
from bench.core.errors import MissingBackendError

C_MOBILEONE = "#d62728"
C_OTHER = "#1f77b4"
C_USER = "#2ca02c"  # the user's own models
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


def _styled(fn):
    """Run a figure function under the house style (rc settings are read when artists are made)."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        matplotlib, _, _ = _mpl()
        with matplotlib.rc_context(STYLE):
            return fn(*args, **kwargs)
    return wrapper


def _bottom_legend(fig, handles, lines, ncol: int | None = None, width: int = 110) -> None:
    """Below the axes: the series, titled with the device and its environment (and what is not shown)."""
    title = "\n".join(_wrap(line, width) for line in lines if line)
    fig.legend(handles=handles, loc="outside lower center", ncol=ncol or max(1, min(4, len(handles))),
               title=title or None, frameon=False, alignment="center")


def _new_figure(width: float, height: float, **subplots):
    _, Figure, FigureCanvasAgg = _mpl()
    from matplotlib.layout_engine import ConstrainedLayoutEngine

    fig = Figure(figsize=(width, height), dpi=DPI)
    # A little more than the default margin, so titles never touch the edge of the image.
    fig.set_layout_engine(ConstrainedLayoutEngine(h_pad=0.1, w_pad=0.1))
    FigureCanvasAgg(fig)
    axes = fig.subplots(**subplots) if subplots else fig.subplots()
    return fig, axes


def _save(fig, out_dir: Path, stem: str, formats=FORMATS) -> tuple[Path, ...]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for ext in formats:
        path = out_dir / f"{stem}.{ext}"
        fig.savefig(path, format=ext, dpi=DPI)
        paths.append(path)
    return tuple(paths)


def _freeze_layout(fig) -> None:
    """Run the layout once and keep it: labels placed afterwards are placed against final positions.
    (The layout engine measures text without rasterizing anything: cheaper than a full draw.)"""
    fig.get_layout_engine().execute(fig)
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
        span = _span(values)
        # Enough labelled ticks to read a value off the axis, however few decades it spans.
        subs = (1.0, 2.0, 3.0, 5.0, 7.0) if span <= 12 else (1.0, 2.0, 5.0) if span <= 300 else (1.0,)
        target.set_major_locator(LogLocator(base=10, subs=subs))
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

# Directions tried, in degrees: right of the point reads best, then left, then the diagonals, above, below.
_ANGLES = (0, 30, -30, 180, 150, -150, 60, -60, 120, -120, 90, -90)
_RADII_PT = (7, 10, 14, 19, 25, 32, 40, 50)  # the first clears a star marker; from 14 on a leader is drawn
_LEADER_FROM_PT = 14
_KEEP_CLEAR_PT = 6.0  # labels keep this far from other points, so none reads as another point's label


def _overlap(a, b) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return w * h if w > 0 and h > 0 else 0.0


def _overlap_sum(box, boxes: np.ndarray) -> float:
    """Total overlap area of one box (x0, y0, x1, y1) with an (n, 4) array of boxes."""
    if not len(boxes):
        return 0.0
    w = np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0])
    h = np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1])
    return float(np.sum(np.clip(w, 0, None) * np.clip(h, 0, None)))


def _line_boxes(ax, lines, step_px: float = 3.0, half: float = 1.5) -> list[tuple]:
    """Small boxes along polylines given in data coordinates, so labels avoid crossing lines."""
    boxes = []
    for lx, ly in lines:
        pts = ax.transData.transform(np.column_stack([np.asarray(lx, float), np.asarray(ly, float)]))
        pts = pts[np.isfinite(pts).all(axis=1)]
        for (x0, y0), (x1, y1) in zip(pts[:-1], pts[1:]):
            steps = max(1, int(math.hypot(x1 - x0, y1 - y0) / step_px))
            for t in np.linspace(0, 1, steps + 1):
                x, y = x0 + t * (x1 - x0), y0 + t * (y1 - y0)
                boxes.append((x - half, y - half, x + half, y + half))
    return boxes


def place_labels(ax, xs, ys, texts, *, fontsize: float = 7.5, color: str = "0.15", obstacles=(),
                 lines=()) -> list:
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
    r = _KEEP_CLEAR_PT * px
    markers = np.array([(x - r, y - r, x + r, y + r) for x, y in pts], dtype=float).reshape(-1, 4)
    blocked = np.array([tuple(o) for o in obstacles] + _line_boxes(ax, lines), dtype=float).reshape(-1, 4)
    artists = []
    for i, ((x, y), xd, yd, text) in enumerate(zip(pts, xs, ys, texts)):
        others = np.delete(markers, i, axis=0)
        probe = ax.text(0, 0, text, fontsize=fontsize)
        bb = probe.get_window_extent(renderer)
        probe.remove()
        w, h = bb.width, bb.height
        best = None
        for radius in _RADII_PT:
            for angle in _ANGLES:
                dx, dy = math.cos(math.radians(angle)), math.sin(math.radians(angle))
                ha = "left" if dx > 0.3 else "right" if dx < -0.3 else "center"
                va = "bottom" if dy > 0.3 else "top" if dy < -0.3 else "center"
                ox, oy = dx * radius * px, dy * radius * px
                x0 = x + ox - {"left": 0, "right": w, "center": w / 2}[ha]
                y0 = y + oy - {"bottom": 0, "top": h, "center": h / 2}[va]
                box = (x0, y0, x0 + w, y0 + h)
                clash = (_overlap_sum(box, blocked) + _overlap_sum(box, others)
                         + 4 * max(0.0, w * h - _overlap(box, frame)))
                if best is None or clash < best[0] - 1e-6:  # (areas in px^2: ignore rounding noise)
                    best = (clash, ox, oy, ha, va, box, radius)
            if best[0] < 1e-6:
                break  # nearest free spot found
        _, ox, oy, ha, va, box, radius = best
        blocked = np.vstack([blocked, box])
        arrow = (dict(arrowstyle="-", lw=0.5, color="0.55", shrinkA=1, shrinkB=3)
                 if radius >= _LEADER_FROM_PT else None)
        artists.append(ax.annotate(
            text, xy=(xd, yd), xytext=(ox / px, oy / px), textcoords="offset points", ha=ha, va=va,
            fontsize=fontsize, color=color,
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


def _ci(g: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    return (pd.to_numeric(g["ci_low_ms"], errors="coerce"), pd.to_numeric(g["ci_high_ms"], errors="coerce"))


def _err(g: pd.DataFrame):
    """Error bar lengths (below, above) of each latency from its 95% CI; None when no cell has a CI."""
    lo, hi = _ci(g)
    if lo.isna().all():
        return None
    lat = g["latency_ms"].astype(float)
    return np.vstack([(lat - lo).clip(lower=0).fillna(0), (hi - lat).clip(lower=0).fillna(0)])


def _err_lines(x, g: pd.DataFrame, vertical: bool) -> list:
    """The CI bars as line segments (data coordinates), for label placement to avoid."""
    lo, hi = _ci(g)
    out = []
    for xi, a, b in zip(np.asarray(x, float), lo, hi):
        if pd.notna(a) and pd.notna(b):
            out.append(([xi, xi], [a, b]) if vertical else ([a, b], [xi, xi]))
    return out


def _with_ci(g: pd.DataFrame) -> np.ndarray:
    lo, hi = _ci(g)
    return np.concatenate([g["latency_ms"].astype(float), lo.dropna(), hi.dropna()])


def _stat_name(g: pd.DataFrame) -> str:
    stat = g["statistic"].dropna().astype(str)
    return stat.iloc[0] if len(stat) else "median"


def _series_name(label: str) -> str:
    return label.removeprefix("paper ")


def _scatter_models(ax, x, y, g: pd.DataFrame) -> list:
    """The user's own models as green diamonds, MobileOne as red stars, the others as blue dots; the
    handles, highlighted ones first."""
    yours = g["user"].astype(bool).to_numpy() if "user" in g else np.zeros(len(g), bool)
    mo = g["mobileone"].astype(bool).to_numpy() & ~yours
    x, y = np.asarray(x, float), np.asarray(y, float)
    handles = []
    if yours.any():
        handles.append(ax.scatter(x[yours], y[yours], marker="D", s=70, color=C_USER, edgecolor="white", lw=0.5,
                                  zorder=5, label="your models"))
    if mo.any():
        handles.append(ax.scatter(x[mo], y[mo], marker="*", s=150, color=C_MOBILEONE, edgecolor="white", lw=0.5,
                                  zorder=4, label="MobileOne"))
    rest = ~mo & ~yours
    if rest.any():
        handles.append(ax.scatter(x[rest], y[rest], s=32, color=C_OTHER, edgecolor="white", lw=0.5, zorder=4,
                                  label="other models"))
    return handles


def _label_order(g: pd.DataFrame) -> list:
    """The user's models, then MobileOne: the highlighted points get the nearest spots."""
    yours = g["user"].astype(bool) if "user" in g else pd.Series(False, index=g.index)
    mo = g["mobileone"].astype(bool) & ~yours
    return list(g.index[yours]) + list(g.index[mo]) + list(g.index[~mo & ~yours])


# ---------------------------------------------------------------- figures

@_styled
def accuracy_vs_latency(cells: pd.DataFrame, key: str, out_dir: Path, source: str,
                        formats=FORMATS) -> Written:
    """The paper's Figure 1 style: top-1 vs latency, MobileOne highlighted, the Pareto front drawn."""
    g = _ok(cells)
    g = g[(g["device_key"] == key) & g["top1"].notna()].sort_values("latency_ms")
    label, env = g["device_label"].iloc[0], g["env_label"].iloc[0]
    fig, ax = _new_figure(8.0, 6.2)
    log = set_scale(ax, "x", _with_ci(g))
    lines = []
    handles = []
    front = g[correlate.pareto_front(g["latency_ms"], g["top1"])].sort_values("latency_ms")
    if len(front) > 1:
        # A staircase: from each front model, no better accuracy until the next one's latency.
        sx = np.repeat(front["latency_ms"].to_numpy(), 2)[1:]
        sy = np.repeat(front["top1"].to_numpy(), 2)[:-1]
        handles.append(ax.plot(sx, sy, ls="--", lw=1.0, color=C_FRONT, zorder=2, label="Pareto front")[0])
        lines.append((sx, sy))
    mo = g[g["mobileone"].astype(bool)].sort_values("macs_m")  # S0 -> S4, as the paper draws the family
    if len(mo) > 1:
        ax.plot(mo["latency_ms"], mo["top1"], "-", color=C_MOBILEONE, lw=1.0, alpha=0.6, zorder=3)
        lines.append((mo["latency_ms"], mo["top1"]))
    err = _err(g)
    if err is not None:
        ax.errorbar(g["latency_ms"], g["top1"], xerr=err, fmt="none", ecolor="0.55", alpha=0.7, lw=0.8, zorder=3)
        lines += _err_lines(g["top1"], g, vertical=False)
    handles = _scatter_models(ax, g["latency_ms"], g["top1"], g) + handles
    _pad_limits(ax, "x", _with_ci(g), log, pad=0.12)
    _pad_limits(ax, "y", g["top1"], False, pad=0.12)
    ax.set_xlabel(f"latency (ms, {_stat_name(g)}{', log scale' if log else ''})"
                  + ("; bars: 95% CI" if err is not None else ""))
    ax.set_ylabel("ImageNet top-1 accuracy (%)")
    ax.set_title(f"Top-1 accuracy vs latency: {label}")
    _bottom_legend(fig, handles, [f"{label}: {env}", _not_shown(cells, key)])
    _freeze_layout(fig)
    order = _label_order(g)
    place_labels(ax, g.loc[order, "latency_ms"], g.loc[order, "top1"], g.loc[order, "paper_name"], lines=lines)
    stem = f"accuracy_vs_latency-{slug(_series_name(label))}-{source}"
    return Written("accuracy vs latency", label, _save(fig, out_dir, stem, formats))


@_styled
def latency_vs_complexity(cells: pd.DataFrame, key: str, out_dir: Path, source: str,
                          formats=FORMATS) -> Written:
    """Latency vs MACs and vs params, Spearman rho with p-value and CI in each panel's title."""
    g = _ok(cells)
    g = g[g["device_key"] == key]
    label, env = g["device_label"].iloc[0], g["env_label"].iloc[0]
    corr = correlate.complexity_correlations(g)
    fig, axes = _new_figure(12.0, 6.4, ncols=2, sharey=True)
    ylog = set_scale(axes[0], "y", _with_ci(g))
    handles, lines = [], {}
    err = _err(g)
    for ax, metric, xlabel in ((axes[0], "macs", "MACs (millions, deploy form)"),
                               (axes[1], "params", "parameters (millions, deploy form)")):
        x = g[f"{metric}_m"]
        xlog = set_scale(ax, "x", x)
        if err is not None:
            ax.errorbar(x, g["latency_ms"], yerr=err, fmt="none", ecolor="0.55", alpha=0.7, lw=0.8, zorder=3)
        lines[metric] = _err_lines(x, g, vertical=True)
        handles = _scatter_models(ax, x, g["latency_ms"], g)
        _pad_limits(ax, "x", x, xlog, pad=0.12)
        row = corr[corr["metric"] == metric].iloc[0]
        c = correlate.Correlation(*(float("nan") if row[f] is None or pd.isna(row[f]) else row[f]
                                    for f in ("rho", "p_value", "n", "ci_low", "ci_high")))
        title = f"latency vs {'MACs' if metric == 'macs' else 'parameters'}\n{corr_text(c)}"
        if row["paper_rho"] is not None and not pd.isna(row["paper_rho"]):
            title += (f"\nthe paper's own value ({PLATFORM_SHORT.get(row['platform'], row['platform'])}, its "
                      f"model set): ρ = {row['paper_rho']:.2f}, {_fmt_p(row['paper_p_value'])}")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(xlabel + (", log scale" if xlog else ""))
    _pad_limits(axes[0], "y", _with_ci(g), ylog, pad=0.08)
    axes[0].set_ylabel(f"latency (ms, {_stat_name(g)}{', log scale' if ylog else ''})"
                       + ("; bars: 95% CI" if err is not None else ""))
    axes[1].tick_params(labelleft=True)
    fig.suptitle(f"Latency vs model size on {label}", fontsize=11)
    _bottom_legend(fig, handles, [f"{label}: {env}", _not_shown(cells, key)], width=150)
    _freeze_layout(fig)
    order = _label_order(g)
    for ax, metric in ((axes[0], "macs"), (axes[1], "params")):
        place_labels(ax, g.loc[order, f"{metric}_m"], g.loc[order, "latency_ms"], g.loc[order, "paper_name"],
                     lines=lines[metric])
    stem = f"latency_vs_complexity-{slug(_series_name(label))}-{source}"
    return Written("latency vs MACs and params", label, _save(fig, out_dir, stem, formats))


def _paper_panels(cells: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    data = _ok(cells)
    data = data[(data["source"] != "paper") & data["platform"].apply(lambda p: isinstance(p, str))]
    panels = []
    for key in device_order(data):
        g = data[data["device_key"] == key].copy()
        g["paper_ms"] = pd.to_numeric(pd.Series([row[f"paper_{row['platform']}"] for _, row in g.iterrows()],
                                                index=g.index), errors="coerce")
        g = g[g["paper_ms"].notna()]
        if not g.empty:
            panels.append((key, g))
    return panels


@_styled
def measured_vs_paper(cells: pd.DataFrame, out_dir: Path, source: str, formats=FORMATS) -> Written | None:
    """Ours vs the paper's latency, one panel per measured device with a matching paper platform: log-log, the
    identity line, the median ratio as a dotted line, Spearman rho."""
    panels = _paper_panels(cells)
    if not panels:
        return None
    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    side = 5.0 if max(len(g) for _, g in panels) <= 8 else 6.5  # room for the labels of a full model set
    fig, axes = _new_figure(side * ncols + 0.6, side * nrows + 1.2, nrows=nrows, ncols=ncols, squeeze=False)
    flat = list(axes.flat)
    envs, handles, lines = [], [], {}
    for ax, (key, g) in zip(flat, panels):
        label, platform = g["device_label"].iloc[0], g["platform"].iloc[0]
        short = PLATFORM_SHORT[platform]
        envs.append(f"{label}: {g['env_label'].iloc[0]}")
        both = np.concatenate([g["paper_ms"], _with_ci(g)])
        lo, hi = both.min() / 1.6, both.max() * 1.6
        set_scale(ax, "x", both, force_log=True)
        set_scale(ax, "y", both, force_log=True)
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_aspect("equal", adjustable="box")
        diag = np.array([lo, hi])
        ratio = float((g["latency_ms"] / g["paper_ms"]).median())
        h_id = ax.plot(diag, diag, "-", color="0.6", lw=1.0, zorder=1, label="ours = paper")[0]
        h_ratio = ax.plot(diag, diag * ratio, ":", color=C_FRONT, lw=1.2, zorder=1,
                          label="ours = median ratio × paper")[0]
        err = _err(g)
        if err is not None:
            ax.errorbar(g["paper_ms"], g["latency_ms"], yerr=err, fmt="none", ecolor="0.55", alpha=0.7, lw=0.8)
        lines[key] = [(diag, diag), (diag, diag * ratio)] + _err_lines(g["paper_ms"], g, vertical=True)
        handles = _scatter_models(ax, g["paper_ms"], g["latency_ms"], g) + [h_id, h_ratio]
        c = correlate.spearman(g["paper_ms"], g["latency_ms"])
        ax.set_title(f"{label} vs paper {short}: median ratio {ratio:.2g}×\n{corr_text(c)}", fontsize=9)
        ax.set_xlabel(f"paper {short} latency (ms, log scale)")
        ax.set_ylabel(f"{label} latency (ms, {_stat_name(g)}, log scale)")
    for ax in flat[len(panels):]:
        ax.set_visible(False)
    fig.suptitle("Measured latency vs the MobileOne paper's Table 1", fontsize=11)
    _bottom_legend(fig, handles, envs, width=130)
    _freeze_layout(fig)
    for ax, (key, g) in zip(flat, panels):
        order = _label_order(g)
        place_labels(ax, g.loc[order, "paper_ms"], g.loc[order, "latency_ms"], g.loc[order, "paper_name"],
                     lines=lines[key])
    return Written("measured vs paper", "", _save(fig, out_dir, f"measured_vs_paper-{source}", formats))


@_styled
def rank_agreement_heatmap(cells: pd.DataFrame, out_dir: Path, source: str,
                           formats=FORMATS) -> Written | None:
    """Spearman rho between every pair of series (devices and the paper's platforms) over shared models."""
    wide = correlate.latency_series(cells, with_paper=True)
    if wide.shape[1] < 2:
        return None
    rho, n = correlate.rank_agreement(wide)
    labels = list(rho.columns)
    size = max(4.5, 0.9 * len(labels) + 2.4)
    fig, ax = _new_figure(size + 1.4, size + 1.0)
    from matplotlib import colormaps
    cmap = colormaps["RdBu"].with_extremes(bad="0.92")
    im = ax.imshow(np.ma.masked_invalid(rho.to_numpy(float)), cmap=cmap, vmin=-1, vmax=1)
    ax.grid(False)
    ax.set_xticks(range(len(labels)), labels, rotation=35, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(len(labels)), labels)
    for spine in ax.spines.values():
        spine.set_visible(False)
    for i in range(len(labels)):
        for j in range(len(labels)):
            v, k = rho.iat[i, j], int(n.iat[i, j])
            if math.isnan(v):
                text, color = f"n/a\nn = {k}", "0.4"
            else:
                text, color = f"{v:.2f}\nn = {k}", "white" if abs(v) > 0.6 else "0.1"
            ax.text(j, i, text, ha="center", va="center", fontsize=7.5, color=color)
    cbar = fig.colorbar(im, ax=ax, shrink=0.8)
    cbar.set_label("Spearman ρ between latency rankings")
    between = ("the paper's platforms" if all(lbl.startswith("paper ") for lbl in labels)
               else "devices and the paper's platforms")
    # A figure title: constrained layout leaves room for it, which it does not always for an axes title
    # over an image of fixed aspect.
    fig.suptitle(f"Rank agreement between {between}\n(each pair over the models both have; n/a: fewer than "
                 "3 models)", fontsize=10)
    envs = [f"{lbl}: {e}" for lbl, e in cells.drop_duplicates("device_label")[["device_label", "env_label"]]
            .itertuples(index=False) if lbl in labels]
    known = {e.split(":")[0] for e in envs}
    envs += [f"paper {PLATFORM_SHORT[p]}: {PAPER_PLATFORMS[p]}, MobileOne paper Table 1"
             for p in PAPER_PLATFORMS if f"paper {PLATFORM_SHORT[p]}" in labels
             and f"paper {PLATFORM_SHORT[p]}" not in known]
    _bottom_legend(fig, [], envs, width=int(size * 16))
    return Written("rank agreement", "", _save(fig, out_dir, f"rank_agreement-{source}", formats))


@_styled
def reparam_ablation(cells: pd.DataFrame, key: str, out_dir: Path, source: str,
                     formats=FORMATS) -> Written | None:
    """Deploy vs train form per model on one device: what the reparameterization buys."""
    ab = correlate.ablation_frame(cells)
    ab = ab[ab["device_key"] == key].sort_values("order", ascending=False)  # paper order, top to bottom
    if ab.empty:
        return None
    label, env = ab["device_label"].iloc[0], ab["env_label"].iloc[0]
    fig, ax = _new_figure(8.5, 2.0 + 0.6 * len(ab))
    y = np.arange(len(ab))
    hb = 0.38
    bars = []
    for offset, form, color, name in ((hb / 2, "deploy", C_OTHER, "deploy form (reparameterized)"),
                                      (-hb / 2, "train", C_TRAIN, "train form (multi-branch)")):
        lat = ab[f"{form}_ms"].astype(float)
        lo = pd.to_numeric(ab[f"{form}_ci_low_ms"], errors="coerce")
        hi = pd.to_numeric(ab[f"{form}_ci_high_ms"], errors="coerce")
        err = None if lo.isna().all() else np.vstack([(lat - lo).clip(lower=0).fillna(0),
                                                      (hi - lat).clip(lower=0).fillna(0)])
        bars.append(ax.barh(y + offset, lat, height=hb, color=color, label=name, xerr=err,
                            error_kw=dict(ecolor="0.25", lw=0.8, capsize=2)))
    values = np.concatenate([ab["deploy_ms"], ab["train_ms"],
                             pd.to_numeric(ab["deploy_ci_high_ms"], errors="coerce").dropna(),
                             pd.to_numeric(ab["train_ci_high_ms"], errors="coerce").dropna()])
    log = set_scale(ax, "x", values)
    top = values.max() * (3.5 if log else 1.35)
    ax.set_xlim((min(ab["deploy_ms"].min(), ab["train_ms"].min()) / 2) if log else 0, top)
    ci_high = pd.concat([pd.to_numeric(ab["deploy_ci_high_ms"], errors="coerce"),
                         pd.to_numeric(ab["train_ci_high_ms"], errors="coerce"), ab["deploy_ms"], ab["train_ms"]],
                        axis=1).max(axis=1)
    for yi, (_, row), right in zip(y, ab.iterrows(), ci_high):
        ax.text(right * (1.1 if log else 1.02), yi, f"train / deploy = {row['speedup']:.2f}×", va="center",
                fontsize=8)
    ax.set_yticks(y, ab["paper_name"])
    ax.grid(axis="y", visible=False)
    ax.set_xlabel(f"latency (ms, {_stat_name(cells[cells['device_key'] == key])}"
                  f"{', log scale' if log else ''}; bars: 95% CI)")
    ax.set_title(f"Reparameterization ablation on {label}: train form vs deploy form")
    _bottom_legend(fig, bars, [f"{label}: {env}"], ncol=2)
    stem = f"reparam_ablation-{slug(_series_name(label))}-{source}"
    return Written("reparameterization ablation", label, _save(fig, out_dir, stem, formats))


def plot_all(ds: Dataset, out_dir: Path, formats=FORMATS) -> tuple[list[Written], list[str]]:
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
            written.append(accuracy_vs_latency(cells, key, out_dir, ds.source, formats))
        written.append(latency_vs_complexity(cells, key, out_dir, ds.source, formats))
        w = reparam_ablation(cells, key, out_dir, ds.source, formats)
        if w:
            written.append(w)
        elif not ds.paper:
            skipped.append(f"reparameterization ablation on {label}: no train-form results "
                           "(measure them with bench run --both-forms)")
    if ds.paper:
        skipped.append("measured vs paper: --paper has no measurements to compare")
    else:
        w = measured_vs_paper(cells, out_dir, ds.source, formats)
        if w:
            written.append(w)
        else:
            skipped.append("measured vs paper: no measured device has a matching paper platform "
                           "(cpu, torch, trt, cuda, coreml, iphone, tflite, android)")
    w = rank_agreement_heatmap(cells, out_dir, ds.source, formats)
    if w:
        written.append(w)
    else:
        skipped.append("rank agreement: needs two or more series")
    return written, skipped
