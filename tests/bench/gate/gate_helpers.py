"""Helpers of the gate's tests (imported by name: conftest.py puts this folder on sys.path): run `bench` with
the gate's commands registered, build stored runs from synthetic rounds, and synthetic A/B machines."""
import contextlib
import io
import hashlib
import json
import math
import os
import subprocess
import sys
import zlib

import numpy as np

from bench import commands
from bench.cli import main
from bench.core.artifact import ExportArtifact
from bench.core.result import FAILED, OK, LatencyResult
from devices.registry import comparability_key as make_key
from bench.gate.interleave import HEAD, RoundResult, interleave
from bench.gate.variants import Variant
from bench.gate.verdict import UNSTABLE, CellComparison, GateReport, decide_pairs
from bench.reference import REPO_ROOT
from bench.stats import summarize
from bench.store import Run, RunWriter

_RUN_BENCH = ("import sys; from bench import commands\n"
              "'gate' in commands.COMMAND_MODULES or commands.COMMAND_MODULES.append('gate')\n"
              "from bench.cli import main; sys.exit(main(sys.argv[1:]))")


def bench(*args, cwd=None, env=None, timeout=900):
    e = dict(os.environ)
    e["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + e.get("PYTHONPATH", "")
    e.update(env or {})
    return subprocess.run([sys.executable, "-c", _RUN_BENCH, *map(str, args)], capture_output=True, text=True,
                          cwd=cwd or REPO_ROOT, env=e, timeout=timeout)


def assert_one_line_error(proc, *fragments):
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for f in fragments:
        assert f in lines[0], lines[0]


ENV = {"hostname": "box", "cpu": {"model": "Test CPU 9000"}, "libraries": {"onnxruntime": "1.31.1"}}


def make_cell(model="mobileone_s0", rounds=None, threads=1, ok=True, env_key=None, latency=None, summary=None):
    rounds = rounds if rounds is not None else []
    if summary is None and rounds:
        summary = summarize(rounds).to_dict()
    key = env_key if env_key is not None else make_key(ENV, "cpu", "onnxruntime", threads, "fp32")
    return LatencyResult(model=model, device="cpu", runner="onnxruntime", threads=threads,
                         status=OK if ok else FAILED, error=None if ok else "RuntimeError: boom",
                         summary=summary, samples_ms=[list(r) for r in rounds], env_key=key)


def write_run(path, cells, env=None, run_id="20250101-000000-abcd", created="2025-01-01T00:00:00+00:00",
              status="complete"):
    run = Run(run_id=run_id, created=created, command=["bench", "run"], config={}, env=env or ENV)
    writer = RunWriter(path, run)
    for c in cells:
        writer.add(c)
    writer.finish(status)
    return path


def rounds_at(level_ms, n=10, per_round=20, sd=0.01, seed=0):
    """n rounds of per_round samples around level_ms, with round-to-round noise of relative sd `sd`."""
    rng = np.random.default_rng(seed)
    return [list(level_ms * np.exp(rng.normal(0, sd)) * np.exp(rng.normal(0, 0.002, per_round))) for _ in range(n)]


def cli(*args):
    """`bench ARGS` in this process: (exit code, stdout, stderr). Fast: no interpreter start-up."""
    saved = list(commands.COMMAND_MODULES)
    if "gate" not in commands.COMMAND_MODULES:
        commands.COMMAND_MODULES.append("gate")
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main([str(a) for a in args])
            except SystemExit as e:  # argparse's own errors
                code = e.code
    finally:
        commands.COMMAND_MODULES[:] = saved
    return code, out.getvalue(), err.getvalue()


def assert_cli_error(result, *fragments):
    code, _out, err = result
    assert code == 2, (code, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    for f in fragments:
        assert f in lines[0], lines[0]


class Scripted:
    """A synthetic machine: round medians from level(variant) x drift(time) x noise."""

    def __init__(self, ratio=1.0, sd=0.0, drift=0.0, seed=0):
        self.ratio, self.sd, self.drift = ratio, sd, drift
        self.rng = np.random.default_rng(seed)
        self.calls = []

    def __call__(self, variant, pair):
        t = len(self.calls)
        self.calls.append((variant, pair))
        level = 10.0 * (self.ratio if variant == HEAD else 1.0) * (1 + self.drift * t)
        return RoundResult((level * math.exp(self.rng.normal(0, self.sd)) if self.sd else level,))


def variant(label, models, errors=None, threads=1):
    return Variant(label, f"synthetic {label}", "cpu", threads, {}, {m: f"{label}:{m}" for m in models},
                   {m: "deploy" for m in models}, errors or {})


def synthetic_cell(ratios, sd=0.01):
    """A measure_cell for measure_variants that interleaves a Scripted machine per model."""
    def measure(model, base, head, protocol, plan, level, min_effect, first):
        if ratios[model] is None:
            raise RuntimeError("session creation failed")
        m = Scripted(ratios[model], sd, seed=zlib.crc32(model.encode()) % 1000)
        inter = interleave(m, first, plan.min_pairs, plan.max_pairs, plan.step,
                           lambda lr: decide_pairs(lr, level, min_effect, plan.ci)[1] != UNSTABLE)
        est, v = decide_pairs(inter.log_ratios, level, min_effect, plan.ci)
        return inter, est, v
    return measure


def comparison(model, v, ratio=1.0, advisory=False, note=""):
    """A cell of a report with known numbers: interval ratio +- 0.01."""
    return CellComparison(model, "cpu", "onnxruntime", "deploy", 1, v, base_ms=10.0, head_ms=10.0 * ratio,
                          ratio=ratio, ci_low=ratio - 0.01, ci_high=ratio + 0.01, level=0.9875, advisory=advisory,
                          note=note)


def gate_report(*cells):
    return GateReport("ab", "rev aaaa", "rev bbbb", tuple(cells), 0.05, "Bonferroni", "Test CPU, 1 thread(s)")


def write_artifact(folder, model, deploy=True):
    """A record and a (dummy) file as `bench export --out DIR` leaves them; the record names where it was
    written first, elsewhere."""
    folder.mkdir(parents=True, exist_ok=True)
    data = f"not a model: {model}".encode()
    (folder / f"{model}.onnx").write_bytes(data)
    art = ExportArtifact(model, "onnx", "fp32", f"/elsewhere/{model}.onnx", "input", (1, 3, 224, 224), "float32",
                         "output", hashlib.sha256(data).hexdigest(), "k", metadata={"build": {"deploy": deploy}},
                         size=len(data))
    (folder / f"{model}.onnx.json").write_text(json.dumps(art.to_dict()))
