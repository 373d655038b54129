"""Are the numbers honest on a shared machine? Three measurements, side by side in one run.

    python benchmarks/honesty.py                 # K=5 quiet runs, 3 loaded runs, 4 ranking runs (~10 min)
    python benchmarks/honesty.py --runs 3 --models mobileone_mu0,mobileone_mu1,mobileone_s0

1. Quiet coverage: K runs of the same models with the default protocol; for every ordered pair of runs
   (i, j), does run j's median fall inside run i's 95% CI? A 95% interval should cover about 95%.
2. Injected contention: a load generator of this script's own (a busy loop pinned to CPU 0 at a duty cycle
   of 25%, 50% and 100%, which ends by itself) runs during a suite; against the quiet runs' median, the share
   of cells that are unflagged yet off by more than max(5%, their CI), and the time spent waiting for quiet.
3. Ranking robustness under the 50% load: Spearman between two interleaved runs, and between two
   sequential runs.
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
from bench.core.result import untrustworthy  # noqa: E402
from bench.pipeline import run_suite  # noqa: E402

MODELS = "mobileone_mu0,mobileone_mu1,mobileone_mu2,mobileone_s0,mobilenetv2_100,shufflenetv2_x1_0"


def _burn(duty: float, seconds: float, cpu: int) -> None:
    """Busy for `duty` of every 50 ms on one CPU, for `seconds` at most (then it ends by itself)."""
    try:
        os.sched_setaffinity(0, {cpu})
    except (AttributeError, OSError):
        pass
    end = time.monotonic() + seconds
    period = 0.05
    while time.monotonic() < end:
        t0 = time.monotonic()
        while time.monotonic() - t0 < duty * period:
            pass
        rest = period - (time.monotonic() - t0)
        if rest > 0:
            time.sleep(rest)


class Load:
    """A bounded load generator process, stopped by its PID when the block ends (or by itself)."""

    def __init__(self, duty: float, seconds: float = 900.0, cpu: int = 0):
        self.proc = mp.get_context("spawn").Process(target=_burn, args=(duty, seconds, cpu), daemon=True)

    def __enter__(self):
        self.proc.start()
        time.sleep(0.5)
        return self

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.join(10)


def suite_run(models: str, out: Path, cache: Path, threads: int, interleave: bool = False) -> dict:
    cfg = SuiteConfig(models=models, devices=("cpu",), protocol="default", threads=threads, out=str(out),
                      cache=str(cache), interleave=interleave)
    t0 = time.monotonic()
    run = run_suite(cfg, ["benchmarks/honesty.py"])
    cells = {c.model: c for c in run.cells if c.ok}
    return {"cells": cells, "wall_s": time.monotonic() - t0}


def coverage(runs: list[dict]) -> tuple[int, int]:
    inside = total = 0
    for i, a in enumerate(runs):
        for j, b in enumerate(runs):
            if i == j:
                continue
            for model, ca in a["cells"].items():
                cb = b["cells"].get(model)
                if cb is None or ca.summary.ci_low_ms is None:
                    continue
                total += 1
                inside += ca.summary.ci_low_ms <= cb.summary.latency_ms <= ca.summary.ci_high_ms
    return inside, total


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
    parser.add_argument("--runs", type=int, default=5, help="quiet runs (K, default 5)")
    parser.add_argument("--models", default=MODELS)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-honesty-") as tmp:
        tmp = Path(tmp)
        cache = tmp / "cache"
        print(f"models: {args.models}; threads {args.threads}; default protocol; device cpu", flush=True)
        quiet = [suite_run(args.models, tmp / f"quiet{k}", cache, args.threads) for k in range(args.runs)]
        inside, total = coverage(quiet)
        reference = {m: float(np.median([r["cells"][m].summary.latency_ms for r in quiet if m in r["cells"]]))
                     for m in quiet[0]["cells"]}
        flagged_quiet = sum(untrustworthy(c.flags) for r in quiet for c in r["cells"].values())
        print(f"1. quiet coverage: {inside} of {total} (run, other run) pairs have the other median inside the "
              f"95% CI = {inside / max(total, 1):.0%} (target >= 85%); quiet cells flagged: {flagged_quiet} of "
              f"{sum(len(r['cells']) for r in quiet)}; quiet wall per run {np.mean([r['wall_s'] for r in quiet]):.0f} s",
              flush=True)
        for duty in (0.25, 0.5, 1.0):
            with Load(duty):
                loaded = suite_run(args.models, tmp / f"load{int(duty * 100)}", cache, args.threads)
            bad, unflagged, n = wrong_unflagged(loaded, reference)
            redone = sum(len(c.rejected_rounds) for c in loaded["cells"].values())
            print(f"2. load {duty:.0%} of CPU 0: {bad} of {unflagged} unflagged cells off by more than max(5%, CI) "
                  f"(target 0); {n - unflagged} of {n} flagged; rounds redone {redone}; wall {loaded['wall_s']:.0f} s "
                  f"vs quiet {np.mean([r['wall_s'] for r in quiet]):.0f} s", flush=True)
        with Load(0.5):
            inter = [suite_run(args.models, tmp / f"inter{k}", cache, args.threads, interleave=True) for k in range(2)]
            seq = [suite_run(args.models, tmp / f"seq{k}", cache, args.threads) for k in range(2)]
        print(f"3. ranking under the 50% load: Spearman interleaved {rank_rho(*inter):.3f} vs sequential "
              f"{rank_rho(*seq):.3f}; vs the quiet ranking: interleaved {np.mean([rank_rho(r, quiet[0]) for r in inter]):.3f}, "
              f"sequential {np.mean([rank_rho(r, quiet[0]) for r in seq]):.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
