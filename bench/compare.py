"""The latency regression gate: verdicts on head/base ratios, from an interleaved A/B or two stored result sets.

See docs/regression-gate.md for the design (why A/B in one job, why Hodges-Lehmann, why Bonferroni).
"""
from __future__ import annotations

import json
import math
import random
import re
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from bench.ab import RoundMeasurer, interleave, warm_up_all
from bench.console import print_table
from bench.core.errors import UserError
from bench.core.io import atomic_write_json, atomic_write_text, now_iso
from bench.core.runner import RunnerOptions
from bench.env import cpu_info, library_versions
from bench.measure import ContentionProbe
from bench.stats import (
    RatioEstimate,
    familywise_level,
    paired_ratio,
    ratio_of_medians_ci,
    robust_sd,
    round_medians,
    suggest_min_effect,
    summary_ratio,
)
from bench.store import find_run, load_run, result_files
from devices.base import get_device, make_runner

PASS, FAIL, UNSTABLE, ERROR, SKIP = "PASS", "FAIL", "UNSTABLE", "ERROR", "SKIP"
EXIT_PASS, EXIT_FAIL, EXIT_UNSTABLE = 0, 1, 3
DEFAULT_MIN_EFFECT = 0.05
DEFAULT_ALPHA = 0.05  # family-wise: the chance that a job with no real change fails
COMPARE_MIN_ROUNDS = 5  # per side: with fewer the bootstrap interval of a median is too narrow (coverage < 95%)
EFFECTS_KIND = "mobileone-bench/effects"
BASELINES_DIR = "results/baselines"
_SEVERITY = {ERROR: 0, FAIL: 1, UNSTABLE: 2, PASS: 3, SKIP: 4}


def verdict(est: RatioEstimate, min_effect: float) -> str:
    """FAIL: slower by more than the minimum effect, and the interval excludes 'no change'. UNSTABLE: the
    interval is wider than the minimum effect, so a regression of that size could hide in it. PASS otherwise.
    With the full-width rule the three cannot disagree: a ratio above 1 + effect with an interval narrower
    than the effect has its lower bound above 1, so nothing slower than the effect can PASS."""
    if est.ratio > 1 + min_effect and est.low > 1:
        return FAIL
    if not est.width <= min_effect:  # also catches an unbounded (inf) or undefined (nan) interval
        return UNSTABLE
    return PASS


@dataclass(frozen=True)
class CellComparison:
    model: str
    device: str
    runner: str
    form: str  # "deploy", or "deploy -> train" when the two sides differ
    threads: int | None
    verdict: str
    base_ms: float | None = None  # median of the side's per-round medians
    head_ms: float | None = None
    ratio: float | None = None  # head / base
    ci_low: float | None = None
    ci_high: float | None = None
    level: float | None = None
    method: str = ""
    min_effect: float = DEFAULT_MIN_EFFECT
    rounds: int = 0  # pairs of an A/B; the smaller side's rounds of a stored comparison
    advisory: bool = False  # environments differ (--force): shown, not counted in the exit code
    note: str = ""
    log_ratios: tuple[float, ...] = ()  # per pair (A/B only): the noise the calibration and evidence read

    @property
    def label(self) -> str:
        return f"{self.model} ({self.device}/{self.runner}, {self.form}, {self.threads or '?'}t)"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class GateReport:
    mode: str  # ab | compare | calibrate
    base: str  # where each side came from, for people
    head: str
    cells: tuple[CellComparison, ...]
    alpha: float
    correction: str  # how the per-cell level was set
    environment: str = ""  # CPU, threads, runtime: one line
    notes: tuple[str, ...] = ()
    seed: int | None = None

    @property
    def counted(self) -> list[CellComparison]:
        return [c for c in self.cells if not c.advisory]

    @property
    def exit_code(self) -> int:
        verdicts = {c.verdict for c in self.counted}
        if verdicts & {FAIL, ERROR}:
            return EXIT_FAIL
        if UNSTABLE in verdicts:
            return EXIT_UNSTABLE
        return EXIT_PASS

    @property
    def outcome(self) -> str:
        return {EXIT_FAIL: FAIL, EXIT_UNSTABLE: UNSTABLE, EXIT_PASS: PASS}[self.exit_code]

    def sorted_cells(self) -> list[CellComparison]:
        """Worst first: errors, then by ratio, slowest first."""
        def key(c: CellComparison):
            r = c.ratio if c.ratio is not None and math.isfinite(c.ratio) else -math.inf
            return (c.verdict != ERROR, -r, _SEVERITY.get(c.verdict, 9), c.model)
        return sorted(self.cells, key=key)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["cells"] = [c.to_dict() for c in self.sorted_cells()]
        d["outcome"], d["exit_code"] = self.outcome, self.exit_code
        return d


