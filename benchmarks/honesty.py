"""Are the numbers honest on a shared machine? Three measurements, side by side in one run.

    python benchmarks/honesty.py                 # K=5 quiet runs per mode, 3 loaded runs, 4 ranking runs (~15 min)
    python benchmarks/honesty.py --runs 3 --models mobileone_mu0,mobileone_mu1,mobileone_s0

1. Quiet coverage: K runs of the same models with the default protocol, sequential and interleaved runs
   alternating; for every ordered pair of runs of a mode (i, j), does run j's median fall inside run i's 95%
   CI? A 95% interval should cover about 95%. Printed for the reported interval (the rounds' own interval
   widened by the protocol's run-to-run spread, `between_runs_rel`), for the rounds' interval alone, and for
   other spreads (recomputed from the same runs: widening is a pure function of the rounds' interval), with
   the run-to-run spread the runs actually showed.
2. Injected contention: a load generator of this script's own (a busy loop pinned to CPU 0 at a duty cycle
   of 25%, 50% and 100%, which ends by itself) runs during a suite; against the quiet runs' median, the share
   of cells that are unflagged yet off by more than max(5%, their CI), and the time spent waiting for quiet.
3. Ranking robustness under a 50% load that comes and goes (CPU 0 busy for 3 s, then idle for 3 s: slow
   drift, what interleaving is for): Spearman between two interleaved runs, and between two sequential runs,
   and of each against the quiet ranking.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy import stats as sps

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.config import SuiteConfig  # noqa: E402
from bench.core.protocol import PRESETS  # noqa: E402
from bench.core.result import untrustworthy  # noqa: E402
from bench.pipeline import run_suite  # noqa: E402
from bench.stats import Summary, widen_for_runs  # noqa: E402

# Six of the paper's models whose latencies here lie close together (about 5-15 ms at 2 threads), so that the
# ranking test can tell the modes apart.
MODELS = "mobileone_s0,mobileone_s1,mobilenetv2_100,mobilenetv3_large_100,mnasnet_a1,efficientnet_b0"
SPREADS = (0.0, 0.01, 0.02, 0.03, 0.04, 0.05)


def _burn(duty: float, seconds: float, cpu: int, period: float = 0.05) -> None:
    """Busy for `duty` of every `period` seconds on one CPU, for `seconds` at most (then it ends by itself)."""
    try:
        os.sched_setaffinity(0, {cpu})
    except (AttributeError, OSError):
        pass
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t0 = time.monotonic()
        while time.monotonic() - t0 < duty * period:
            pass
        rest = period - (time.monotonic() - t0)
        if rest > 0:
            time.sleep(rest)


class Load:
    """A bounded load generator process, stopped by its PID when the block ends (or by itself)."""

    def __init__(self, duty: float, seconds: float = 900.0, cpu: int = 0, period: float = 0.05):
        self.proc = mp.get_context("spawn").Process(target=_burn, args=(duty, seconds, cpu, period), daemon=True)

    def __enter__(self):
        self.proc.start()
        time.sleep(0.5)
        return self

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.join(10)


def suite_run(models: str, out: Path, cache: Path, threads: int, interleave: bool = False) -> dict:
    """One suite, one cell after another unless `interleave` (explicit either way: the default is interleaved)."""
    cfg = SuiteConfig(models=models, devices=("cpu",), protocol="default", threads=threads, out=str(out),
                      cache=str(cache), interleave=interleave)
    t0 = time.monotonic()
    run = run_suite(cfg, ["benchmarks/honesty.py"])
    cells = {c.model: c for c in run.cells if c.ok}
    return {"cells": cells, "wall_s": time.monotonic() - t0}


def interval(cell, spread: float | None = None) -> tuple[float, float]:
    """The cell's reported 95% interval, or (spread given) its rounds' own interval widened by that spread."""
    s = cell.summary
    if spread is None:
        return s.ci_low_ms, s.ci_high_ms
    lo = s.within_low_ms if s.within_low_ms is not None else s.ci_low_ms
    hi = s.within_high_ms if s.within_high_ms is not None else s.ci_high_ms
    own = Summary("median", s.latency_ms, s.latency_ms, 0.0, 0.0, 0.0, 0.0, 0.0, lo, hi, 1, 1)
    w = widen_for_runs(own, spread)
    return w.ci_low_ms, w.ci_high_ms


def coverage(runs: list[dict], spread: float | None = None) -> tuple[int, int]:
    inside = total = 0
    for i, a in enumerate(runs):
        for j, b in enumerate(runs):
            if i == j:
                continue
            for model, ca in a["cells"].items():
                cb = b["cells"].get(model)
                if cb is None or ca.summary.ci_low_ms is None:
                    continue
                lo, hi = interval(ca, spread)
                total += 1
                inside += lo <= cb.summary.latency_ms <= hi
    return inside, total


def run_to_run_spread(runs: list[dict]) -> float:
    """The relative sd of a model's median from run to run (sd of log medians, root-mean-square over models)."""
    models = set.intersection(*(set(r["cells"]) for r in runs))
    sds = [np.std(np.log([r["cells"][m].summary.latency_ms for r in runs]), ddof=1) for m in models]
    return float(np.sqrt(np.mean(np.square(sds)))) if sds else float("nan")


