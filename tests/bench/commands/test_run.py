"""`bench run` and `bench devices` (bench/commands/run.py) end to end.

`bench run --device trt --option trt.via=trtexec` with a stand-in trtexec on PATH and no tensorrt package:
the engine is built by trtexec from the ONNX artifact and the cells are measured (nothing needs TensorRT's
Python package). The GPU itself is absent here, so the host facts say one is there (a stand-in for hardware,
in a test of the orchestration around it)."""
import json
import os
import shutil
import stat
import subprocess
import sys

import pytest

from bench.cli import main
from bench.core.optional import installed
from bench.env import gpu
from bench.reference import REPO_ROOT


@pytest.fixture
def stand_in_trtexec(fixtures, tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "trtexec"
    shutil.copy(fixtures / "fake_trtexec.py", exe)
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    for f in fixtures.iterdir():
        if f.name != "fake_trtexec.py":
            (bin_dir / f.name).symlink_to(f)
    monkeypatch.setenv("PATH", f"{bin_dir}:{__import__('os').environ['PATH']}")
    monkeypatch.delenv("TRTEXEC", raising=False)
    monkeypatch.delenv("FAKE_TRTEXEC_FAIL", raising=False)
    facts = gpu.GpuFacts(nvml="ok", gpu_count=1, torch_version="2.13.0", torch_cuda=None, torch_gpus=0,
                         tensorrt=False)
    monkeypatch.setattr(gpu, "gather_facts", lambda: facts)
    import devices.trtexec as runner_module
    monkeypatch.setattr(runner_module, "gather_facts", lambda: facts)
    return exe


def test_trt_via_trtexec_measures_cells_without_the_tensorrt_package(stand_in_trtexec, tmp_path, capsys):
    assert not installed("tensorrt")
    rc = main(["run", "--device", "trt", "--option", "trt.via=trtexec", "--models", "mobileone_mu0",
               "--protocol", "quick", "--out", str(tmp_path / "runs"), "--cache-dir", str(tmp_path / "cache")])
    assert rc == 0, capsys.readouterr().err
    run = json.loads(next((tmp_path / "runs").glob("*.json")).read_text())
    (cell,) = run["cells"]
    assert cell["status"] == "ok", cell["error"]
    assert cell["runner"] == "trtexec" and cell["artifact"]["target"] == "trtexec"
    assert len(cell["samples_ms"]) == 3 and cell["device_samples_ms"]
    assert (tmp_path / "cache" / "onnx").is_dir() and (tmp_path / "cache" / "trtexec").is_dir()
    assert not (tmp_path / "cache" / "tensorrt").exists()


def test_trt_default_runner_still_names_the_missing_package(stand_in_trtexec, tmp_path, capsys):
    rc = main(["run", "--device", "trt", "--models", "mobileone_mu0", "--protocol", "quick",
               "--out", str(tmp_path / "runs"), "--cache-dir", str(tmp_path / "cache")])
    err = capsys.readouterr().err
    assert rc == 2 and "tensorrt" in err and "Traceback" not in err


# ---- the CPU run and the device list through the real entry point ----

def bench(*args, cwd=None, env=None):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "bench.cli", *args], capture_output=True, text=True,
                          cwd=cwd or REPO_ROOT, env=e, timeout=600)


def test_devices_lists_every_device_with_a_reason():
    rows = json.loads(bench("devices", "--json").stdout)
    by = {r["device"]: r for r in rows}
    assert by["cpu"]["status"] == "available"
    assert by["trt"]["status"] == "unavailable" and by["trt"]["reason"]


@pytest.mark.slow
def test_end_to_end_cpu_quick(tmp_path):
    proc = bench("run", "--device", "cpu", "--models", "mobileone_s0", "--protocol", "quick", "--out",
                 str(tmp_path), env={"BENCH_CACHE_DIR": str(tmp_path / "cache")})
    assert proc.returncode == 0, proc.stderr
    files = list(tmp_path.glob("*.json"))
    assert len(files) == 1
    run = json.loads(files[0].read_text())
    assert run["status"] == "complete" and run["schema"] == 2
    (c,) = run["cells"]
    assert c["status"] == "ok" and c["summary"]["latency_ms"] > 0 and c["artifact"]["metadata"]["parity"]["passed"]
    assert "mobileone_s0" in proc.stdout and "10.55" in proc.stdout  # the paper's CPU figure beside ours
