"""`bench table`, `bench plot`, `bench analyze`: results (or the paper's Table 1) as tables, figures and
correlations."""
from __future__ import annotations

import fnmatch
import math
import sys
from dataclasses import replace
from pathlib import Path

from bench.analysis.correlate import EXACT_P_MAX_N, analysis_frames, records
from bench.analysis.frames import PLATFORM_SHORT, Dataset, load_dataset
from bench.analysis.plots import plot_all
from bench.analysis.tables import EXTENSIONS, build_table, render
from bench.commands import print_json
from bench.config import load_config
from bench.console import print_table
from bench.core.errors import UserError
from bench.core.io import atomic_write_text
from bench.core.result import untrustworthy

TABLES_DIR = Path("results/tables")
PLOTS_DIR = Path("results/plots")


def _dataset(args, keep_all: bool = False):

    if args.paper:
        if args.results:
            raise UserError("--paper uses the paper's Table 1 alone; drop --results, or drop --paper to use them")
        return load_dataset(None, Path("."), paper=True)
    return load_dataset(args.results, load_config(None).out_dir, keep_all=keep_all)


def cmd_table(args) -> int:

    ds = _dataset(args, keep_all=args.all)
    table = build_table(ds.cells, ds.models, sort=args.sort, paper=ds.paper)
    text = render(table, args.format)
    out = Path(args.out) if args.out else TABLES_DIR / f"latency-{ds.source}.{EXTENSIONS[args.format]}"
    _write(out, text, atomic_write_text)
    sys.stdout.write(text)
    print(f"table written to {out}", file=sys.stderr)
    return 0


def _write(path: Path, text: str, writer) -> None:
    try:
        writer(path, text)
    except OSError as e:
        raise UserError(f"cannot write {path}: {e.strerror}; pass a writable --out") from None


def cmd_plot(args) -> int:

    ds = highlighted(_dataset(args), args.highlight)
    out_dir = Path(args.out) if args.out else PLOTS_DIR
    try:
        written, skipped = plot_all(ds, out_dir)
    except OSError as e:
        raise UserError(f"cannot write figures to {out_dir}: {e.strerror}; pass a writable --out DIR") from None
    for w in written:
        print(f"{w.what}{' (' + w.series + ')' if w.series else ''}: {', '.join(map(str, w.paths))}")
    for reason in skipped:
        print(f"skipped: {reason}", file=sys.stderr)
    return 0


def highlighted(ds: Dataset, pattern: str | None) -> Dataset:
    """The dataset with the models `pattern` names marked like the user's own (drawn as green diamonds)."""
    if not pattern:
        return ds
    terms = [t.strip() for t in pattern.split(",") if t.strip()]
    names = set(ds.cells["model"]) | set(ds.models["model"])
    chosen = {n for n in names if any(fnmatch.fnmatchcase(n, term) for term in terms)}
    if not chosen:
        raise UserError(f"--highlight {pattern!r} matches none of the models shown: {', '.join(sorted(names))}")
    mark = lambda frame: frame.assign(user=frame["user"].astype(bool) | frame["model"].isin(chosen))  # noqa: E731
    return replace(ds, cells=mark(ds.cells), models=mark(ds.models))


def _num(v, fmt: str = ".2f") -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, fmt)


def _rho(row) -> str:
    if row["rho"] is None or math.isnan(row["rho"]):
        return "n/a"
    ci = "" if row["ci_low"] is None or math.isnan(row["ci_low"]) else \
        f" [{row['ci_low']:.2f}, {row['ci_high']:.2f}]"
    return f"{row['rho']:.2f}{ci}"


