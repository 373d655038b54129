"""Benchmarks of the harness itself, figures printed side by side in one run.

    python benchmarks/harness_bench.py overhead      # harness median vs a bare session.run loop (target |r-1| <= 1%)
    python benchmarks/harness_bench.py precision     # default protocol vs fixed 10 s per model: wall time, CI width
    python benchmarks/harness_bench.py export        # cold export of all models (target <= 2 min)
    python benchmarks/harness_bench.py ablation      # MobileOne-S0 deploy vs train form, cpu (ONNX) and torch
    python benchmarks/harness_bench.py all

Timings on a shared machine are only comparable as ratios measured in one interleaved run: every comparison
here alternates its two sides round by round.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.env import usable_cores  # noqa: E402
from bench.core.protocol import PRESETS, Protocol
from bench.measure import ContentionProbe, measure, run_round, warm_up  # noqa: E402
from bench.stats import summarize  # noqa: E402
from bench.zoo import create_model, list_models  # noqa: E402
from bench.core.runner import RunnerOptions  # noqa: E402
from devices.ort_cpu import OrtCpuRunner  # noqa: E402
from devices.torch_cpu import TorchCpuRunner  # noqa: E402
from bench.core.artifact import ExportRequest  # noqa: E402
from exporters.onnx import export  # noqa: E402

CACHE = Path(tempfile.gettempdir()) / "mobileone-bench-benchmarks"


def _interleaved(a, b, rounds: int, proto: Protocol) -> tuple[list[list[float]], list[list[float]]]:
    """Rounds of a and b alternating ABBA, after warming both up."""
    import time as _t
    clock = _t.perf_counter_ns
    warm_up(a, proto, clock)
    warm_up(b, proto, clock)
    ra, rb = [], []
    for i in range(rounds):
        order = (a, b) if i % 2 == 0 else (b, a)
        for fn in order:
            host, _ = run_round(fn, proto, clock)
            (ra if fn is a else rb).append(host)
    return ra, rb


def _ratio(ra, rb) -> tuple[float, float, float]:
    """Median of per-round ratios of medians, with a bootstrap 95% CI over rounds."""
    r = np.array([np.median(x) / np.median(y) for x, y in zip(ra, rb)])
    rng = np.random.default_rng(0)
    boots = [np.median(rng.choice(r, len(r))) for _ in range(2000)]
    return float(np.median(r)), float(np.quantile(boots, 0.025)), float(np.quantile(boots, 0.975))


def bench_overhead(rounds: int) -> None:
    """What the harness reports vs what a bare loop around session.run sees, same session, same process."""
    artifact, _ = export(ExportRequest("mobileone_s0"), CACHE)
    proto = Protocol("overhead", warmup_iters=20, warmup_s=1.0, round_min_iters=50, round_min_s=0.5,
                     round_max_s=5.0, target_rel_ci=None)
    with OrtCpuRunner(RunnerOptions(threads=1)) as runner:
        runner.load(artifact)
        sess, feed, outs = runner.session, runner._feed, runner._outputs
        harness_rounds, bare_rounds = [], []
        for i in range(rounds):
            first_harness = i % 2 == 0
            for side in ((0, 1) if first_harness else (1, 0)):
                if side == 0:
                    m = measure(runner.infer, replace(proto, min_rounds=1, max_rounds=1, warmup_iters=2,
                                                      warmup_s=0.0), probe=ContentionProbe())
                    harness_rounds.append(m.samples_ms[0])
                else:
                    samples = []
                    t_end = time.perf_counter() + proto.round_min_s
                    while len(samples) < proto.round_min_iters or time.perf_counter() < t_end:
                        t0 = time.perf_counter_ns()
                        sess.run(outs, feed)
                        samples.append((time.perf_counter_ns() - t0) / 1e6)
                    bare_rounds.append(samples)
    r, lo, hi = _ratio(harness_rounds, bare_rounds)
    print("\n== harness overhead: MobileOne-S0, ONNX Runtime, 1 thread, interleaved rounds ==")
    print(f"{'':24s}{'median (ms)':>12s}{'samples':>9s}")
    print(f"{'harness (measure())':24s}{np.median(np.concatenate(harness_rounds)):12.3f}"
          f"{sum(map(len, harness_rounds)):9d}")
    print(f"{'bare session.run loop':24s}{np.median(np.concatenate(bare_rounds)):12.3f}"
          f"{sum(map(len, bare_rounds)):9d}")
    print(f"ratio harness/bare (median of per-round ratios): {r:.4f}  95% CI [{lo:.4f}, {hi:.4f}]  "
          f"target |ratio-1| <= 1%: {'met' if abs(r - 1) <= 0.01 else 'NOT met'}")


def bench_precision(models: str, threads: int) -> None:
    """The default protocol's stopping rule vs a fixed 10 s per model: wall time and CI width reached."""
    names = list_models(models)
    proto_default = PRESETS["default"]
    proto_fixed = Protocol("fixed10s", warmup_iters=10, warmup_s=1.0, min_rounds=10, max_rounds=10,
                           round_min_iters=1, round_min_s=0.9, round_max_s=0.9, target_rel_ci=None)
    print(f"\n== time to precision: default protocol vs fixed 10 s per model ({threads} threads) ==")
    print(f"{'model':24s}{'default s':>10s}{'rounds':>7s}{'CI':>8s}{'fixed s':>9s}{'CI':>8s}")
    tot = [0.0, 0.0]
    widths = [[], []]
    for i, name in enumerate(names):
        artifact, _ = export(ExportRequest(name), CACHE)
        row = []
        with OrtCpuRunner(RunnerOptions(threads=threads)) as runner:
            runner.load(artifact)
            runner.infer()
            # Alternate which protocol goes first, so drift does not favour one.
            order = [(0, proto_default), (1, proto_fixed)][::1 if i % 2 == 0 else -1]
            for idx, proto in order:
                t0 = time.perf_counter()
                m = measure(runner.infer, proto, probe=ContentionProbe())
                wall = time.perf_counter() - t0
                w = summarize(m.samples_ms).ci_rel_halfwidth
                row.append((idx, wall, w, len(m.samples_ms)))
                tot[idx] += wall
                widths[idx].append(w)
        row.sort()
        print(f"{name:24s}{row[0][1]:10.1f}{row[0][3]:7d}{row[0][2]:8.1%}{row[1][1]:9.1f}{row[1][2]:8.1%}")
    print(f"{'total':24s}{tot[0]:10.1f}{'':7s}{np.median(widths[0]):8.1%}{tot[1]:9.1f}{np.median(widths[1]):8.1%}"
          "   (CI columns of the total row: median over models)")
    ratio = tot[0] / tot[1]
    at_target = [sum(w <= 0.02 for w in ws) for ws in widths]
    as_narrow = sum(d <= f for d, f in zip(*widths))
    met = ratio <= 0.5 and np.median(widths[0]) <= np.median(widths[1]) and at_target[0] >= at_target[1]
    print(f"wall-time ratio default/fixed: {ratio:.2f}; models at +-2% or better: default {at_target[0]}/"
          f"{len(names)}, fixed {at_target[1]}/{len(names)}; default as narrow or narrower: {as_narrow}/"
          f"{len(names)} models")
    print(f"target <= 0.5x at equal or better width (median width and models at +-2%): "
          f"{'met' if met else 'NOT met'}")


