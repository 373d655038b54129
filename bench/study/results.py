"""The study's figures as frames and typed rows: all stages' cells pooled, then Table 1, the complexity
correlations, the CPU sweep (Spearman with the paper's x86 column and the cost fit), the reparameterization and
the ablations, and the "what reproduced" list computed from them. Only `pool_cells` reads files.

Cells flagged contended or unstable (bench.core.result.untrustworthy) are kept in the tables, marked, and left
out of every correlation and fit.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bench import zoo
from bench.analysis.correlate import Correlation, paper_claims, pareto_front, spearman
from bench.analysis.costfit import CostFit, fit_costs
from bench.core.result import untrustworthy
from bench.store import load_run
from bench.study import manifest as mf
from bench.study.plan import RUNTIME_LABEL, SweepConfig

X86 = "cpu_x86_ms"
COLUMNS = ["stage", "model", "device", "form", "threads", "status", "latency_ms", "ci_low_ms", "ci_high_ms",
           "flagged", "flags", "error", "macs_m", "params_m"]


def pool_cells(out: Path, manifest: mf.Manifest) -> pd.DataFrame:
    """Every cell of every stage's run file, one row each (the stage that measured it named)."""
    rows = []
    for record in manifest.stages:
        if not record.run or not (Path(out) / record.run).is_file():
            continue
        run = load_run(Path(out) / record.run)
        for c in run.cells:
            s = c.summary
            rows.append({"stage": record.name, "model": c.model, "device": c.device, "form": c.form,
                         "threads": c.threads, "status": c.status,
                         "latency_ms": s.latency_ms if (s and c.status == "ok") else math.nan,
                         "ci_low_ms": s.ci_low_ms if s else None, "ci_high_ms": s.ci_high_ms if s else None,
                         "flagged": untrustworthy(c.flags), "flags": ",".join(c.flags), "error": c.error or "",
                         "macs_m": (c.model_info or {}).get("macs_m"), "params_m": (c.model_info or {}).get("params_m")})
    return pd.DataFrame(rows, columns=COLUMNS)


@dataclass(frozen=True)
class Value:
    """One measured cell as a table shows it: latency, or why there is none."""
    ms: float | None
    flagged: bool = False
    error: str = ""

    @property
    def usable(self) -> bool:
        return self.ms is not None and not self.flagged


def lookup(cells: pd.DataFrame, model: str, device: str, form: str, threads: int | None) -> Value | None:
    """The cell of (model, device, form, threads); a model with nothing to fuse has one network, so its train
    form is its deploy cell. threads None: any (all-cores stages record the cores they ran on)."""
    if form == "train" and not zoo.resolve(model).reparameterizable:
        form = "deploy"
    g = cells[(cells["model"] == model) & (cells["device"] == device) & (cells["form"] == form)]
    if threads is not None:
        g = g[g["threads"] == threads]
    if g.empty:
        return None
    ok = g[g["status"] == "ok"]
    if ok.empty:
        return Value(None, error=str(g.iloc[-1]["error"]))
    clean = ok[~ok["flagged"]]
    row = (clean if not clean.empty else ok).iloc[-1]
    return Value(float(row["latency_ms"]), bool(row["flagged"]))


def paper_ms(model: str, column: str = X86) -> float | None:
    return zoo.resolve(model).paper_latency_ms.get(column)


@dataclass(frozen=True)
class SweepRow:
    config: SweepConfig
    n_measured: int  # models with an ok cell
    n_flagged: int  # of those, flagged (left out of rho and the fit)
    rho: Correlation  # with the paper's x86 column, over the usable cells
    fit: CostFit  # ours: latency = a + b*MACs + c*operators
    median_ratio: float | None  # ours / paper
    rho_all: Correlation  # the same with flagged cells kept (read with care: shown because a shared machine flags many)


def sweep_rows(cells: pd.DataFrame, configs: list[SweepConfig], models: list[str], macs: dict[str, float],
               ops: dict[str, int | None]) -> list[SweepRow]:
    rows = []
    for cfg in configs:
        ours, paper, m_macs, m_ops = [], [], [], []
        all_ours, all_paper = [], []
        measured = flagged = 0
        # A train-form configuration is only measured once its reparameterizable models are: the baselines'
        # deploy cells alone would pass for it.
        fused = [m for m in models if zoo.resolve(m).reparameterizable]
        if cfg.form == "train" and not any(lookup(cells, m, cfg.device, "train", cfg.threads) for m in fused):
            models_here = []
        else:
            models_here = models
        for model in models_here:
            v = lookup(cells, model, cfg.device, cfg.form, cfg.threads)
            if v is None or v.ms is None:
                continue
            measured += 1
            all_ours.append(v.ms)
            all_paper.append(paper_ms(model) or math.nan)
            if v.flagged:
                flagged += 1
                continue
            ours.append(v.ms)
            paper.append(paper_ms(model) or math.nan)
            m_macs.append(macs.get(model, math.nan))
            m_ops.append(ops.get(model) if ops.get(model) is not None else math.nan)
        ours_a, paper_a = np.array(ours, float), np.array(paper, float)
        ratio = ours_a / paper_a
        ratio = ratio[np.isfinite(ratio)]
        rows.append(SweepRow(cfg, measured, flagged, spearman(ours_a, paper_a), fit_costs(ours_a, m_macs, m_ops),
                             float(np.median(ratio)) if len(ratio) else None, spearman(all_ours, all_paper)))
    return rows


