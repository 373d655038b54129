"""The gate's reports for people and tools: a terminal table, a Markdown summary for a pull request, JSON;
and the tables of `bench calibrate` and `bench baseline list`."""
from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

from bench.console import print_table
from bench.core.errors import UserError
from bench.core.io import atomic_write_json, atomic_write_text
from bench.gate.verdict import ERROR, FAIL, PASS, SKIP, UNSTABLE, CellComparison, GateReport, fmt_level


def _fmt_ms(v: float | None) -> str:
    return "" if v is None or not math.isfinite(v) else f"{v:.3f}" if v < 100 else f"{v:.1f}"


def _fmt_ratio(v: float | None) -> str:
    return "" if v is None or not math.isfinite(v) else f"{v:.3f}"


def _fmt_ci(c: CellComparison) -> str:
    if c.ci_low is None or c.ci_high is None:
        return ""
    if not (math.isfinite(c.ci_low) and math.isfinite(c.ci_high)):
        return "unbounded"
    return f"{c.ci_low:.3f}-{c.ci_high:.3f}"


def _levels(report: GateReport) -> str:
    levels = sorted({c.level for c in report.cells if c.level is not None})
    return ", ".join(fmt_level(x) for x in levels) or "-"


def table_rows(report: GateReport) -> tuple[list[str], list[list[str]]]:
    headers = ["verdict", "model", "device", "form", "thr", "base ms", "head ms", "ratio",
               f"CI ({_levels(report)})", "min effect", "rounds", "note"]
    rows = []
    for c in report.sorted_cells():
        rows.append([c.verdict + (" (advisory)" if c.advisory else ""), c.model, f"{c.device}/{c.runner}", c.form,
                     str(c.threads or ""), _fmt_ms(c.base_ms), _fmt_ms(c.head_ms), _fmt_ratio(c.ratio),
                     _fmt_ci(c), f"{c.min_effect:.1%}", str(c.rounds or ""), c.note])
    return headers, rows


def explanation(report: GateReport) -> list[str]:
    unit = ("pairs of interleaved rounds (A B B A, random start); ratio = exp(Hodges-Lehmann estimate of the "
            "per-pair log ratio of round medians)" if report.mode in ("ab", "calibrate") else
            "each side's per-round medians; ratio of their medians, bootstrap interval over rounds")
    return [
        f"ratio = head / base latency (above 1 = slower). Unit: {unit}.",
        "FAIL: ratio > 1 + min effect and the interval's lower bound > 1. UNSTABLE: interval wider than the "
        "min effect after the rounds allowed (re-run, or raise --max-rounds). PASS otherwise.",
        f"False alarms: at most {report.alpha:.0%} per job ({report.correction}).",
    ]


def print_report(report: GateReport) -> None:
    headers, rows = table_rows(report)
    counts = {v: sum(c.verdict == v for c in report.counted) for v in (FAIL, ERROR, UNSTABLE, PASS)}
    summary = ", ".join(f"{n} {v}" for v, n in counts.items() if n)
    title = f"latency gate: {report.outcome} ({summary or 'no cells'})"
    print_table(headers, rows, title=title,
                footnotes=[f"base: {report.base}", f"head: {report.head}"]
                + ([f"environment: {report.environment}"] if report.environment else [])
                + explanation(report) + list(report.notes))


