"""The paper's Table 1 side by side with ours: a table built from the tidy cells, rendered as Markdown, CSV or
LaTeX. Building and rendering are pure; the CLI writes the text."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

import pandas as pd

from bench.analysis.frames import PLATFORM_SHORT, device_order
from bench.core.device import PAPER_PLATFORMS
from bench.core.errors import UserError

FORMATS = ("md", "csv", "latex")
FLAGS_MARKED = ("contended", "unstable", "precision-not-reached")
FLAG_MEANING = {"contended": "contended = other processes loaded the CPU during some rounds",
                "unstable": "unstable = the rounds drifted or split into two levels",
                "precision-not-reached": "precision-not-reached = the CI stayed wider than the protocol's target"}


@dataclass(frozen=True)
class Column:
    header: str  # as a reader sees it
    field: str  # the frame column it shows
    kind: str  # text | num0 | num1 | num2 | ms | latency | ratio


@dataclass(frozen=True, eq=False)
class LatencyTable:
    title: str
    frame: pd.DataFrame  # machine-readable, one row per model (what CSV writes)
    columns: tuple[Column, ...]  # what Markdown and LaTeX show
    footnotes: tuple[str, ...]


def fmt_ms(v) -> str:
    """Latencies from 0.5 ms to seconds, to the precision the paper prints them."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return f"{v:.1f}" if abs(v) >= 100 else f"{v:.2f}"


def _text(series: pd.Series) -> pd.Series:
    """Strings, with '' where there is nothing (a column of only missing values is float in pandas)."""
    return series.astype(object).where(series.notna(), "")