def paper_fit(models: list[str], macs: dict[str, float], ops: dict[str, int | None]) -> CostFit:
    return fit_costs([paper_ms(m) or math.nan for m in models], [macs.get(m, math.nan) for m in models],
                     [ops.get(m) if ops.get(m) is not None else math.nan for m in models])


def best_sweep(rows: list[SweepRow]) -> SweepRow | None:
    """The configuration whose ranking agrees best with the paper's x86 column (highest rho), among those whose
    rho covers at least 80% of the models the best-covered one does (a rho over a few clean cells is not
    comparable with one over all of them)."""
    scored = [r for r in rows if not math.isnan(r.rho.rho)]
    if not scored:
        return None
    most = max(r.rho.n for r in scored)
    return max((r for r in scored if r.rho.n >= 0.8 * most), key=lambda r: r.rho.rho)


@dataclass(frozen=True)
class ComplexityRow:
    series: str  # a device, or "paper x86 CPU"
    metric: str  # macs | params
    ours: Correlation | None
    paper_rho: float | None


def complexity_rows(cells: pd.DataFrame, devices: tuple[str, ...], models: list[str], macs: dict[str, float],
                    params: dict[str, float], threads: int) -> list[ComplexityRow]:
    """Spearman of latency with MACs and with params, per device (deploy form, all cores), and the paper's own
    (Table 1(a), x86 CPU) next to it; the paper's column recomputed from its latencies too."""
    claims = paper_claims()
    rows = []
    for metric, counts in (("macs", macs), ("params", params)):
        claim = claims.get((X86, metric), (None, None))[0]
        xs = [paper_ms(m) for m in models]
        paper_c = spearman([x if x is not None else math.nan for x in xs], [counts.get(m, math.nan) for m in models])
        rows.append(ComplexityRow("paper x86 CPU (its Table 1 latencies)", metric, paper_c, claim))
        for d in devices:
            vals = [lookup(cells, m, d, "deploy", threads) for m in models]
            lat = [v.ms if v is not None and v.usable else math.nan for v in vals]
            rows.append(ComplexityRow(d, metric, spearman(lat, [counts.get(m, math.nan) for m in models]), claim))
    return rows


@dataclass(frozen=True)
class ParetoCheck:
    device: str
    off_front: tuple[str, ...]  # MobileOne models that another model beats on both latency and top-1 here
    beaten_by: tuple[str, ...]  # for each, one model that beats it


def pareto_checks(cells: pd.DataFrame, devices: tuple[str, ...], models: list[str], threads: int) -> list[ParetoCheck]:
    out = []
    for d in devices:
        vals = {m: lookup(cells, m, d, "deploy", threads) for m in models}
        names = [m for m in models if vals[m] is not None and vals[m].usable and zoo.resolve(m).top1 is not None]
        if len(names) < 2:
            continue
        lat = np.array([vals[m].ms for m in names])
        acc = np.array([zoo.resolve(m).top1 for m in names])
        front = pareto_front(lat, acc)
        off, by = [], []
        for i, m in enumerate(names):
            if zoo.resolve(m).family == "mobileone" and not front[i]:
                better = [j for j in range(len(names)) if lat[j] <= lat[i] and acc[j] >= acc[i] and j != i]
                off.append(m)
                by.append(names[min(better, key=lambda j: lat[j])] if better else "")
        out.append(ParetoCheck(d, tuple(off), tuple(by)))
    return out


@dataclass(frozen=True)
class ReparamRow:
    device: str
    model: str
    deploy: Value | None
    train: Value | None

    @property
    def speedup(self) -> float | None:
        if self.deploy and self.train and self.deploy.ms and self.train.ms:
            return self.train.ms / self.deploy.ms
        return None


def reparam_rows(cells: pd.DataFrame, devices: tuple[str, ...], models: list[str], threads: int) -> list[ReparamRow]:
    return [ReparamRow(d, m, lookup(cells, m, d, "deploy", threads), lookup(cells, m, d, "train", threads))
            for d in devices for m in models]


@dataclass(frozen=True)
class AblationRow:
    device: str
    model: str
    variant: str  # relu, gelu, ... / plain, se, skip
    value: Value | None
    relative: float | None  # latency / the group's baseline (relu, or plain) on the same device
    flagged: bool = False  # the variant's cell or the baseline's is flagged: shown marked, never judged


