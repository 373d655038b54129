"""Hostile input and signals at the CLI: one line and exit 2 for bad config files and thread counts, and
SIGTERM ending a run like Ctrl-C (status interrupted, a message, exit 143)."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from bench.cli import main

BAD_CONFIGS = {
    "suite-not-a-table": ("suite = 5\n", "suite = 5 must be a table"),
    "devices-not-a-table": ("devices = 5\n", "devices = 5 must be a table"),
    "device-options-not-a-table": ("[devices]\ncpu = 5\n", "devices.cpu = 5 must be a table of options"),
    "protocol-not-a-table": ("protocol = \"x\"\n", "protocol = 'x' must be a table"),
}


@pytest.mark.parametrize("name", sorted(BAD_CONFIGS))
def test_bad_config_files_are_one_line(name, tmp_path, capsys):
    text, expected = BAD_CONFIGS[name]
    cfg = tmp_path / "bench.toml"
    cfg.write_text(text)
    rc = main(["run", "--config", str(cfg), "--out", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert rc == 2 and expected in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_binary_and_unreadable_config_files(tmp_path, capsys):
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00\x81garbage")
    assert main(["run", "--config", str(binary)]) == 2
    assert "is not UTF-8 text" in capsys.readouterr().err
    folder = tmp_path / "folder.toml"
    folder.mkdir()
    assert main(["run", "--config", str(folder)]) == 2
    assert "not found" in capsys.readouterr().err


def test_absurd_thread_counts_are_refused_before_any_work(tmp_path, capsys):
    rc = main(["run", "--models", "mobileone_mu0", "--threads", "10000", "--out", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert rc == 2 and "threads = 10000 is more than" in err and not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_sigterm_ends_a_run_like_ctrl_c(tmp_path):
    out = tmp_path / "runs"
    env = {**os.environ, "BENCH_CACHE_DIR": str(tmp_path / "cache"), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from bench.cli import main; sys.exit(main(sys.argv[1:]))", "run",
         "--device", "cpu,torch", "--models", "mobileone_mu0,mobileone_mu1,mobileone_mu2,mobileone_s0",
         "--protocol", "default",
         "--threads", "1", "--out", str(out)], env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not list(out.glob("*.json")):
            time.sleep(0.2)
        time.sleep(0.5)  # inside the first cells (8 cells of up to 5 s each are left)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 143, err
    assert "terminated (SIGTERM)" in err and "bench run --resume" in err and "Traceback" not in err
    run = json.loads(next(out.glob("*.json")).read_text())
    assert run["status"] == "interrupted"


@pytest.mark.parametrize("flags, expected", [
    (["--weights", "/nonexistent/w.pt"], "weights = /nonexistent/w.pt not found"),
    (["--weights", "{tmp}"], "is a folder; pass the state_dict file itself"),
    (["--cache-dir", "{tmp}/afile"], "cache folder {tmp}/afile is a file, not a folder"),
])
@pytest.mark.parametrize("command", ["run", "export"])
def test_paths_are_checked_before_any_work(command, flags, expected, tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    flags = [f.format(tmp=tmp_path) for f in flags]
    rc = main([command, "--models", "mobileone_mu0", *flags]
              + (["--out", str(tmp_path / "runs")] if command == "run" else []))
    err = capsys.readouterr().err
    assert rc == 2 and expected.format(tmp=tmp_path) in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()


def test_export_out_must_be_a_writable_folder(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    rc = main(["export", "--models", "mobileone_mu0", "--out", str(tmp_path / "afile")])
    assert rc == 2 and "is a file, not a folder; pass a folder to --out" in capsys.readouterr().err


def test_resume_refuses_flags_it_would_ignore(tmp_path, capsys):
    rc = main(["run", "--resume", "latest", "--out", str(tmp_path), "--protocol", "bogus", "--models", "nosuch",
               "--threads", "0"])
    err = capsys.readouterr().err
    assert rc == 2 and "--resume finishes a run as it was configured; --models, --protocol, --threads" in err


def test_a_bug_exits_70_with_its_traceback_never_the_gate_s_fail_code(monkeypatch, capsys):
    from bench.cli import build_parser

    def broken(args):
        raise RuntimeError("a bug")

    parser = build_parser()
    monkeypatch.setattr("bench.cli.build_parser", lambda: _parser_with(parser, broken))
    rc = main(["models"])
    err = capsys.readouterr().err
    assert rc == 70 and "Traceback" in err and "RuntimeError: a bug" in err and "internal error" in err


def _parser_with(parser, func):
    class Bound:
        def parse_args(self, argv):
            args = parser.parse_args(argv)
            args.func = func
            return args
    return Bound()


def test_more_threads_than_usable_cores_warns_in_one_line(tmp_path, capsys, monkeypatch):
    import bench.commands.run as run_command

    monkeypatch.setattr(run_command, "usable_cores", lambda: 1)
    rc = main(["run", "--device", "cpu", "--models", "mobileone_mu0", "--protocol", "quick", "--threads", "2",
               "--out", str(tmp_path / "runs"), "--cache-dir", str(tmp_path / "cache")])
    err = capsys.readouterr().err
    assert rc == 0
    assert "bench: warning: 2 threads on the 1 cores this process may use" in err


def test_wait_budget_flag_and_setting(tmp_path, capsys):
    from bench.config import load_config

    cfg = tmp_path / "bench.toml"
    cfg.write_text('[suite]\nwait_budget = 30\n')
    assert load_config(str(cfg)).wait_budget == 30
    rc = main(["run", "--models", "mobileone_mu0", "--wait-budget", "soon", "--out", str(tmp_path / "runs")])
    assert rc == 2 and "--wait-budget 'soon' must be a number of seconds" in capsys.readouterr().err
    rc = main(["run", "--models", "mobileone_mu0", "--wait-budget", "-1", "--out", str(tmp_path / "runs")])
    assert rc == 2 and "wait_budget = -1.0 must be" in capsys.readouterr().err