def _isnan(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def build_table(cells: pd.DataFrame, models: pd.DataFrame, *, sort: str | None = None,
                paper: bool = False) -> LatencyTable:
    """Rows: the models in the paper's order. Columns: top-1, params, MACs, then per device our latency with its
    95% CI and its ratio to the paper's figure, and the paper's figure for the matching platform (once, after
    the last device compared with it). Train-form results add a column and their ratio to the deploy form."""

    models = models.sort_values("order")
    frame = models[["model", "paper_name", "top1", "params_m", "macs_m"]].reset_index(drop=True).copy()
    columns = [Column("model", "paper_name", "text"), Column("top-1 (%)", "top1", "num1"),
               Column("params (M)", "params_m", "num2"), Column("MACs (M)", "macs_m", "num0")]
    footnotes: list[str] = []
    errors: dict[str, int] = {}  # failure reason -> footnote number
    flagged: set[str] = set()
    groups = [(k, f) for k in device_order(cells) for f in ("deploy", "train")
              if ((cells["device_key"] == k) & (cells["form"] == f)).any()]
    platform_of = {(k, f): _platform(cells, k) if f == "deploy" else None for k, f in groups}
    last_of_platform = {p: i for i, (k, f) in enumerate(groups) if (p := platform_of[(k, f)])}
    for i, (key, form) in enumerate(groups):
        g = cells[(cells["device_key"] == key) & (cells["form"] == form)].set_index("model")
        first = g.iloc[0]
        label = first["device_label"] + (", train form" if form == "train" else "")
        flagged |= _latency_columns(frame, g, label, errors)
        if first["source"] == "paper":
            columns.append(Column(f"{label} (ms)", label, "latency"))
            footnotes.append(f"{label}: {first['env_label']}")
            continue
        stats = g["statistic"].dropna()
        columns.append(Column(f"{label} ({stats.iloc[0] if len(stats) else 'median'}, 95% CI)", label, "latency"))
        protocols = ", ".join(sorted({p for p in g["protocol"].dropna() if p})) if "protocol" in g else ""
        footnotes.append(f"{label}: {first['env_label']}" + (f"; protocol {protocols}" if protocols else ""))
        deploy_col = f"{first['device_label']} ms"
        if form == "train" and deploy_col in frame:
            frame[f"{label} / deploy"] = frame[f"{label} ms"] / frame[deploy_col]
            columns.append(Column("train / deploy", f"{label} / deploy", "ratio"))
        platform = platform_of[(key, form)]
        if platform:
            short = PLATFORM_SHORT[platform]
            paper_col = f"paper {short} ms"
            frame[paper_col] = models.set_index("model")[f"paper_{platform}"].reindex(frame["model"]) \
                .astype(float).values
            frame[f"{label} / paper"] = frame[f"{label} ms"] / frame[paper_col]
            columns.append(Column(f"{label} / paper", f"{label} / paper", "ratio"))
            if last_of_platform[platform] == i:
                columns.append(Column(f"paper {short} (ms)", paper_col, "ms"))
                footnotes.append(f"paper {short}: {PAPER_PLATFORMS[platform]}, MobileOne paper Table 1")
    notes = [f"[{n}] failed: {reason}" for reason, n in errors.items()]
    if flagged:
        notes.append("* flagged while measuring: " + "; ".join(FLAG_MEANING[f] for f in FLAGS_MARKED
                                                              if f in flagged) + " (details in the run file)")
    title = ("MobileOne paper, Table 1: top-1 and latency per platform, with params and MACs of the deploy form "
             "counted here" if paper else
             "Latency (ms) with 95% CI, next to the MobileOne paper's Table 1 (ratio = ours / paper)")
    return LatencyTable(title, _sorted(frame, columns, sort), tuple(columns), tuple(footnotes + notes))


def _platform(cells: pd.DataFrame, key: str) -> str | None:
    p = cells.loc[cells["device_key"] == key, "platform"].iloc[0]
    return p if isinstance(p, str) else None


def _latency_columns(frame: pd.DataFrame, g: pd.DataFrame, label: str, errors: dict[str, int]) -> set[str]:
    """Add one device column's values (latency, CI, status, error, flags, footnote number) to the frame;
    number new failure reasons in `errors`; return the flags seen."""
    idx = frame["model"]
    frame[f"{label} ms"] = idx.map(g["latency_ms"]).astype(float)
    frame[f"{label} ci_low"] = idx.map(g["ci_low_ms"]).astype(float)
    frame[f"{label} ci_high"] = idx.map(g["ci_high_ms"]).astype(float)
    frame[f"{label} status"] = _text(idx.map(g["status"]))
    frame[f"{label} error"] = _text(idx.map(g["error"]))
    frame[f"{label} flags"] = _text(idx.map(g["flags"])) if "flags" in g else ""
    notes, flagged = {}, set()
    for model, row in g.iterrows():
        if row["status"] == "failed":
            reason = (row["error"] or "no reason recorded") + (
                f" (at {row['error_stage']})" if row.get("error_stage") else "")
            notes[model] = errors.setdefault(reason, len(errors) + 1)
        flagged.update(f for f in FLAGS_MARKED if f in str(row.get("flags") or ""))
    frame[f"{label} note"] = idx.map(notes).astype("Int64")
    return flagged


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9/]", "", text.lower())


SORT_ALIASES = {"order": None, "paper": None, "model": "paper_name", "name": "paper_name", "top1": "top1",
                "params": "params_m", "macs": "macs_m", "flops": "macs_m"}


def _sort_names(columns: list[Column]) -> dict[str, str]:
    """What --sort accepts for each shown column (its short name, header or field) -> the frame column."""
    names: dict[str, str] = {}
    for c in columns[4:]:
        target = c.field + " ms" if c.kind == "latency" else c.field
        short = c.header.split(" (")[0]
        for name in (short, c.header, c.field, c.field.removesuffix(" ms")):
            names.setdefault(_norm(name), target)
    return names