def bench_export(models: str) -> None:
    """Cold export of every model into an empty cache, then the warm (cache-hit) pass."""
    cold = Path(tempfile.mkdtemp(prefix="bench-cold-export-"))
    names = list_models(models)
    print(f"\n== cold export of {len(names)} models to ONNX ==")
    try:
        t0 = time.perf_counter()
        per = []
        for name in names:
            t = time.perf_counter()
            export(ExportRequest(name), cold)
            per.append((time.perf_counter() - t, name))
        cold_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        for name in names:
            export(ExportRequest(name), cold)
        warm_s = time.perf_counter() - t0
    finally:
        shutil.rmtree(cold, ignore_errors=True)
    slowest = ", ".join(f"{n} {s:.1f} s" for s, n in sorted(per, reverse=True)[:3])
    print(f"cold: {cold_s:.1f} s (target <= 120 s: {'met' if cold_s <= 120 else 'NOT met'}); "
          f"warm (all cache hits): {warm_s:.2f} s; slowest: {slowest}")


def bench_ablation(rounds: int = 10) -> None:
    """MobileOne-S0 deploy (fused) vs train (unfused) form, on ONNX Runtime and on PyTorch eager."""
    proto = Protocol("ablation", warmup_iters=5, warmup_s=0.5, round_min_iters=10, round_min_s=0.3,
                     round_max_s=3.0, target_rel_ci=None)
    print("\n== reparameterization ablation: MobileOne-S0 train form / deploy form, 1 thread, interleaved ==")
    deploy_art, _ = export(ExportRequest("mobileone_s0"), CACHE)
    train_art, _ = export(ExportRequest("mobileone_s0", deploy=False), CACHE)
    with OrtCpuRunner(RunnerOptions(threads=1)) as d, OrtCpuRunner(RunnerOptions(threads=1)) as t:
        d.load(deploy_art)
        t.load(train_art)
        rd, rt = _interleaved(d.infer, t.infer, rounds, proto)
    r, lo, hi = _ratio(rt, rd)
    print(f"cpu (ONNX Runtime): deploy {np.median(np.concatenate(rd)):.2f} ms, train "
          f"{np.median(np.concatenate(rt)):.2f} ms, train/deploy {r:.2f} [{lo:.2f}, {hi:.2f}]")
    with TorchCpuRunner(RunnerOptions(threads=1)) as d, TorchCpuRunner(RunnerOptions(threads=1)) as t:
        d.load(create_model("mobileone_s0"))
        t.load(create_model("mobileone_s0", deploy=False))
        rd, rt = _interleaved(d.infer, t.infer, rounds, proto)
    r, lo, hi = _ratio(rt, rd)
    print(f"torch (eager):      deploy {np.median(np.concatenate(rd)):.2f} ms, train "
          f"{np.median(np.concatenate(rt)):.2f} ms, train/deploy {r:.2f} [{lo:.2f}, {hi:.2f}]")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=("overhead", "precision", "export", "ablation", "all"))
    ap.add_argument("--models", default="all")
    ap.add_argument("--threads", type=int, default=usable_cores())
    ap.add_argument("--rounds", type=int, default=120, help="overhead: interleaved rounds per side")
    args = ap.parse_args()
    import platform
    print(f"host: {platform.node()}, {usable_cores()} usable cores, python {platform.python_version()}")
    if args.what in ("export", "all"):
        bench_export(args.models)
    if args.what in ("overhead", "all"):
        bench_overhead(args.rounds)
    if args.what in ("ablation", "all"):
        bench_ablation()
    if args.what in ("precision", "all"):
        bench_precision(args.models, args.threads)


if __name__ == "__main__":
    main()
