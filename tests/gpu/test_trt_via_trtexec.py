"""`bench run --device trt --option trt.via=trtexec` with a stand-in trtexec on PATH and no tensorrt package:
the engine is built by trtexec from the ONNX artifact and the cells are measured (nothing needs TensorRT's
Python package). The GPU itself is absent here, so the host facts say one is there (a stand-in for hardware,
in a test of the orchestration around it)."""
import json
import shutil
import stat

import pytest

from bench.cli import main
from bench.core.optional import installed
from bench.env import gpu


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