def _sorted(frame: pd.DataFrame, columns: list[Column], sort: str | None) -> pd.DataFrame:
    """Rows by a column, smallest first, missing values last; the paper's order by default."""
    if sort is None or _norm(sort) in ("order", "paper"):
        return frame
    names = _sort_names(columns)
    target = SORT_ALIASES.get(_norm(sort)) or names.get(_norm(sort))
    if target is None or target not in frame:
        shown = ["order", "model", "top1", "params", "macs"] + [c.header.split(" (")[0] for c in columns[4:]]
        raise UserError(f"--sort {sort!r} is not a column of this table; use one of: "
                        + ", ".join(dict.fromkeys(shown)))
    return frame.sort_values(target, kind="stable", na_position="last").reset_index(drop=True)


def _cell_text(table: LatencyTable, row, col: Column, latex: bool = False) -> str:
    v = row[col.field] if col.kind != "latency" else row[f"{col.field} ms"]
    if col.kind == "text":
        return str(v)
    if col.kind == "latency":
        if row.get(f"{col.field} status") == "failed":
            n = row.get(f"{col.field} note")
            return "failed" if _isnan(n) or n is pd.NA else f"failed [{n}]"
        if _isnan(v):
            return ""
        lo, hi = row.get(f"{col.field} ci_low"), row.get(f"{col.field} ci_high")
        text = fmt_ms(v)
        if not _isnan(lo) and not _isnan(hi):
            text += f" [{fmt_ms(lo)}, {fmt_ms(hi)}]"
        if any(f in str(row.get(f"{col.field} flags") or "") for f in FLAGS_MARKED):
            text += "*"
        return text
    if _isnan(v):
        return ""
    if col.kind == "ms":
        return fmt_ms(v)
    if col.kind == "ratio":
        return f"{v:.2f}x" if not latex else f"{v:.2f}$\\times$"
    digits = {"num0": 0, "num1": 1, "num2": 2}[col.kind]
    return f"{v:.{digits}f}"


def rows_text(table: LatencyTable) -> tuple[list[str], list[list[str]]]:
    """Headers and cell texts, for Markdown and the terminal."""
    return ([c.header for c in table.columns],
            [[_cell_text(table, row, c) for c in table.columns] for _, row in table.frame.iterrows()])


def render_markdown(table: LatencyTable) -> str:
    headers, rows = rows_text(table)

    def line(cells):
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    align = ["---"] + ["---:"] * (len(headers) - 1)
    out = [f"**{table.title}**", "", line(headers), "| " + " | ".join(align) + " |"]
    out += [line(r) for r in rows]
    if table.footnotes:
        out.append("")
        out += [f"- {note}" for note in table.footnotes]
    return "\n".join(out) + "\n"


def render_csv(table: LatencyTable) -> str:
    return table.frame.to_csv(index=False, float_format="%.6g")


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def render_latex(table: LatencyTable) -> str:
    """A booktabs table (needs \\usepackage{booktabs})."""
    spec = "l" + "r" * (len(table.columns) - 1)
    out = [r"\begin{table}", r"\centering", rf"\caption{{{latex_escape(table.title)}}}", r"\small",
           rf"\begin{{tabular}}{{{spec}}}", r"\toprule",
           " & ".join(latex_escape(c.header) for c in table.columns) + r" \\", r"\midrule"]
    for _, row in table.frame.iterrows():
        cells = []
        for c in table.columns:
            text = _cell_text(table, row, c, latex=True)
            cells.append(text if c.kind == "ratio" else latex_escape(text))
        out.append(" & ".join(cells) + r" \\")
    out += [r"\bottomrule", r"\end{tabular}"]
    if table.footnotes:
        out.append(r"\par\smallskip\footnotesize")
        out += [latex_escape(note) + r"\\" for note in table.footnotes]
    out.append(r"\end{table}")
    return "\n".join(out) + "\n"


RENDERERS = {"md": render_markdown, "csv": render_csv, "latex": render_latex}
EXTENSIONS = {"md": "md", "csv": "csv", "latex": "tex"}


def render(table: LatencyTable, fmt: str) -> str:
    if fmt not in RENDERERS:
        raise UserError(f"--format {fmt!r} is not known; use one of {', '.join(FORMATS)}")
    return RENDERERS[fmt](table)
