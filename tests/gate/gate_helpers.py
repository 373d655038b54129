"""Helpers of the gate's tests (imported by name: pytest puts this folder on sys.path): run `bench` with the
gate's commands registered (the lead wires them into bench.commands.COMMAND_MODULES; until then this adds
them), and build stored runs from synthetic rounds."""
import os
import subprocess
import sys

from bench.reference import REPO_ROOT

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
    from bench.env import env_key as make_key
    from bench.core.result import FAILED, OK, LatencyResult
    from bench.stats import summarize

    rounds = rounds if rounds is not None else []
    if summary is None and rounds:
        summary = summarize(rounds).to_dict()
    key = env_key if env_key is not None else make_key(ENV, "cpu", "onnxruntime", threads, "fp32")
    return LatencyResult(model=model, device="cpu", runner="onnxruntime", threads=threads,
                         status=OK if ok else FAILED, error=None if ok else "RuntimeError: boom",
                         summary=summary, samples_ms=[list(r) for r in rounds], env_key=key)


def write_run(path, cells, env=None, run_id="20250101-000000-abcd", created="2025-01-01T00:00:00+00:00",
              status="complete"):
    from bench.store import Run, RunWriter

    run = Run(run_id=run_id, created=created, command=["bench", "run"], config={}, env=env or ENV)
    writer = RunWriter(path, run)
    for c in cells:
        writer.add(c)
    writer.finish(status)
    return path


def rounds_at(level_ms, n=10, per_round=20, sd=0.01, seed=0):
    """n rounds of per_round samples around level_ms, with round-to-round noise of relative sd `sd`."""
    import numpy as np
    rng = np.random.default_rng(seed)
    return [list(level_ms * np.exp(rng.normal(0, sd)) * np.exp(rng.normal(0, 0.002, per_round))) for _ in range(n)]



def cli(*args):
    """`bench ARGS` in this process: (exit code, stdout, stderr). Fast: no interpreter start-up."""
    import contextlib
    import io

    from bench import commands
    from bench.cli import main

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
