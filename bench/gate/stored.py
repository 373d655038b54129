"""`bench compare BASE NEW`: verdicts between two stored result sets (run files, folders, baselines, run ids).

Each side's per-round medians are the unit (the two sides were not measured together, so nothing pairs
them): the ratio of their medians with a bootstrap interval, or the stored summaries' intervals where a tool
kept no rounds. Cells measured in different environments are refused unless forced (then advisory).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from bench import zoo
from bench.core.errors import UserError
from bench.core.result import untrustworthy
from bench.gate.baselines import BASELINES_DIR
from bench.gate.effects import Effects, load_effects
from bench.gate.verdict import (
    DEFAULT_ALPHA,
    ERROR,
    PASS,
    SKIP,
    UNSTABLE,
    CellComparison,
    GateReport,
    stored_level,
    verdict,
)
from bench.stats import RatioEstimate, ratio_of_medians_ci, round_medians, summary_ratio
from bench.store import find_run, load_run, result_files

COMPARE_MIN_ROUNDS = 5  # per side: with fewer the bootstrap interval of a median is too narrow (coverage < 95%)
RunsDir = Path | Callable[[], Path]


@dataclass(frozen=True)
class StoredCell:
    """What a comparison reads of one stored cell: read by `stored_cell` alone."""

    key: tuple[str, str, str, str]  # (model, device, runner, form)
    ok: bool
    error: str | None
    threads: int | None
    rounds: tuple[tuple[float, ...], ...]  # raw samples per round (none from a tool that gives aggregates)
    latency_ms: float | None
    summary: Any  # the stored summary, as bench.stats.summary_ratio reads it
    env_key: dict  # the environment key: field -> value, to compare like with like
    run_id: str
    flags: tuple[str, ...] = ()


def stored_cell(result: Any, run: Any) -> StoredCell:
    """The one place that reads a stored cell's (LatencyResult's) fields, and its run's."""
    key = result.env_key.to_dict()  # every loaded cell has its key (store.load_run migrates old files)
    return StoredCell(result.key, result.ok, result.error, result.threads,
                      tuple(tuple(r) for r in result.samples_ms or ()), result.latency_ms,
                      result.summary.to_dict() if result.summary is not None else {},
                      key, run.run_id, tuple(result.flags))


@dataclass(frozen=True)
class ResultSet:
    name: str
    cells: dict[tuple[str, str, str, str], StoredCell]
    files: tuple[str, ...]


def resolve_results(ref: str, runs_dir: RunsDir, baselines_dir: Path) -> list[Path]:
    """A run file, a folder of them, a baseline's name, a run id in the results folder, or 'latest'.
    `runs_dir` may be a function: reading the suite file costs a model-zoo import, needed only for ids."""
    p = Path(ref)
    if p.exists():
        return result_files([ref], p)
    for candidate in (Path(baselines_dir) / ref, Path(baselines_dir) / f"{ref}.json"):
        if candidate.is_file():
            return [candidate]
    runs_dir = runs_dir() if callable(runs_dir) else runs_dir
    try:
        return [find_run(ref, runs_dir)]
    except UserError:
        raise UserError(f"{ref!r} is not a results file or folder, a baseline in {baselines_dir}, or a run id in "
                        f"{runs_dir}; pass a path (`bench baseline list` shows the baselines)") from None


def load_result_set(ref: str, runs_dir: RunsDir, baselines_dir: Path = Path(BASELINES_DIR)) -> ResultSet:
    """Every cell of the runs `ref` names; where several runs have a cell, the newest measured one wins."""
    files = resolve_results(ref, runs_dir, baselines_dir)
    runs = sorted((load_run(f) for f in files), key=lambda r: r.created)
    cells: dict = {}
    for run in runs:
        for result in run.cells:
            c = stored_cell(result, run)
            if c.ok or c.key not in cells or not cells[c.key].ok:
                cells[c.key] = c
    if not cells:
        raise UserError(f"{ref} has no cells; run `bench run` first")
    return ResultSet(ref, cells, tuple(map(str, files)))


def env_differences(a: dict, b: dict) -> list[str]:
    """The environment-key fields two cells disagree on, as 'field: A vs B'."""
    out = []
    for k in sorted(set(a) | set(b)):
        va, vb = a.get(k), b.get(k)
        if (va in (None, "")) and (vb in (None, "")):
            continue
        if str(va) != str(vb):
            out.append(f"{k}: {va if va not in (None, '') else '?'} vs {vb if vb not in (None, '') else '?'}")
    return out


def compare_stored(base: str, new: str, runs_dir: RunsDir, *, baselines_dir: Path | None = None,
                   models: str | None = None, effects: str | None = None, min_effect: float | None = None,
                   alpha: float = DEFAULT_ALPHA, force: bool = False) -> GateReport:
    """`bench compare BASE NEW`: load both result sets (`models`: a pattern of the zoo's names), the minimum
    effects (`--effects FILE`, `--min-effect`), and compare them."""
    baselines = Path(baselines_dir or BASELINES_DIR)
    base_set = load_result_set(base, runs_dir, baselines)
    new_set = load_result_set(new, runs_dir, baselines)
    names = zoo.list_models(models) if models else None
    return compare_sets(base_set, new_set, load_effects(effects, min_effect), alpha, force, names)


