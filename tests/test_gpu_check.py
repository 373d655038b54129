"""benchmarks/gpu_check.py: its pure parts, and the whole check as a dry run on this CPU (the GPU steps run
their logic with the torch runner, the stand-in trtexec and the fp16 ONNX export)."""
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import gpu_check  # noqa: E402


def test_cuda_events_and_host_clock_agreement():
    assert gpu_check.agreement(1.03, 1.0)["agree"]
    assert not gpu_check.agreement(1.5, 1.0)["agree"]  # 0.5 ms of overhead on a 1 ms model: something is off
    assert not gpu_check.agreement(0.9, 1.0)["agree"]  # the device time inside the call cannot be longer
    assert gpu_check.agreement(0.2, 0.16)["agree"]  # a small model: 40 us of launch + sync is fine
    assert gpu_check.agreement(2.0, None)["agree"] is None


def test_output_comparison():
    a = np.array([[0.1, 2.0, -1.0]])
    same = gpu_check.compare_outputs(a, a.copy())
    assert same["bitwise_equal"] and same["top1_equal"] and same["cosine"] == pytest.approx(1.0)
    off = gpu_check.compare_outputs(a, a + [[0.0, 0.0, 3.5]])
    assert not off["bitwise_equal"] and not off["top1_equal"] and off["max_abs_diff"] == pytest.approx(3.5)
    assert not gpu_check.compare_outputs(a, np.array([[np.inf, 0, 0]]))["finite"]


def test_budget_caps_each_step_and_the_whole():
    now = [0.0]
    b = gpu_check.Budget(100.0, clock=lambda: now[0])
    assert b.left() == 100.0 - gpu_check.RESERVE_S
    assert b.until(30) == 30.0
    now[0] = 80.0
    assert b.until(30) == pytest.approx(80.0 + 100.0 - 80.0 - gpu_check.RESERVE_S)


def test_bad_arguments_are_one_line_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        gpu_check.parse_args([str(tmp_path), "--wheels", str(tmp_path / "nope")])
    assert e.value.code == 2 and "is not a folder" in capsys.readouterr().err


def test_the_gpu_tests_are_found_by_their_marker():
    assert "tests/devices/test_gpu_end_to_end.py" in gpu_check.gpu_test_files()


@pytest.mark.slow
def test_dry_run_passes_here_and_says_what_was_dry(tmp_path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    out = tmp_path / "out"
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), str(out), "--dry-run",
                           "--wheels", str(wheels)], capture_output=True, text=True, timeout=400, cwd=tmp_path)
    wall = time.monotonic() - t0
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((out / "gpu_check.json").read_text())
    steps = {s["name"]: s for s in report["steps"]}
    assert list(steps) == [name for name, _, _ in gpu_check.STEPS] and report["dry_run"]
    for name in ("cuda-quick", "cuda-default", "cuda-graph", "nvml-load", "trt", "trtexec", "gpu-tests"):
        assert steps[name]["status"] == "dry", (name, steps[name]["summary"])
    assert steps["probe"]["status"] == "ok" and "availability" in steps["probe"]["data"]
    # --wheels: pip resolved offline from the folder (dry: --dry-run, nothing installed)
    install = steps["install"]
    if install["data"]["missing"]:
        assert install["status"] == "dry" and {"--no-index", "--find-links", "--dry-run"} <= set(install["data"]["command"])
    assert steps["cuda-quick"]["data"]["models"] and all("host_median_ms" in r for r in steps["cuda-quick"]["data"]["models"])
    assert steps["cuda-graph"]["data"]["models"][0]["bitwise_equal"]
    assert steps["trt"]["data"]["fp16_onnx"]["parity"]["cosine"] >= 0.999
    assert "--loadEngine=" in " ".join(steps["trtexec"]["data"]["models"][0]["run_command"])
    # the summary table is printed last, and the log has everything
    lines = proc.stdout.strip().splitlines()
    assert lines[-1].startswith("9 steps, 0 failed") and any(l.startswith("step ") for l in lines[-14:])
    assert "== cuda-quick" in (out / "gpu_check.log").read_text()
    assert wall < gpu_check.BUDGET_S


@pytest.mark.slow
def test_the_time_budget_is_kept(tmp_path):
    out = tmp_path / "out"
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), str(out), "--dry-run",
                           "--budget-s", "25"], capture_output=True, text=True, timeout=200, cwd=tmp_path)
    wall = time.monotonic() - t0
    report = json.loads((out / "gpu_check.json").read_text())
    skipped = [s for s in report["steps"] if s["summary"].startswith("time budget")]
    assert skipped and skipped[-1]["name"] == "gpu-tests", [(s["name"], s["status"]) for s in report["steps"]]
    assert wall < 25 + 45, wall  # a step that started runs to its next model boundary, no further
    assert proc.returncode in (0, 1)
