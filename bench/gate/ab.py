"""`bench ab`: two variants of the same models measured in this process, cell after cell, rounds interleaved
(bench/gate/interleave.py), each cell judged at the family-wise level (bench/gate/verdict.py)."""
from __future__ import annotations

import math
import random
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from bench.core.errors import UserError
from bench.core.protocol import Protocol, get_protocol
from bench.env import cpu_info, library_versions
from bench.gate.effects import Effects, load_effects
from bench.gate.interleave import BASE, HEAD, measure_ab_cell
from bench.gate.variants import Variant, VariantChoice, prepare_variants
from bench.gate.verdict import DEFAULT_ALPHA, ERROR, UNSTABLE, ABPlan, CellComparison, GateReport, fmt_level
from bench.stats import round_medians
from devices.registry import get_device, require_runnable

_RUNTIMES = {"cpu": "onnxruntime", "torch": "torch", "cuda": "torch", "trt": "tensorrt", "coreml": "coremltools",
             "tflite": "ai-edge-litert"}


def run_ab(choice: VariantChoice, *, device: str = "cpu", models: str | None = None, threads: int | None = None,
           options: dict[str, dict[str, Any]] | None = None, protocol: str = "default", plan: ABPlan = ABPlan(),
           effects: str | None = None, min_effect: float | None = None, alpha: float = DEFAULT_ALPHA,
           seed: int | None = None, cache_dir: str | None = None, repo: str | None = None,
           config: str | None = None, log: Callable[[str], None] = lambda s: None,
           measure_cell: Callable = measure_ab_cell) -> GateReport:
    """`bench ab`: prepare the two variants `choice` names on `device`, measure every model both have, and
    report. `options` are the parsed `--option` flags ({device: {key: value}}), all for `device`; `effects`
    and `min_effect` are `--effects FILE` and `--min-effect`; `threads` None: the suite file's, else every
    usable core; `cache_dir` None: a temporary folder for exports of revisions. `measure_cell`: how one cell
    is A/B-measured (tests pass a synthetic one)."""
    dev = require_runnable(device)
    runner_options = _options_for(options or {}, device)
    proto = get_protocol(protocol, dev.kind)
    table = load_effects(effects, min_effect)  # a bad --effects file is refused before anything is exported
    with tempfile.TemporaryDirectory(prefix="bench-ab-cache-") as scratch:
        base, head = prepare_variants(choice, models, device, threads, runner_options, Path(scratch),
                                      Path(cache_dir) if cache_dir else None, Path(repo) if repo else None, config,
                                      log)
        report = measure_variants(base, head, proto, plan, table, alpha, seed, log, measure_cell=measure_cell)
    note = table.elsewhere_note(cpu_info().get("model", ""), head.threads)
    return replace(report, notes=report.notes + (note,)) if note else report


def _options_for(options: dict[str, dict[str, Any]], device: str) -> dict[str, Any]:
    other = next((d for d in options if d != device), None)
    if other:
        raise UserError(f"--option {other}.* is for device {other}, but the A/B runs on {device}")
    return dict(options.get(device, {}))


def measure_variants(base: Variant, head: Variant, protocol: Protocol, plan: ABPlan, effects: Effects,
                     alpha: float = DEFAULT_ALPHA, seed: int | None = None,
                     log: Callable[[str], None] = lambda s: None, mode: str = "ab",
                     measure_cell: Callable = measure_ab_cell) -> GateReport:
    """Every model both variants have, A/B-measured one after the other; verdicts at a family-wise level."""
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
        errors = [f"{v.label} {m}: {why}" for v in (base, head) for m, why in v.errors.items()]
        shown = "; ".join(errors[:2]) + ("; ..." if len(errors) > 2 else "")
        raise UserError(f"no model could be prepared on both sides{f' ({shown})' if errors else ''}; check --models")
    level = plan.level(alpha, len(models))
    seed = seed if seed is not None else random.SystemRandom().randrange(2 ** 31)
    rng = random.Random(seed)
    for i, model in enumerate(models, 1):
        first = rng.choice((BASE, HEAD))
        fb, fh = base.forms.get(model, "deploy"), head.forms.get(model, "deploy")
        common = dict(model=model, device=base.device, runner=_runner_label(base.device),
                      form=fb if fb == fh else f"{fb} -> {fh}",
                      threads=head.threads if head.threads == base.threads else None,
                      min_effect=effects.of(model), level=level)
        log(f"[{i}/{len(models)}] {model}: interleaving rounds ({first} first)")
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
                        f"{inter.pairs} pairs cannot bound an interval at {fmt_level(level)}: raise --rounds")
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
                      environment_line(threads, base.device), tuple(notes), seed)


def environment_line(threads: int | str, device: str) -> str:
    """CPU, runtime and threads of an A/B, on one line."""
    libs = library_versions()
    runtime = _RUNTIMES.get(device, "")
    return ", ".join(x for x in (cpu_info().get("model", ""), f"{runtime} {libs.get(runtime, '?')}" if runtime else "",
                                 f"{threads} thread(s)") if x)


def _runner_label(device: str) -> str:
    return get_device(device).label