def ablation_rows(cells: pd.DataFrame, devices: tuple[str, ...], models: list[str], prefix: str, baseline: str,
                  threads: int) -> list[AblationRow]:
    rows = []
    group = [m for m in models if m.startswith(prefix)]
    for d in devices:
        base = lookup(cells, prefix + baseline, d, "deploy", threads) if prefix + baseline in group else None
        for m in group:
            v = lookup(cells, m, d, "deploy", threads)
            rel = (v.ms / base.ms) if (v and v.ms and base and base.ms) else None
            rows.append(AblationRow(d, m, m.removeprefix(prefix), v, rel,
                                    bool(rel is not None and (v.flagged or base.flagged))))
    return rows


def verdicts(sweep: list[SweepRow], paper: CostFit, complexity: list[ComplexityRow], reparam: list[ReparamRow],
             act: list[AblationRow], block: list[AblationRow], pareto: list[ParetoCheck]) -> list[tuple[bool, str]]:
    """(reproduced?, sentence) for each claim the figures can speak to; claims without data are not listed."""
    out: list[tuple[bool, str]] = []
    best = best_sweep(sweep)
    kept = [r for r in sweep if not math.isnan(r.rho_all.rho)]
    if best is None and kept:
        top = max(kept, key=lambda r: r.rho_all.rho)
        flagged = sum(r.n_flagged for r in sweep)
        measured = sum(r.n_measured for r in sweep)
        out.append((False, f"Ranking of the paper's x86 CPU column: not judged, {flagged} of {measured} sweep cells "
                           "were flagged (the machine was shared) and too few clean ones are left; with the flagged "
                           f"cells kept the best is {top.config.label}, Spearman {top.rho_all.rho:.2f} (n={top.rho_all.n}),"
                           " to be confirmed on a quiet machine"))
    if best is not None:
        r = best.rho
        out.append((r.ci_low >= 0.9 if not math.isnan(r.ci_low) else False,
                    f"Ranking of the paper's x86 CPU column: best here is {best.config.label}, Spearman "
                    f"{r.rho:.2f} (95% CI {r.ci_low:.2f} to {r.ci_high:.2f}, n={r.n}); reproduced means the CI's "
                    "lower end is at least 0.90"))
    if not math.isnan(paper.op_share) and best is not None and not math.isnan(best.fit.op_share):
        out.append((abs(best.fit.op_share - paper.op_share) <= 0.15,
                    f"Per-operator share of latency: the paper's x86 column {paper.op_share:.0%} "
                    f"(c = {paper.c_us_per_op:.0f} us/op), ours at {best.config.label} {best.fit.op_share:.0%} "
                    f"(c = {best.fit.c_us_per_op:.0f} us/op); reproduced means within 15 points"))
    # Against the rho of the paper's own x86 latencies over the same models and counts (its published Table 1(a)
    # figure is over another model set and counts, and is shown beside it in the table).
    paper_macs = next((r.ours for r in complexity if r.metric == "macs" and r.series.startswith("paper")), None)
    for row in complexity:
        if row.metric == "macs" and paper_macs is not None and not math.isnan(paper_macs.rho) and \
                row.ours is not None and not row.series.startswith("paper") and not math.isnan(row.ours.rho):
            out.append((abs(row.ours.rho - paper_macs.rho) <= 0.2,
                        f"Latency vs MACs on {row.series}: Spearman {row.ours.rho:.2f} here, {paper_macs.rho:.2f} "
                        "from the paper's x86 latencies over the same models; reproduced means within 0.2"))
    for check in pareto:
        if check.off_front:
            pairs = ", ".join(f"{m} (beaten by {b})" for m, b in zip(check.off_front, check.beaten_by))
            out.append((False, f"MobileOne on the accuracy-latency Pareto front on {check.device}: off it here: {pairs}"))
        else:
            out.append((True, f"MobileOne on the accuracy-latency Pareto front on {check.device}: every MobileOne "
                              "model measured is on it"))
    by_device: dict[str, list[float]] = {}
    for row in reparam:
        if row.speedup is not None and row.deploy.usable and row.train.usable and \
                zoo.resolve(row.model).family == "mobileone":
            by_device.setdefault(row.device, []).append(row.speedup)
    for device, speedups in by_device.items():
        out.append((min(speedups) > 1.0, f"Reparameterization makes MobileOne faster on {device}: train/deploy "
                                         f"{min(speedups):.2f}x to {max(speedups):.2f}x over {len(speedups)} models"))
    for rows, name, heavy in ((act, "activation", ("dyshiftmax", "dyrelu_a", "dyrelu_b")),
                              (block, "block", ("se", "skip"))):
        for device in dict.fromkeys(r.device for r in rows):
            rel = {r.variant: r.relative for r in rows
                   if r.device == device and r.relative is not None and not r.flagged}
            slow = {v: rel[v] for v in heavy if v in rel}
            if slow:
                text = ", ".join(f"{v} {x:.2f}x" for v, x in slow.items())
                out.append((all(x > 1.05 for x in slow.values()),
                            f"The paper's {name} ablation (costlier variants are slower than the "
                            f"{'ReLU' if name == 'activation' else 'plain'} network) on {device}: {text}; "
                            "reproduced means each above 1.05x"))
    return out


def runtime_label(device: str) -> str:
    return RUNTIME_LABEL.get(device, device)
