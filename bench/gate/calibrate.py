"""`bench calibrate`: A/A on this machine (each model's artifact against itself) for its noise floor and the
minimum effect each model supports here, written as the `--effects FILE` of `bench ab`."""
from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Callable

from bench.core.errors import UserError
from bench.core.io import atomic_write_json, now_iso
from bench.core.protocol import Protocol, get_protocol
from bench.env import cpu_info, library_versions
from bench.gate.effects import EFFECTS_KIND
from bench.gate.interleave import BASE, HEAD, measure_ab_cell
from bench.gate.variants import GATE_MODELS, Variant, variant_from_config
from bench.gate.verdict import DEFAULT_ALPHA, ABPlan
from bench.stats import paired_ratio, robust_sd, suggest_min_effect
from devices.registry import require_runnable

MIN_PAIRS = 12  # fewer cannot bound an interval at the levels the gate uses
CALIBRATION_DIR = "results/calibration"


def run_calibration(*, config: str | None = None, models: str | None = None, device: str = "cpu",
                    threads: int | None = None, protocol: str = "default", pairs: int = 44, repeats: int = 3,
                    alpha: float = DEFAULT_ALPHA, floor: float = 0.02, seed: int | None = None,
                    cache_dir: str | None = None, out: str | None = None,
                    log: Callable[[str], None] = lambda s: None) -> tuple[dict, Path]:
    """`bench calibrate`: the suite file's models (default: the gate's) exported with this checkout, each
    calibrated against itself; the result written to `out` (default results/calibration/effects-<cpu>-t<threads>.json).
    Returns (the calibration, where it was written)."""
    dev = require_runnable(device)
    if pairs < MIN_PAIRS:
        raise UserError(f"--pairs {pairs} is too few to bound an interval; use {MIN_PAIRS} or more (default 44)")
    proto = get_protocol(protocol, dev.kind)
    variant = variant_from_config("base", config, models or GATE_MODELS, device, threads,
                                  Path(cache_dir) if cache_dir else None, log)
    for m, why in variant.errors.items():
        log(f"{m}: not calibrated ({why})")
    data = calibrate(variant, proto, pairs, repeats, alpha, floor, ABPlan(), seed, log)
    path = Path(out) if out else Path(CALIBRATION_DIR) / f"effects-{_slug(data['cpu_model'])}-t{variant.threads}.json"
    atomic_write_json(path, data)
    return data, path


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "cpu"


def calibrate(variant: Variant, protocol: Protocol, pairs: int, repeats: int, alpha: float = DEFAULT_ALPHA,
              floor: float = 0.02, gate: ABPlan = ABPlan(), seed: int | None = None,
              log: Callable[[str], None] = lambda s: None, measure_cell: Callable = measure_ab_cell) -> dict:
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
                                           rng.choice((BASE, HEAD)))
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