def _p(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return "<0.001" if v < 0.001 else f"{v:.2g}"


def without_flagged(ds: Dataset) -> tuple[Dataset, int]:
    """The dataset without the cells flagged contended or unstable (numbers a quiet machine might not
    reproduce), and how many were left out."""
    flags = ds.cells["flags"].fillna("").astype(str) if "flags" in ds.cells else None
    if flags is None:
        return ds, 0
    bad = flags.map(lambda text: untrustworthy([f.strip() for f in text.split(",") if f.strip()]))
    return replace(ds, cells=ds.cells[~bad]), int(bad.sum())


def cmd_analyze(args) -> int:
    ds = _dataset(args)
    dropped = 0
    if not args.include_flagged:
        ds, dropped = without_flagged(ds)
    if dropped:
        print(f"left out {dropped} cell(s) flagged contended or unstable (--include-flagged keeps them)",
              file=sys.stderr)
    frames = analysis_frames(ds.cells)
    if args.json:
        rho, n = frames["rank_agreement_rho"], frames["rank_agreement_n"]
        print_json({
            "source": ds.source, "paper": ds.paper,
            "complexity": records(frames["complexity"]), "paper_agreement": records(frames["paper_agreement"]),
            "rank_agreement": {"series": list(rho.columns),
                               "rho": [[None if math.isnan(v) else v for v in row] for row in rho.to_numpy(float)],
                               "n": n.to_numpy(int).tolist()},
            "gflops": records(frames["gflops"]), "ablation": records(frames["ablation"])})
        return 0
    what = "the MobileOne paper's Table 1" if ds.paper else f"results {ds.source}, deploy form"

    comp = frames["complexity"]
    rows = []
    for key, g in comp.groupby("device_key", sort=False):
        macs, params = g[g["metric"] == "macs"].iloc[0], g[g["metric"] == "params"].iloc[0]
        paper = (f"{macs['paper_rho']:.2f} (p {_p(macs['paper_p_value'])}) / "
                 f"{params['paper_rho']:.2f} (p {_p(params['paper_p_value'])})"
                 if macs["paper_rho"] is not None and not math.isnan(macs["paper_rho"]) else "")
        rows.append([macs["device_label"], str(macs["n"]), _rho(macs), _p(macs["p_value"]), _rho(params),
                     _p(params["p_value"]), paper])
    print_table(["device", "n", "ρ vs MACs [95% CI]", "p", "ρ vs params [95% CI]", "p",
                 "paper's ρ vs FLOPs / params"], rows,
                title=f"Spearman rank correlation of latency with MACs and params ({what})",
                footnotes=[f"p: two-sided; exact permutation p up to n = {EXACT_P_MAX_N}, t approximation above. "
                           "CI: bootstrap over models (pairs), 4000 resamples, fixed seed.",
                           "The paper's own values are over its own model set and counts (Table 1(a)); ours "
                           "use the MACs and params counted here of the deploy form."])

    agree = frames["paper_agreement"]
    if len(agree):
        print_table(["device", "paper platform", "n", "ρ [95% CI]", "p", "median ours / paper"],
                    [[r["device_label"], PLATFORM_SHORT[r["platform"]], str(r["n"]), _rho(r), _p(r["p_value"]),
                      _num(r["median_ratio"], ".2f") + "x"] for r in records(agree)],
                    title="Do our latencies rank the models as the paper's do? (Spearman over shared models)")

    gf = frames["gflops"]
    if len(gf):
        devices = list(dict.fromkeys(gf["device_label"]))
        cells = {(r["paper_name"], r["device_label"]): r for r in records(gf)}
        rows = []
        for model in dict.fromkeys(gf["paper_name"]):
            row = [model]
            for d in devices:
                r = cells.get((model, d))
                row.append("" if r is None else _num(r["gflops"], ".1f") + (
                    f" ({r['pct_of_peak']:.0f}%)" if r["pct_of_peak"] is not None else ""))
            rows.append(row)
        peaks = []
        for d in devices:
            g = gf[gf["device_label"] == d]
            peak = g["peak_gflops"].dropna()
            if len(peak):
                source = str(g["roofline"].dropna().iloc[0]) if "roofline" in g and g["roofline"].notna().any() \
                    else "GEMM peak"
                peaks.append(f"{d}: roofline {peak.iloc[0]:.1f} GFLOP/s ({source}) at "
                             f"{int(g['matmul_peak_threads'].dropna().iloc[0])} threads")
        with_peak = {d for d in devices if gf.loc[gf["device_label"] == d, "peak_gflops"].notna().any()}
        print_table(["model"] + [f"{d} GFLOP/s" + (" (% of peak)" if d in with_peak else "") for d in devices],
                    rows, title="Achieved throughput: 2 x MACs / latency, in GFLOP/s",
                    footnotes=peaks + (["roofline: the best fp32 1024x1024 matrix multiply of ONNX Runtime or torch.mm at "
                                        "the run's threads on the host CPU, or a cell that went past it; for the "
                                        "devices that run on that CPU, so no share exceeds 100%."]
                                       if peaks else []))

    ab = frames["ablation"]
    if len(ab):
        print_table(["model", "device", "deploy (ms)", "train (ms)", "train / deploy"],
                    [[r["paper_name"], r["device_label"], _num(r["deploy_ms"]), _num(r["train_ms"]),
                      _num(r["speedup"]) + "x"] for r in records(ab)],
                    title="Reparameterization: train form vs deploy form")
    return 0


def _results_arguments(p) -> None:
    p.add_argument("--results", nargs="+", action="extend", metavar="PATH",
                   help="results files or folders, merged (default: every run in bench.toml's out folder, "
                        "results/runs)")
    p.add_argument("--paper", action="store_true",
                   help="use the paper's Table 1 alone instead of results (no hardware needed)")


def register(sub) -> None:
    p = sub.add_parser("table", help="our latencies next to the paper's Table 1 (Markdown, CSV or LaTeX)")
    _results_arguments(p)
    p.add_argument("--format", choices=("md", "csv", "latex"), default="md", help="output format (default md)")
    p.add_argument("--sort", metavar="COLUMN",
                   help="order rows by order (the paper's, default), model, top1, params, macs, or a device "
                        "column (e.g. cpu)")
    p.add_argument("--all", action="store_true",
                   help="keep every run's result as its own column instead of the newest per model and device")
    p.add_argument("--out", metavar="FILE", help="where to write it (default: results/tables/latency-<run>.<ext>)")
    p.set_defaults(func=cmd_table)

    p = sub.add_parser("plot", help="figures: accuracy vs latency, latency vs MACs/params, ours vs the paper, "
                                    "rank agreement, reparameterization ablation (PNG and SVG)")
    _results_arguments(p)
    p.add_argument("--out", metavar="DIR", help="folder for the figures (default: results/plots)")
    p.add_argument("--highlight", metavar="PATTERN",
                   help="also highlight these models (comma-separated names or wildcards) as your own; models "
                        "declared in bench.toml, --model-file or entry points always are")
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("analyze", help="Spearman of latency vs MACs and params, agreement with the paper, "
                                       "achieved GFLOP/s")
    _results_arguments(p)
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    p.add_argument("--include-flagged", action="store_true",
                   help="keep cells flagged contended or unstable (left out by default)")
    p.set_defaults(func=cmd_analyze)