def compare_sets(base: ResultSet, new: ResultSet, effects: Effects, alpha: float = DEFAULT_ALPHA,
                 force: bool = False, models: list[str] | None = None) -> GateReport:
    """Verdicts for every cell both sets measured. Cells measured in different environments are refused
    (a UserError naming the first difference) unless `force`, which marks them advisory."""
    keys = [k for k in base.cells if k in new.cells and (models is None or k[0] in models)]
    if not keys:
        raise UserError(f"{base.name} and {new.name} have no cell in common (model, device, runner, form); "
                        "compare results of the same models and devices")
    mismatched = {}
    for k in keys:
        diff = env_differences(base.cells[k].env_key, new.cells[k].env_key)
        if diff:
            mismatched[k] = diff
    if mismatched and not force:
        k, diff = next(iter(mismatched.items()))
        more = f" (and {len(mismatched) - 1} more cells)" if len(mismatched) > 1 else ""
        raise UserError(f"cell {k[0]} {k[1]}/{k[2]} was measured in different environments ({'; '.join(diff)})"
                        f"{more}: compare like with like (same machine, threads, runtime and precision), or "
                        "pass --force for an advisory comparison")
    level, correction = stored_level(alpha, len(keys))
    out, notes = [], []
    for k in keys:
        common = dict(model=k[0], device=k[1], runner=k[2], form=k[3], threads=new.cells[k].threads,
                      min_effect=effects.of(k[0]), advisory=k in mismatched, level=level)
        note = "env differs: " + "; ".join(mismatched[k]) if k in mismatched else ""
        out.append(_compare_cell(base.cells[k], new.cells[k], level, note, common))
    only_base = sorted(set(base.cells) - set(new.cells))
    only_new = sorted(set(new.cells) - set(base.cells))
    if only_base:
        notes.append(f"only in base (not compared): {', '.join(k[0] + '/' + k[1] for k in only_base)}")
    if only_new:
        notes.append(f"only in new (not compared): {', '.join(k[0] + '/' + k[1] for k in only_new)}")
    if mismatched:
        notes.append(f"{len(mismatched)} cell(s) measured in different environments: their verdicts are "
                     "advisory and do not set the exit code (--force)")
    notes.append("stored results measured at different times: use for trends; gate pull requests with bench ab")
    env = _describe_env(new.cells[keys[0]].env_key)
    return GateReport("compare", base.name, new.name, tuple(out), alpha, correction, env, tuple(notes))


def _compare_cell(b: StoredCell, n: StoredCell, level: float, note: str, common: dict) -> CellComparison:
    if not n.ok:
        return CellComparison(verdict=ERROR if b.ok else SKIP, note=f"new failed: {n.error}", **common)
    if not b.ok:
        return CellComparison(verdict=SKIP, note=f"base failed: {b.error}", **common)
    rb, rn = round_medians(list(b.rounds)), round_medians(list(n.rounds))
    if len(rb) and len(rn):
        base_ms, head_ms = float(np.median(rb)), float(np.median(rn))
        if min(len(rb), len(rn)) < COMPARE_MIN_ROUNDS:
            est = RatioEstimate(head_ms / base_ms, -math.inf, math.inf, level, "bootstrap-medians",
                                min(len(rb), len(rn)))
            note = _join(note, f"{min(len(rb), len(rn))} rounds; need >= {COMPARE_MIN_ROUNDS} per side")
        else:
            r, lo, hi = ratio_of_medians_ci(rb, rn, level)
            est = RatioEstimate(r, lo, hi, level, "bootstrap-medians", min(len(rb), len(rn)))
    else:
        base_ms, head_ms = b.latency_ms, n.latency_ms
        est = summary_ratio(b.summary, n.summary, level)
        if est is None:
            est = RatioEstimate(head_ms / base_ms if base_ms and head_ms else math.nan, -math.inf, math.inf,
                                level, "none", 0)
            note = _join(note, "no rounds or interval stored: cannot bound the ratio")
        else:
            note = _join(note, "from the stored summaries (no raw rounds)")
    decided = verdict(est, common["min_effect"])
    flagged = [side for side, c in (("base", b), ("new", n)) if untrustworthy(c.flags)]
    if decided == PASS and flagged:  # a number a quiet machine might not reproduce never PASSes
        decided = UNSTABLE
        note = _join(note, f"{' and '.join(flagged)} flagged contended or unstable: re-measure on a quiet machine")
    return CellComparison(verdict=decided, base_ms=base_ms, head_ms=head_ms,
                          ratio=est.ratio, ci_low=est.low, ci_high=est.high, method=est.method, rounds=est.n,
                          note=note, **common)


def _join(a: str, b: str) -> str:
    return f"{a}; {b}" if a else b


def _describe_env(key: dict) -> str:
    parts = [key.get("cpu_model") or key.get("device_name") or key.get("gpu") or "", key.get("runtime_version", ""),
             f"{key['threads']} thread(s)" if key.get("threads") else "", key.get("precision", "")]
    return ", ".join(p for p in parts if p)
