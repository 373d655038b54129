"""`bench node` and `bench run --cluster` at the CLI: refusals in one line (exit 2), and no Ray without --cluster.
A real cluster: tests/bench/cluster/test_lab.py."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cli import main

ROOT = Path(__file__).resolve().parents[3]

# Run `bench` in a fresh interpreter, optionally with Ray hidden (as if the cluster extra were not installed),
# and report the exit code and whether Ray was imported.
PROBE = """
import importlib.abc, json, sys
if {hide}:
    class HideRay(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "ray" or name.startswith("ray."):
                raise ModuleNotFoundError(f"No module named {{name!r}}")
            return None
    sys.meta_path.insert(0, HideRay())
from bench.cli import main
try:
    rc = main({argv!r})
except SystemExit as e:
    rc = e.code
print(json.dumps({{"rc": rc, "ray": "ray" in sys.modules}}))
"""


def bench(argv: list[str], hide_ray: bool = False, cwd: Path = ROOT) -> tuple[dict, str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    p = subprocess.run([sys.executable, "-c", PROBE.format(hide=hide_ray, argv=argv)], capture_output=True,
                       text=True, env=env, cwd=cwd, timeout=300)
    return json.loads(p.stdout.strip().splitlines()[-1]), p.stderr


def test_run_help_and_node_help_import_no_ray():
    for argv in (["run", "--help"], ["node", "start", "--help"]):
        out, _ = bench(argv)
        assert out == {"rc": 0, "ray": False}


@pytest.mark.slow
def test_a_local_run_imports_no_ray(tmp_path):
    out, err = bench(["run", "--device", "cpu", "--models", "mobileone_mu0", "--protocol", "quick", "--threads", "1",
                      "--out", str(tmp_path / "runs"), "--cache-dir", str(tmp_path / "cache")], cwd=tmp_path)
    assert out == {"rc": 0, "ray": False}, err[-2000:]


@pytest.mark.parametrize("argv", [
    ["run", "--cluster", "127.0.0.1:6379", "--device", "cpu", "--models", "mobileone_s0"],
    ["node", "start", "--head"],
    ["node", "status", "--address", "127.0.0.1:6379"],
])
def test_the_cluster_without_ray_installed_is_one_line_exit_2(argv, tmp_path):
    out, err = bench(argv + (["--out", str(tmp_path)] if argv[0] == "run" else []), hide_ray=True)
    assert out == {"rc": 2, "ray": False}
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "needs Ray" in lines[0] and "pip install 'mobileone-bench[cluster]'" in lines[0]


def test_node_start_needs_head_or_address(capsys):
    pytest.importorskip("ray")
    assert main(["node", "start", "--devices", "none"]) == 2
    assert "give --head" in capsys.readouterr().err
    assert main(["node", "start", "--head", "--address", "127.0.0.1:1", "--devices", "none"]) == 2
    assert main(["node", "start", "--head", "--host-label", "a b", "--devices", "none"]) == 2
    assert "--host-label 'a b' may use letters" in capsys.readouterr().err


def test_node_stop_with_nothing_started(tmp_path, capsys):
    assert main(["node", "stop", "--state-dir", str(tmp_path)]) == 0
    assert "no node was running" in capsys.readouterr().out
    assert main(["node", "stop", "--state-dir", str(tmp_path), "--host-label", "h1"]) == 2


def test_resume_accepts_cluster_but_not_other_flags(tmp_path, capsys):
    assert main(["run", "--resume", "latest", "--protocol", "quick", "--cluster", "127.0.0.1:1",
                 "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--protocol cannot change it" in err and "--cluster" not in err.split("cannot")[0]


def test_joining_a_head_that_does_not_answer_is_refused_at_once(tmp_path, capsys):
    pytest.importorskip("ray")
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once the socket is closed
    assert main(["node", "start", "--address", f"127.0.0.1:{port}", "--devices", "none",
                 "--state-dir", str(tmp_path)]) == 2
    assert f"no Ray head answers at 127.0.0.1:{port}" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # nothing started, nothing recorded
