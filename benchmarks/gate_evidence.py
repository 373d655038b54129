"""Evidence for the latency gate on this machine: does `bench ab` stay quiet on A/A and catch real slowdowns?

    python benchmarks/gate_evidence.py            # the full study (20 A/A repeats; long: tens of minutes)
    python benchmarks/gate_evidence.py --quick    # a few minutes: 2 repeats, quick rounds
    python benchmarks/gate_evidence.py --json out.json   # also keep every figure and per-pair log ratio

    python benchmarks/gate_evidence.py --reuse out.json  # re-analyse those measurements (no timing)

1. A/A: the same artifact on both sides of `bench ab` (MobileOne-S0..S2, MobileNetV2), repeated: FAILs seen.
2. Real slowdowns: ONNX Runtime graph optimizations disabled, and the train-form MobileOne against the
   deploy form, must FAIL (S0's train form has 4 branches per block; S1 and S2 have one, so their train
   forms cost only a little more at 1 thread and may rightly stay under the minimum effect).
3. Synthetic: the gate (same looks, same Bonferroni level, same code) run on per-pair log ratios with this
   machine's measured noise: independent normal pairs at each model's measured spread (the claim), and,
   harsher, a block bootstrap of the measured A/A sequences (bursts of load stay together): false-alarm
   rate over >= 200 A/A jobs and the share of 10% slowdowns caught.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.console import print_table  # noqa: E402
from bench.core.io import atomic_write_json  # noqa: E402
from bench.core.protocol import get_protocol  # noqa: E402
from bench.gate.ab import measure_variants  # noqa: E402
from bench.gate.effects import Effects  # noqa: E402
from bench.gate.interleave import BASE, HEAD, RoundResult, interleave  # noqa: E402
from bench.gate.variants import variant_from_config  # noqa: E402
from bench.gate.verdict import FAIL, PASS, UNSTABLE, ABPlan, decide_pairs  # noqa: E402
from bench.stats import robust_sd  # noqa: E402

MODELS = "mobileone_s0,mobileone_s1,mobileone_s2,mobilenetv2_100"
TRAIN_MODELS = "mobileone_s0,mobileone_s1,mobileone_s2"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def suite_file(folder: Path, name: str, models: str, cache: str | None, suite: str = "", tables: str = "") -> str:
    """A suite file: `suite` adds [suite] lines (form = "train"), `tables` adds tables ([devices.cpu] ...)."""
    p = folder / name
    p.write_text(f'[suite]\nmodels = "{models}"\n' + (f'cache = "{cache}"\n' if cache else "") + suite + tables)
    return str(p)


def real_runs(args, folder: Path) -> dict:
    protocol = get_protocol(args.protocol, "cpu")
    plan = ABPlan()
    effects = Effects(args.min_effect)
    plain = variant_from_config("base", suite_file(folder, "plain.toml", MODELS, args.cache_dir), None, "cpu",
                                args.threads, None, log)
    out: dict = {"aa": [], "threads": plain.threads, "protocol": protocol.name}
    for r in range(args.repeats):
        log(f"A/A repeat {r + 1}/{args.repeats}")
        rep = measure_variants(plain, plain, protocol, plan, effects, seed=args.seed + r, log=log)
        out["aa"].append([c.to_dict() for c in rep.cells])
    noopt = variant_from_config("head", suite_file(folder, "noopt.toml", MODELS, args.cache_dir,
                                                   tables="[devices.cpu]\ndisable_optimizations = true\n"),
                                None, "cpu", args.threads, None, log)
    log("slowdown: graph optimizations disabled")
    out["noopt"] = [c.to_dict() for c in measure_variants(plain, noopt, protocol, plan, effects, seed=args.seed,
                                                          log=log).cells]
    deploy = variant_from_config("base", suite_file(folder, "deploy.toml", TRAIN_MODELS, args.cache_dir), None,
                                 "cpu", args.threads, None, log)
    train = variant_from_config("head", suite_file(folder, "train.toml", TRAIN_MODELS, args.cache_dir,
                                                   suite='form = "train"\n'), None, "cpu", args.threads, None, log)
    log("slowdown: train form vs deploy form")
    out["train"] = [c.to_dict() for c in measure_variants(deploy, train, protocol, plan, effects, seed=args.seed,
                                                          log=log).cells]
    return out


class BlockBootstrap:
    """Per-pair log ratios drawn from measured A/A sequences in blocks of consecutive pairs, so a burst of
    load that spanned several pairs is drawn together; `shift` adds a true slowdown (log scale)."""

    def __init__(self, sequences: list[np.ndarray], block: int, rng: np.random.Generator, shift: float = 0.0):
        self.seqs = [s for s in sequences if len(s) >= block]
        self.block, self.rng, self.shift = block, rng, shift
        self.buffer: list[float] = []
        self.values: dict[int, float] = {}

    def draw(self) -> float:
        if not self.buffer:
            s = self.seqs[self.rng.integers(len(self.seqs))]
            start = self.rng.integers(0, len(s) - self.block + 1)
            self.buffer = list(s[start:start + self.block])
        return self.buffer.pop(0)

    def __call__(self, variant: str, pair: int) -> RoundResult:
        # One draw per pair; the base round is the reference (1.0), the head round carries the log ratio.
        if pair not in self.values:
            self.values[pair] = self.draw() + self.shift
        return RoundResult((math.exp(self.values[pair]) if variant == HEAD else 1.0,))


class NormalNoise(BlockBootstrap):
    """Independent normal per-pair log ratios with the spread measured here (the issue's definition of
    synthetic samples with this machine's noise)."""

    def __init__(self, sd: float, rng: np.random.Generator, shift: float = 0.0):
        self.sd, self.rng, self.shift = sd, rng, shift
        self.values = {}

    def draw(self) -> float:
        return float(self.rng.normal(0.0, self.sd))


def simulate(noise: dict[str, list[np.ndarray]], trials: int, effect: float, slowdown: float, block: int,
             seed: int, kind: str) -> dict:
    """`trials` A/A jobs and `trials` jobs with one cell (in turn) slower by `slowdown`, through the gate's
    own interleave/decide code with its default plan and family-wise level. kind: "normal" (independent
    pairs at each model's measured robust sd) or "block" (block bootstrap of the measured sequences)."""
    plan = ABPlan()
    models = list(noise)
    level = plan.level(0.05, len(models))
    rng = np.random.default_rng(seed)
    sds = {m: robust_sd(np.concatenate(s)) for m, s in noise.items()}

    def one(model: str, shift: float) -> str:
        m = (NormalNoise(sds[model], rng, shift) if kind == "normal"
             else BlockBootstrap(noise[model], block, rng, shift))
        inter = interleave(m, BASE if rng.random() < 0.5 else HEAD, plan.min_pairs, plan.max_pairs, plan.step,
                           lambda lr: decide_pairs(lr, level, effect, plan.ci)[1] != UNSTABLE)
        return decide_pairs(inter.log_ratios, level, effect, plan.ci)[1]

    aa_jobs_failed = aa_cells_failed = aa_unstable = 0
    caught = {m: [0, 0] for m in models}
    for t in range(trials):
        verdicts = [one(m, 0.0) for m in models]
        aa_jobs_failed += FAIL in verdicts
        aa_cells_failed += verdicts.count(FAIL)
        aa_unstable += verdicts.count(UNSTABLE)
        slow = models[t % len(models)]
        caught[slow][0] += one(slow, math.log1p(slowdown)) == FAIL
        caught[slow][1] += 1
    total = sum(c[0] for c in caught.values())
    return {"kind": kind, "trials": trials, "cells": len(models), "level": level, "looks": plan.looks,
            "block": block if kind == "block" else None, "sd": sds,
            "aa_job_false_alarm_rate": aa_jobs_failed / trials,
            "aa_cell_false_alarm_rate": aa_cells_failed / (trials * len(models)),
            "aa_unstable_rate": aa_unstable / (trials * len(models)),
            "slowdown": slowdown, "caught_rate": total / trials,
            "caught_by_model": {m: c[0] / c[1] for m, c in caught.items() if c[1]}}


def noise_from(aa: list[list[dict]]) -> dict[str, list[np.ndarray]]:
    """Each model's A/A per-pair log-ratio sequences, centred on the model's pooled median (the null: no
    difference at all)."""
    by: dict[str, list[np.ndarray]] = {}
    for rep in aa:
        for c in rep:
            if c["log_ratios"]:
                by.setdefault(c["model"], []).append(np.array(c["log_ratios"]))
    out = {}
    for m, seqs in by.items():
        centre = float(np.median(np.concatenate(seqs)))
        out[m] = [s - centre for s in seqs]
    return out


def _short(model: str) -> str:
    return model.replace("mobileone_", "").replace("mobilenetv2_100", "mnv2")


def _per_cell(cells: list[dict]) -> str:
    return ", ".join(f"{_short(c['model'])} {c['verdict']} {c['ratio']:.2f}" if c.get("ratio")
                     else f"{_short(c['model'])} {c['verdict']}" for c in cells)


def _sim_rows(sim: dict) -> list[list[str]]:
    what = ("iid at measured sd" if sim["kind"] == "normal" else f"block bootstrap ({sim['block']} pairs) of A/A")
    return [
        [f"synthetic A/A ({what}): {sim['trials']} jobs x {sim['cells']} cells, any FAIL", "<= 5%",
         f"{sim['aa_job_false_alarm_rate']:.1%} (per cell {sim['aa_cell_false_alarm_rate']:.2%}, "
         f"UNSTABLE {sim['aa_unstable_rate']:.0%})"],
        [f"synthetic {sim['slowdown']:.0%} slowdown ({what}): caught", ">= 90%",
         f"{sim['caught_rate']:.1%} (" + ", ".join(f"{_short(m)} {v:.0%}"
                                                   for m, v in sim["caught_by_model"].items()) + ")"],
    ]


def report(real: dict, sims: list[dict], noise: dict) -> list[list[str]]:
    aa_cells = [c for rep in real["aa"] for c in rep]
    aa_fail_jobs = sum(any(c["verdict"] == FAIL for c in rep) for rep in real["aa"])
    aa_ratios = [c["ratio"] for c in aa_cells if c.get("ratio")]
    counts = {v: sum(c["verdict"] == v for c in aa_cells) for v in (FAIL, UNSTABLE, PASS, "ERROR")}
    rows = [
        [f"A/A real: {len(real['aa'])} bench ab jobs x {len(real['aa'][0]) if real['aa'] else 0} cells", "no FAIL",
         f"{aa_fail_jobs} jobs FAIL; cells " + ", ".join(f"{n} {v}" for v, n in counts.items() if n)
         + (f"; ratios {min(aa_ratios):.3f}-{max(aa_ratios):.3f}" if aa_ratios else "")],
        ["graph optimizations off (disable_optimizations)", "FAIL", _per_cell(real["noopt"])],
        ["train form vs deploy form (MobileOne)", "FAIL", _per_cell(real["train"])],
        ["per-pair log-ratio spread, A/A (robust sd)", "measured",
         ", ".join(f"{_short(m)} {robust_sd(np.concatenate(s)):.1%}" for m, s in noise.items())],
    ]
    for sim in sims:
        rows += _sim_rows(sim)
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="2 A/A repeats, quick rounds, 200 synthetic trials")
    p.add_argument("--repeats", type=int, help="A/A repeats of the 4 cells (default 20; --quick 2)")
    p.add_argument("--trials", type=int, help="synthetic jobs (default 400; --quick 200)")
    p.add_argument("--threads", type=int, default=1, help="intra-op threads (default 1)")
    p.add_argument("--protocol", help="round shape (default: default; --quick: quick)")
    p.add_argument("--min-effect", type=float, default=0.05, help="minimum effect (default 0.05)")
    p.add_argument("--block", type=int, default=4, help="block length of the synthetic draws (pairs)")
    p.add_argument("--cache-dir", help="artifact cache (default: the bench cache)")
    p.add_argument("--seed", type=int, default=1, help="seed of the random starts and the simulation")
    p.add_argument("--json", help="write every figure and per-pair log ratio here")
    p.add_argument("--reuse", metavar="JSON", help="skip measuring: re-analyse the real runs of an earlier --json")
    args = p.parse_args(argv)
    args.repeats = args.repeats or (2 if args.quick else 20)
    args.trials = args.trials or (200 if args.quick else 400)
    args.protocol = args.protocol or ("quick" if args.quick else "default")
    if args.trials < 200 and not args.quick:
        p.error("--trials must be >= 200 for the false-alarm figure to mean something")

    t0 = time.monotonic()
    if args.reuse:  # re-analyse the measurements of an earlier --json, without measuring again
        real = json.loads(Path(args.reuse).read_text())["real"]
    else:
        with tempfile.TemporaryDirectory() as tmp:
            real = real_runs(args, Path(tmp))
    noise = noise_from(real["aa"])
    sims = [simulate(noise, args.trials, args.min_effect, 0.10, args.block, args.seed, kind)
            for kind in ("normal", "block")]
    rows = report(real, sims, noise)

    print_table(["claim", "target", "measured here"], rows,
                title=f"latency gate evidence: {real['threads']} thread(s), protocol {real['protocol']}, "
                      f"min effect {args.min_effect:.0%}, {ABPlan().looks} looks",
                footnotes=[f"took {time.monotonic() - t0:.0f} s"])
    aa_fail_jobs = sum(any(c["verdict"] == FAIL for c in rep) for rep in real["aa"])
    iid = sims[0]
    fails = lambda cells: f"{sum(c['verdict'] == FAIL for c in cells)}/{len(cells)}"  # noqa: E731
    ok = (aa_fail_jobs == 0 and all(c["verdict"] == FAIL for c in real["noopt"])
          and all(c["verdict"] == FAIL for c in real["train"] if c["model"] == "mobileone_s0")
          and iid["aa_job_false_alarm_rate"] <= 0.05 and iid["caught_rate"] >= 0.90)
    print(f"SUMMARY: A/A real {aa_fail_jobs}/{len(real['aa'])} jobs FAIL | no-opt {fails(real['noopt'])} FAIL | "
          f"train-form {fails(real['train'])} FAIL | synthetic (measured spread) false alarms "
          f"{iid['aa_job_false_alarm_rate']:.1%}, 10% caught {iid['caught_rate']:.1%} | block bootstrap "
          f"{sims[1]['aa_job_false_alarm_rate']:.1%}, {sims[1]['caught_rate']:.1%} | "
          f"{'claims hold' if ok else 'NOT all claims hold'}")
    if args.json:
        atomic_write_json(Path(args.json), {"args": vars(args), "real": real, "simulations": sims,
                                            "rows": rows, "all_claims_hold": ok})
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
