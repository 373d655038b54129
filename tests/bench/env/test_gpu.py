"""bench/env/gpu.py: availability diagnoses, NVML environment capture, throttle reasons."""
import pytest

from bench.core.errors import MissingBackendError
from bench.env import gpu
from devices import trtexec
from bench.env.gpu import GpuFacts, diagnose_cuda, diagnose_trt

NO_DRIVER = gpu.nvml_failure_reason("NVMLError_LibraryNotFound")
OK = dict(nvml="ok", gpu_count=1, torch_version="2.13.0+cu128", torch_cuda="12.8", torch_gpus=1, tensorrt=True)


def facts(**over) -> GpuFacts:
    return GpuFacts(**{**OK, **over})


@pytest.mark.parametrize("over, cuda_reason, trt_reason", [
    ({}, None, None),
    (dict(nvml=NO_DRIVER, gpu_count=None, torch_cuda=None, torch_gpus=0, tensorrt=False), "no NVIDIA driver",
     "no NVIDIA driver"),
    (dict(nvml=gpu.nvml_failure_reason("NVMLError_DriverNotLoaded"), gpu_count=None), "driver not loaded",
     "driver not loaded"),
    (dict(gpu_count=0, torch_gpus=0), "no NVIDIA GPU", "no NVIDIA GPU"),
    (dict(tensorrt=False), None, "tensorrt package missing (pip install 'mobileone-bench[trt]')"),
    (dict(tensorrt=False, torch_cuda=None, torch_gpus=0), "CPU-only build", "tensorrt package missing"),
    (dict(torch_cuda=None, torch_gpus=0), "CPU-only build", "CPU-only build"),
    (dict(torch_gpus=0), "sees no GPU", "sees no GPU"),
    (dict(nvml=gpu.NO_PYNVML, gpu_count=None, torch_gpus=0), "no NVIDIA GPU visible", "no NVIDIA GPU visible"),
    (dict(nvml=gpu.NO_PYNVML, gpu_count=None), None, None),
])
def test_diagnoses_name_what_is_missing_in_order(over, cuda_reason, trt_reason):
    for diagnose, reason in ((diagnose_cuda, cuda_reason), (diagnose_trt, trt_reason)):
        avail = diagnose(facts(**over))
        if reason is None:
            assert avail.status == "available", avail
        else:
            assert avail.status == "unavailable" and reason in avail.reason, (diagnose.__name__, avail)


def test_nvml_failure_reasons():
    assert gpu.nvml_failure_reason("NVMLError_LibraryNotFound").startswith("no NVIDIA driver")
    assert gpu.nvml_failure_reason("NVMLError_DriverNotLoaded").startswith("NVIDIA driver not loaded")
    assert "Unknown Error" in gpu.nvml_failure_reason("NVMLError_Unknown", "Unknown Error")


def _host_has_driver() -> bool:
    return gpu.gather_facts().nvml == "ok"


@pytest.mark.skipif(_host_has_driver(), reason="this host has an NVIDIA driver")
def test_checks_on_a_host_without_driver_say_so():
    for check in (gpu.check_cuda, gpu.check_trt, trtexec.check_trtexec):
        avail = check()
        assert avail.status == "unavailable"
        assert "driver" in avail.reason or "nvidia-ml-py" in avail.reason or "CPU-only" in avail.reason, avail
    with pytest.raises(MissingBackendError, match="no usable CUDA GPU"):
        gpu.require_cuda_device()


@pytest.mark.skipif(_host_has_driver(), reason="this host has an NVIDIA driver")
def test_env_capture_never_raises_and_says_why():
    env, snap = gpu.gpu_env(), gpu.gpu_snapshot()
    assert env["nvml"] != "ok" and snap["nvml"] != "ok"
    assert {"torch", "tensorrt", "cuda_runtime_torch"} <= set(env)
    assert "time" in snap
    info = gpu.env_info(0, before=snap)
    assert info["gpu_before"] is snap and set(info) == {"gpu", "gpu_before", "gpu_after"}


def test_throttle_reasons_decode():
    assert gpu.decode_throttle_reasons(0) == []
    assert gpu.decode_throttle_reasons(0x1 | 0x4 | 0x40) == ["gpu_idle", "sw_power_cap", "hw_thermal_slowdown"]
    assert not gpu.is_slowed_down(0x1 | 0x2)  # idle, application clocks: normal states
    assert gpu.is_slowed_down(0x1 | 0x40)


def test_throttle_bits_match_nvml():
    pynvml = pytest.importorskip("pynvml")
    names = {"gpu_idle": "GpuIdle", "applications_clocks_setting": "ApplicationsClocksSetting",
             "sw_power_cap": "SwPowerCap", "hw_slowdown": "HwSlowdown", "sync_boost": "SyncBoost",
             "sw_thermal_slowdown": "SwThermalSlowdown", "hw_thermal_slowdown": "HwThermalSlowdown",
             "hw_power_brake_slowdown": "HwPowerBrakeSlowdown", "display_clock_setting": "DisplayClockSetting"}
    for bit, name, _ in gpu.THROTTLE_REASONS:
        assert getattr(pynvml, f"nvmlClocksThrottleReason{names[name]}") == bit, name


def test_cuda_version_string():
    assert gpu.cuda_version_string(12040) == "12.4"
    assert gpu.cuda_version_string(11080) == "11.8"
    assert gpu.cuda_version_string(13000) == "13.0"


def test_nvml_device_follows_cuda_visible_devices(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert gpu._visible_device(1) == 1
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    assert gpu._visible_device(0) == 2 and gpu._visible_device(1) == 3
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-5d1b2c3e-7f80")
    assert gpu._visible_device(0) == "GPU-5d1b2c3e-7f80"
