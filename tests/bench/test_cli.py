"""The `bench` command: bad input is one line on stderr, exit 2, no traceback."""
import os
import subprocess
import sys

import pytest

from bench.reference import REPO_ROOT


def bench(*args, cwd=None, env=None):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "bench.cli", *args], capture_output=True, text=True,
                          cwd=cwd or REPO_ROOT, env=e, timeout=600)


def bench_in_process(capsys, monkeypatch, *args, cwd=None):
    """The CLI's main() in this process (no interpreter start-up): what it prints and returns."""
    from types import SimpleNamespace

    from bench.cli import main
    if cwd:
        monkeypatch.chdir(cwd)
    code = main(list(args))
    out = capsys.readouterr()
    return SimpleNamespace(returncode=code, stdout=out.out, stderr=out.err)


def assert_one_line_error(proc, *fragments):
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for f in fragments:
        assert f in lines[0], lines[0]


@pytest.mark.parametrize("args, fragments", [
    (["models", "resnet50"], ["no model matches 'resnet50'", "known models: repvgg_b2"]),
    (["run", "--models", "resnet50", "--device", "cpu"], ["no model matches 'resnet50'"]),
    (["run", "--models", "mobileone_s0", "--device", "gpu"], ["unknown device 'gpu'", "known devices: cpu"]),
    (["run", "--models", "mobileone_s0", "--protocol", "fastest"], ["protocol = 'fastest' is unknown"]),
    (["run", "--models", "mobileone_s0", "--threads", "two"], ["--threads 'two' must be a whole number"]),
    (["run", "--models", "mobileone_s0", "--config", "missing.toml"], ["config file missing.toml not found"]),
    (["run", "--models", "mobileone_s0", "--device", "trt"], ["device trt cannot run here", "mobileone-bench[trt]"]),
    (["run", "--models", "mobileone_s0", "--option", "cpu.turbo=1"], ["devices.cpu.turbo is not an option of cpu"]),
    (["export", "--device", "torch", "--models", "mobileone_s0"], ["nothing to export"]),
    (["run", "--resume", "no-such-run"], ["run 'no-such-run' not found"]),
    (["frobnicate"], ["invalid choice"]),
])
def test_bad_input(args, fragments, capsys, monkeypatch):
    if args == ["frobnicate"]:  # argparse exits by itself: check it through the real entry point
        assert_one_line_error(bench(*args), *fragments)
        return
    assert_one_line_error(bench_in_process(capsys, monkeypatch, *args), *fragments)


def test_malformed_bench_toml(tmp_path, capsys, monkeypatch):
    (tmp_path / "bench.toml").write_text('[suite]\nthreads = -1\n')
    assert_one_line_error(bench_in_process(capsys, monkeypatch, "run", "--models", "mobileone_s0", cwd=tmp_path),
                          "threads = -1")
    (tmp_path / "bench.toml").write_text('[suite\n')
    assert_one_line_error(bench("run", cwd=tmp_path), "bench.toml is not valid TOML")  # the real entry point


def test_unwritable_output_directory(tmp_path, capsys, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "cache"))
    assert_one_line_error(bench_in_process(capsys, monkeypatch, "run", "--models", "mobileone_mu0", "--protocol",
                                           "quick", "--out", str(blocker / "runs")),
                          "cannot create results folder", "--out")