# --- Rendering --------------------------------------------------------------------------------------------

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


def _fmt_level(level: float | None) -> str:
    return "" if level is None else f"{level * 100:.4g}%"


def _levels(report: GateReport) -> str:
    levels = sorted({c.level for c in report.cells if c.level is not None})
    return ", ".join(_fmt_level(x) for x in levels) or "-"


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


def print_report(report: GateReport, file=None) -> None:

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


def write_outputs(report: GateReport, markdown: str | None, json_path: str | None) -> None:

    if markdown:
        atomic_write_text(Path(markdown), to_markdown(report))
    if json_path:
        atomic_write_json(Path(json_path), report.to_dict())


# --- Minimum effects ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Effects:
    """The minimum effect of each model: a per-model table (from `bench calibrate`) over a default."""

    default: float = DEFAULT_MIN_EFFECT
    per_model: dict[str, float] = field(default_factory=dict)
    source: str = ""

    def of(self, model: str) -> float:
        return self.per_model.get(model, self.default)


def check_effect(value: float, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise UserError(f"{what} = {value!r} must be a fraction between 0 and 1 (0.05 = 5%)")
    return float(value)


def load_effects(path: str | None, default: float | None) -> Effects:
    """`--effects FILE`: the JSON `bench calibrate` writes ({"effects": {model: fraction}}), or a plain
    {model: fraction} object. `--min-effect` sets the default for models the file does not name."""
    base = check_effect(default, "--min-effect") if default is not None else DEFAULT_MIN_EFFECT
    if not path:
        return Effects(base)
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError:
        raise UserError(f"--effects {path} not found; write one with `bench calibrate --out {path}`") from None
    except json.JSONDecodeError as e:
        raise UserError(f"--effects {path} is not valid JSON ({e.msg} at line {e.lineno}); "
                        "write one with `bench calibrate`") from None
    table = data.get("effects", data) if isinstance(data, dict) else None
    if not isinstance(table, dict) or not table:
        raise UserError(f"--effects {path} has no {{model: fraction}} table; write one with `bench calibrate`")
    effects = {str(m): check_effect(v, f"{path}: {m}") for m, v in table.items()}
    return Effects(base, effects, str(p))


# --- Stored results: bench compare BASE NEW ---------------------------------------------------------------

@dataclass(frozen=True)
class StoredCell:
    result: Any  # LatencyResult
    env_key: dict
    run_id: str


@dataclass(frozen=True)
class ResultSet:
    name: str
    cells: dict  # (model, device, runner, form) -> StoredCell
    files: tuple[str, ...]


def resolve_results(ref: str, runs_dir: Path | Callable[[], Path], baselines_dir: Path) -> list[Path]:
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


def load_result_set(ref: str, runs_dir: Path | Callable[[], Path],
                    baselines_dir: Path = Path(BASELINES_DIR)) -> ResultSet:
    """Every cell of the runs `ref` names; where several runs have a cell, the newest measured one wins."""

    files = resolve_results(ref, runs_dir, baselines_dir)
    runs = sorted((load_run(f) for f in files), key=lambda r: r.created)
    cells: dict = {}
    for run in runs:
        for c in run.cells:
            if c.ok or c.key not in cells or not cells[c.key].result.ok:
                cells[c.key] = StoredCell(c, c.env_key.to_dict(), run.run_id)
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
    level = familywise_level(alpha, len(keys))
    out, notes = [], []
    for k in keys:
        b, n = base.cells[k].result, new.cells[k].result
        common = dict(model=k[0], device=k[1], runner=k[2], form=k[3], threads=n.threads,
                      min_effect=effects.of(k[0]), advisory=k in mismatched, level=level)
        note = "env differs: " + "; ".join(mismatched[k]) if k in mismatched else ""
        if not n.ok:
            v = ERROR if b.ok else SKIP
            out.append(CellComparison(verdict=v, note=f"new failed: {n.error}", **common))
            continue
        if not b.ok:
            out.append(CellComparison(verdict=SKIP, note=f"base failed: {b.error}", **common))
            continue
        rb, rn = round_medians(b.samples_ms), round_medians(n.samples_ms)
        if len(rb) and len(rn):
            base_ms, head_ms = float(_median(rb)), float(_median(rn))
            if min(len(rb), len(rn)) < COMPARE_MIN_ROUNDS:
                est = RatioEstimate(head_ms / base_ms, -math.inf, math.inf, level, "bootstrap-medians",
                                    min(len(rb), len(rn)))
                note = _join(note, f"{min(len(rb), len(rn))} rounds; need >= {COMPARE_MIN_ROUNDS} per side")
            else:
                r, lo, hi = ratio_of_medians_ci(rb, rn, level)
                est = RatioEstimate(r, lo, hi, level, "bootstrap-medians", min(len(rb), len(rn)))
        else:
            base_ms, head_ms = b.latency_ms, n.latency_ms
            est = summary_ratio(b.summary.to_dict(), n.summary.to_dict(), level)
            if est is None:
                est = RatioEstimate(head_ms / base_ms if base_ms and head_ms else math.nan, -math.inf, math.inf,
                                    level, "none", 0)
                note = _join(note, "no rounds or interval stored: cannot bound the ratio")
            else:
                note = _join(note, "from the stored summaries (no raw rounds)")
        out.append(CellComparison(
            verdict=verdict(est, common["min_effect"]), base_ms=base_ms, head_ms=head_ms, ratio=est.ratio,
            ci_low=est.low, ci_high=est.high, method=est.method, rounds=est.n, note=note, **common))
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
    return GateReport("compare", base.name, new.name, tuple(out), alpha,
                      f"Bonferroni: each of {len(keys)} intervals at {_fmt_level(level)}", env, tuple(notes))


def _median(x) -> float:
    import numpy as np
    return float(np.median(x))


def _join(a: str, b: str) -> str:
    return f"{a}; {b}" if a else b


def _describe_env(key: dict) -> str:
    parts = [key.get("cpu_model") or key.get("device_name") or key.get("gpu") or "", key.get("runtime_version", ""),
             f"{key['threads']} thread(s)" if key.get("threads") else "", key.get("precision", "")]
    return ", ".join(p for p in parts if p)


# --- Interleaved A/B: bench ab ----------------------------------------------------------------------------

@dataclass(frozen=True)
class ABPlan:
    """How many pairs of rounds an A/B measures: `min_pairs`, then `step` more per look while the interval is
    wider than the effect, up to `max_pairs`. Every look is a chance of a false FAIL, so the family-wise
    level is split over cells x looks (Bonferroni); fewer, larger steps keep each interval narrower."""

    min_pairs: int = 12
    max_pairs: int = 44
    step: int = 8
    ci: str = "hodges-lehmann"  # or "bootstrap"

    def __post_init__(self):
        if self.min_pairs < 2 or self.max_pairs < self.min_pairs or self.step < 1:
            raise UserError(f"rounds: need 2 <= --rounds ({self.min_pairs}) <= --max-rounds ({self.max_pairs}) "
                            f"and --step ({self.step}) >= 1")

    @property
    def looks(self) -> int:
        return 1 + math.ceil((self.max_pairs - self.min_pairs) / self.step)

    def level(self, alpha: float, cells: int) -> float:
        return familywise_level(alpha, max(1, cells) * self.looks)

    def correction(self, cells: int, level: float) -> str:
        return (f"Bonferroni over {max(1, cells)} cell(s) x {self.looks} look(s): each interval at "
                f"{_fmt_level(level)}")


def decide_pairs(log_ratios, level: float, min_effect: float, method: str) -> tuple[RatioEstimate, str]:
    est = paired_ratio(log_ratios, level, method)
    return est, verdict(est, min_effect)


def _env_line(threads: int, device: str) -> str:

    libs = library_versions()
    runtime = {"cpu": "onnxruntime", "torch": "torch", "cuda": "torch", "trt": "tensorrt", "coreml": "coremltools",
               "tflite": "ai-edge-litert"}.get(device, "")
    return ", ".join(x for x in (cpu_info().get("model", ""), f"{runtime} {libs.get(runtime, '?')}" if runtime else "",
                                 f"{threads} thread(s)") if x)


def measure_ab_cell(model: str, base, head, protocol, plan: ABPlan, level: float, min_effect: float,
                    first: str) -> tuple[Any, RatioEstimate, str]:
    """Load both sides' runners, warm both up, then interleave their rounds until the verdict settles."""

    device = get_device(base.device)
    if device.kind != "cpu" and base.device != "tflite":
        probe = None
    else:
        probe = ContentionProbe()
    rb = make_runner(device.runner, RunnerOptions(threads=base.threads, extra=dict(base.options)))
    rh = make_runner(device.runner, RunnerOptions(threads=head.threads, extra=dict(head.options)))
    with rb, rh:
        if rb.external or rh.external:
            raise UserError(f"device {base.device} is measured by an outside tool, which bench ab cannot "
                            "interleave; run `bench run` on each version and use `bench compare`")
        rb.load(base.load_target(model))
        rh.load(head.load_target(model))
        infers = {"base": rb.infer, "head": rh.infer}
        warm_up_all(infers, protocol)
        inter = interleave(RoundMeasurer(infers, protocol, probe), first, plan.min_pairs, plan.max_pairs,
                           plan.step, lambda lr: decide_pairs(lr, level, min_effect, plan.ci)[1] != UNSTABLE)
    est, v = decide_pairs(inter.log_ratios, level, min_effect, plan.ci)
    return inter, est, v


def run_ab(base, head, protocol, plan: ABPlan, effects: Effects, alpha: float = DEFAULT_ALPHA,
           seed: int | None = None, log: Callable[[str], None] = lambda s: None, mode: str = "ab",
           measure_cell: Callable = measure_ab_cell) -> GateReport:
    """Every model both variants have, A/B-measured one after the other; verdicts at a family-wise level."""
    import numpy as np


    if base.device != head.device:
        raise UserError(f"the two sides use different devices ({base.device} vs {head.device}); an A/B compares "
                        "two versions on one device")
    models = [m for m in base.targets if m in head.targets]
    notes: list[str] = []
    cells: list[CellComparison] = []
    for m, why in head.errors.items():  # the head cannot produce a model the base could: a regression
        if m in base.targets:
            cells.append(CellComparison(m, head.device, _runner_label(head.device), head.forms.get(m, "deploy"),
                                        head.threads, ERROR, note=f"head: {why}", min_effect=effects.of(m)))
    for m, why in base.errors.items():
        notes.append(f"{m}: base has no artifact ({why}); not compared")
    for m in head.errors:
        if m not in base.targets and m not in base.errors:
            notes.append(f"{m}: head has no artifact ({head.errors[m]}); not compared")
    if not models and not cells:
        raise UserError("no model could be prepared on both sides; see the errors above and check --models")
    level = plan.level(alpha, len(models))
    seed = seed if seed is not None else random.SystemRandom().randrange(2 ** 31)
    rng = random.Random(seed)
    for i, model in enumerate(models, 1):
        first = rng.choice(("base", "head"))
        fb, fh = base.forms.get(model, "deploy"), head.forms.get(model, "deploy")
        common = dict(model=model, device=base.device, runner=_runner_label(base.device),
                      form=fb if fb == fh else f"{fb} -> {fh}",
                      threads=head.threads if head.threads == base.threads else None,
                      min_effect=effects.of(model), level=level)
        log(f"[{i}/{len(models)}] {model}: interleaving rounds ({'base' if first == 'base' else 'head'} first)")
        try:
            inter, est, v = measure_cell(model, base, head, protocol, plan, level, common["min_effect"], first)
        except UserError:
            raise
        except Exception as e:
            detail = str(e).strip().splitlines()[0] if str(e).strip() else ""
            cells.append(CellComparison(verdict=ERROR, note=f"{type(e).__name__}: {detail}", **common))
            log(f"      {model}: ERROR {type(e).__name__}: {detail}")
            continue
        note = []
        if inter.redone:
            note.append(f"{inter.redone} busy round(s) redone")
        if v == UNSTABLE:
            note.append(f"interval {est.width:.1%} wide > {common['min_effect']:.1%} after {inter.pairs} pairs"
                        if math.isfinite(est.width) else
                        f"{inter.pairs} pairs cannot bound an interval at {_fmt_level(level)}: raise --rounds")
        cells.append(CellComparison(
            verdict=v, base_ms=float(np.median(round_medians(list(inter.base_rounds)))),
            head_ms=float(np.median(round_medians(list(inter.head_rounds)))), ratio=est.ratio, ci_low=est.low,
            ci_high=est.high, method=est.method, rounds=inter.pairs, note="; ".join(note),
            log_ratios=tuple(float(x) for x in inter.log_ratios), **common))
        log(f"      {model}: {v} ratio {est.ratio:.3f} [{est.low:.3f}, {est.high:.3f}] over {inter.pairs} pairs "
            f"({inter.wall_s:.0f} s)")
    threads = head.threads if head.threads == base.threads else f"{base.threads} vs {head.threads}"
    notes.append(f"round shape: protocol {protocol.name}; pairs {plan.min_pairs} first, +{plan.step} per look "
                 f"up to {plan.max_pairs}; random start seed {seed}")
    return GateReport(mode, base.source, head.source, tuple(cells), alpha, plan.correction(len(models), level),
                      _env_line(threads, base.device), tuple(notes), seed)


def _runner_label(device: str) -> str:
    return get_device(device).label


# --- Calibration: A/A on this machine -----------------------------------------------------------------------

def calibrate(variant, protocol, pairs: int, repeats: int, alpha: float = DEFAULT_ALPHA, floor: float = 0.02,
              gate: ABPlan = ABPlan(), seed: int | None = None, log: Callable[[str], None] = lambda s: None,
              measure_cell: Callable = measure_ab_cell) -> dict:
    """A/A: each model's artifact against itself (two sessions), `repeats` times, `pairs` pairs each (no early
    stop). Gives the noise floor (spread of per-pair log ratios, apparent A/A ratios) and the minimum effect
    each model supports on this machine: intervals are taken at the level `gate` would use for these models,
    so the suggestion is what `bench ab --effects` can actually resolve."""

    models = list(variant.targets)
    if not models:
        raise UserError("no model to calibrate; check --models")
    level = gate.level(alpha, len(models))
    seed = seed if seed is not None else random.SystemRandom().randrange(2 ** 31)
    rng = random.Random(seed)
    fixed = ABPlan(pairs, pairs, 1, gate.ci)
    per_model: dict[str, dict] = {}
    for model in models:
        ratios, widths, spreads, log_ratios = [], [], [], []
        for r in range(repeats):
            inter, _est, _v = measure_cell(model, variant, variant, protocol, fixed, level, 1.0,
                                           rng.choice(("base", "head")))
            lr = inter.log_ratios
            est = paired_ratio(lr, level, gate.ci)
            ratios.append(est.ratio)
            widths.append(est.width)
            spreads.append(robust_sd(lr))
            log_ratios.append([float(x) for x in lr])
            log(f"{model} A/A {r + 1}/{repeats}: ratio {est.ratio:.4f} [{est.low:.4f}, {est.high:.4f}], "
                f"per-pair log-ratio sd {robust_sd(lr):.4f}")
        per_model[model] = {
            "ratios": ratios, "ci_widths": widths, "log_ratio_sd": spreads,
            "log_ratio_sd_pooled": robust_sd([x for run in log_ratios for x in run]), "log_ratios": log_ratios,
            "suggested_effect": suggest_min_effect(widths, ratios, floor)}
    return {
        "kind": EFFECTS_KIND, "schema": 1, "created": now_iso(), "cpu_model": cpu_info().get("model", ""),
        "device": variant.device, "threads": variant.threads, "protocol": protocol.name,
        "runtime": library_versions().get("onnxruntime", "") if variant.device == "cpu" else "",
        "pairs": pairs, "repeats": repeats, "alpha": alpha, "level": level, "gate_looks": gate.looks,
        "floor": floor, "seed": seed, "models": per_model,
        "effects": {m: d["suggested_effect"] for m, d in per_model.items()},
    }


def calibration_rows(data: dict) -> tuple[list[str], list[list[str]]]:
    headers = ["model", "A/A ratios", f"widest CI ({_fmt_level(data['level'])})", "per-pair log-ratio sd",
               "suggested min effect"]
    rows = []
    for m, d in data["models"].items():
        rows.append([m, " ".join(f"{r:.3f}" for r in d["ratios"]), f"{max(d['ci_widths']):.1%}",
                     f"{d['log_ratio_sd_pooled']:.2%}", f"{d['suggested_effect']:.1%}"])
    return headers, rows


# --- Baselines --------------------------------------------------------------------------------------------

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def accept_baseline(ref: str, runs_dir: Path, baselines_dir: Path = Path(BASELINES_DIR), name: str | None = None,
                    force: bool = False) -> Path:
    """Copy a complete run into the baselines folder, every cell carrying its environment key, so that
    `bench compare <name> NEW` and trend plots can use it later and elsewhere."""

    src = find_run(ref, runs_dir)
    run = load_run(src)
    if run.status != "complete" and not force:
        raise UserError(f"run {run.run_id} is {run.status or 'unfinished'}; finish it with "
                        f"`bench run --resume {src}` or pass --force to accept it as it is")
    if not any(c.ok for c in run.cells):
        raise UserError(f"run {run.run_id} has no measured cell; accept a run that measured something")
    if not run.env:
        raise UserError(f"run {run.run_id} has no environment record; accept a run written by `bench run`")
    name = name or run.run_id
    if not _NAME.match(name):
        raise UserError(f"baseline name {name!r} may use letters, digits, '.', '_' and '-' only; pass another --name")
    dst = Path(baselines_dir) / f"{name}.json"
    if dst.exists() and not force:
        raise UserError(f"baseline {dst} exists; choose another --name or pass --force to replace it")
    atomic_write_json(dst, run.to_dict())  # every loaded cell has its key (store.load_run migrates old files)
    return dst


def list_baselines(baselines_dir: Path = Path(BASELINES_DIR)) -> list[dict]:

    rows = []
    for p in sorted(Path(baselines_dir).glob("*.json")):
        try:
            run = load_run(p)
        except UserError as e:
            rows.append({"name": p.stem, "error": str(e)})
            continue
        rows.append({"name": p.stem, "run_id": run.run_id, "created": run.created,
                     "host": run.env.get("hostname", ""), "cpu": run.env.get("cpu", {}).get("model", ""),
                     "revision": (run.env.get("git") or {}).get("revision") or "",
                     "cells": sum(c.ok for c in run.cells),
                     "devices": ",".join(sorted({c.device for c in run.cells}))})
    return rows


def log_to_stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)