def to_markdown(report: GateReport) -> str:
    """A summary fit for a pull request or $GITHUB_STEP_SUMMARY: outcome first, worst regressions first."""
    icon = {PASS: "✅", FAIL: "❌", UNSTABLE: "⚠️", ERROR: "❌", SKIP: "➖"}
    counted = report.counted
    n_fail = sum(c.verdict in (FAIL, ERROR) for c in counted)
    n_unstable = sum(c.verdict == UNSTABLE for c in counted)
    if n_fail:
        headline = f"{icon[FAIL]} **FAIL**: {n_fail} of {len(counted)} cells slower than allowed"
    elif n_unstable:
        headline = f"{icon[UNSTABLE]} **UNSTABLE**: {n_unstable} of {len(counted)} cells too noisy to decide"
    else:
        headline = f"{icon[PASS]} **PASS**: no regression in {len(counted)} cells"
    lines = [f"### Latency gate ({report.mode}): {headline}", "",
             f"- base: {_md_escape(report.base)}", f"- head: {_md_escape(report.head)}"]
    if report.environment:
        lines.append(f"- environment: {_md_escape(report.environment)}")
    lines += ["", f"| verdict | model | device | form | base ms | head ms | ratio | CI ({_levels(report)}) "
                  "| min effect | rounds | note |",
              "|---|---|---|---|---:|---:|---:|---|---:|---:|---|"]
    for c in report.sorted_cells():
        v = f"{icon.get(c.verdict, '')} {c.verdict}" + (" (advisory)" if c.advisory else "")
        cells = [v, f"`{c.model}`", f"{c.device}/{c.runner} {c.threads or '?'}t", c.form, _fmt_ms(c.base_ms),
                 _fmt_ms(c.head_ms), f"**{_fmt_ratio(c.ratio)}**" if c.verdict == FAIL else _fmt_ratio(c.ratio),
                 _fmt_ci(c).replace("-", " – ") if _fmt_ci(c) not in ("", "unbounded") else _fmt_ci(c),
                 f"{c.min_effect:.1%}", str(c.rounds or ""), _md_escape(c.note)]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [""] + [f"<sub>{_md_escape(x)}</sub><br>" for x in explanation(report)]
    if report.notes:
        lines += [""] + [f"- {_md_escape(n)}" for n in report.notes]
    return "\n".join(lines) + "\n"


def _md_escape(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def check_output_path(path: str, flag: str) -> None:
    """`path` can be written as a report: checked before any measuring or comparing, so that a path that
    was wrong from the start costs no minutes and never ends as exit 1 (the gate's FAIL)."""
    p = Path(path).expanduser()
    if p.is_dir():
        raise UserError(f"{flag} {path} is a folder; pass a file name, e.g. {flag} {p / 'gate'}"
                        f"{'.md' if flag == '--markdown' else '.json'}")
    if p.exists() and not p.is_file():
        raise UserError(f"{flag} {path} is not a regular file (a device or a pipe would be replaced); "
                        "pass the path of a file")
    parent = p.parent
    if not parent.is_dir():
        problem = "is not a folder" if parent.exists() else "does not exist"
        raise UserError(f"{flag} {path}: {parent} {problem}; create the folder first or pass a path in an "
                        "existing one")
    try:  # os.access says yes to root everywhere, /proc included: try what the write will do
        fd, probe = tempfile.mkstemp(dir=parent, prefix=f".{p.name}.", suffix=".probe")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise UserError(f"{flag} {path} cannot be written (creating a file in {parent} failed: "
                        f"{e.strerror or e}); pass a path in a writable folder") from None


def check_outputs(markdown: str | None, json_path: str | None) -> None:
    """`--markdown FILE` and `--json FILE`, checked up front."""
    if markdown:
        check_output_path(markdown, "--markdown")
    if json_path:
        check_output_path(json_path, "--json")
    if markdown and json_path and Path(markdown).expanduser().resolve() == Path(json_path).expanduser().resolve():
        raise UserError(f"--markdown and --json name the same file ({markdown}); pass two file names")


def write_outputs(report: GateReport, markdown: str | None, json_path: str | None) -> None:
    """`--markdown FILE` and `--json FILE` (check_outputs has checked them before the work began)."""
    for flag, path, write in (("--markdown", markdown, lambda p: atomic_write_text(p, to_markdown(report))),
                              ("--json", json_path, lambda p: atomic_write_json(p, report.to_dict()))):
        if not path:
            continue
        try:
            write(Path(path).expanduser())
        except OSError as e:
            raise UserError(f"cannot write {flag} {path} ({e.strerror or e}); the verdicts above are not saved: "
                            "pass a path in a writable folder with free space") from None


def calibration_rows(data: dict) -> tuple[list[str], list[list[str]]]:
    headers = ["model", "A/A ratios", f"widest CI ({fmt_level(data['level'])})", "per-pair log-ratio sd",
               "suggested min effect"]
    rows = []
    for m, d in data["models"].items():
        rows.append([m, " ".join(f"{r:.3f}" for r in d["ratios"]), f"{max(d['ci_widths']):.1%}",
                     f"{d['log_ratio_sd_pooled']:.2%}", f"{d['suggested_effect']:.1%}"])
    return headers, rows


def baseline_rows(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    headers = ["name", "run", "created", "host", "cpu", "revision", "cells", "devices"]
    return headers, [[r["name"], r.get("run_id", "?"), r.get("created", ""), r.get("host", ""), r.get("cpu", ""),
                      (r.get("revision") or "")[:12], str(r.get("cells", "")), r.get("devices", r.get("error", ""))]
                     for r in rows]