def report_coverage(label: str, runs: list[dict]) -> None:
    inside, total = coverage(runs)
    alt = ", ".join(f"{'rounds only' if x == 0 else f'{x:.0%}'} {_pct(*coverage(runs, x))}" for x in SPREADS)
    flagged = sum(untrustworthy(c.flags) for r in runs for c in r["cells"].values())
    print(f"1. quiet coverage, {label}: {inside} of {total} (run, other run) pairs have the other median inside "
          f"the reported 95% CI = {_pct(inside, total)} (target >= 85%); with the run-to-run spread set to: {alt}; "
          f"spread the runs showed {run_to_run_spread(runs):.1%}; cells flagged {flagged} of "
          f"{sum(len(r['cells']) for r in runs)}; wall per run {np.mean([r['wall_s'] for r in runs]):.0f} s",
          flush=True)


def _pct(inside: int, total: int) -> str:
    return f"{inside / max(total, 1):.0%}"


def wrong_unflagged(run: dict, reference: dict[str, float]) -> tuple[int, int, int]:
    """(cells unflagged yet off by more than max(5%, their CI), unflagged cells, all cells)."""
    bad = unflagged = 0
    for model, c in run["cells"].items():
        if untrustworthy(c.flags):
            continue
        unflagged += 1
        off = abs(c.summary.latency_ms / reference[model] - 1)
        if off > max(0.05, c.summary.ci_rel_halfwidth or 0.0):
            bad += 1
    return bad, unflagged, len(run["cells"])


def rank_rho(a: dict, b: dict) -> float:
    common = sorted(set(a["cells"]) & set(b["cells"]))
    return float(sps.spearmanr([a["cells"][m].summary.latency_ms for m in common],
                               [b["cells"][m].summary.latency_ms for m in common]).statistic)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="quiet runs per mode (K, default 5)")
    parser.add_argument("--models", default=MODELS)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--sections", default="1,2,3", help="which measurements (default all: 1,2,3)")
    args = parser.parse_args()
    sections = {int(x) for x in args.sections.split(",")}
    with tempfile.TemporaryDirectory(prefix="bench-honesty-") as tmp:
        tmp = Path(tmp)
        cache = tmp / "cache"
        print(f"models: {args.models}; threads {args.threads}; default protocol (run-to-run spread "
              f"{PRESETS['default'].between_runs_rel:.0%}); device cpu", flush=True)
        # The quiet runs are also section 2's reference and section 3's quiet ranking: always measured.
        quiet, quiet_inter = [], []
        for k in range(args.runs):  # alternating, so slow drift of the machine meets both modes alike
            quiet.append(suite_run(args.models, tmp / f"quiet{k}", cache, args.threads))
            quiet_inter.append(suite_run(args.models, tmp / f"quiet-inter{k}", cache, args.threads, interleave=True))
        report_coverage("sequential", quiet)
        report_coverage("interleaved", quiet_inter)
        if sections == {1}:
            return 0
        reference = {m: float(np.median([r["cells"][m].summary.latency_ms for r in quiet if m in r["cells"]]))
                     for m in quiet[0]["cells"]}
        for duty in (0.25, 0.5, 1.0) if 2 in sections else ():
            with Load(duty):
                loaded = suite_run(args.models, tmp / f"load{int(duty * 100)}", cache, args.threads)
            bad, unflagged, n = wrong_unflagged(loaded, reference)
            redone = sum(len(c.rejected_rounds) for c in loaded["cells"].values())
            print(f"2. load {duty:.0%} of CPU 0: {bad} of {unflagged} unflagged cells off by more than max(5%, CI) "
                  f"(target 0); {n - unflagged} of {n} flagged; rounds redone {redone}; wall {loaded['wall_s']:.0f} s "
                  f"vs quiet {np.mean([r['wall_s'] for r in quiet]):.0f} s", flush=True)
        if 3 not in sections:
            return 0
        inter, seq = [], []
        with Load(0.5, period=6.0):
            for k in range(2):
                inter.append(suite_run(args.models, tmp / f"inter{k}", cache, args.threads, interleave=True))
                seq.append(suite_run(args.models, tmp / f"seq{k}", cache, args.threads))
        flagged = {name: sum(untrustworthy(c.flags) for r in runs for c in r["cells"].values())
                   for name, runs in (("interleaved", inter), ("sequential", seq))}
        print(f"3. ranking under a 50% load in 3 s bursts: Spearman between two runs: interleaved "
              f"{rank_rho(*inter):.3f} vs sequential {rank_rho(*seq):.3f}; vs the quiet ranking: interleaved "
              f"{np.mean([rank_rho(r, quiet[0]) for r in inter]):.3f}, sequential "
              f"{np.mean([rank_rho(r, quiet[0]) for r in seq]):.3f}; cells flagged: interleaved "
              f"{flagged['interleaved']}, sequential {flagged['sequential']} of {2 * len(inter[0]['cells'])}; wall "
              f"{np.mean([r['wall_s'] for r in inter]):.0f} s vs {np.mean([r['wall_s'] for r in seq]):.0f} s",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
