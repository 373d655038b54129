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
    (dict(nvml=gpu.nvml_failure_reason("NVMLError_DriverNotLoaded"), gpu_count=None, torch_gpus=0),
     "driver not loaded", "driver not loaded"),
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


# ------------------------------------------------------------ fault 4: NVML missing, CUDA working

@pytest.mark.parametrize("nvml", [NO_DRIVER, gpu.NO_PYNVML, gpu.nvml_failure_reason("NVMLError_DriverNotLoaded")])
def test_cuda_that_runs_is_available_without_nvml(nvml):
    """A container without libnvidia-ml but with a working CUDA: availability follows torch.cuda."""
    f = facts(nvml=nvml, gpu_count=None)
    assert diagnose_cuda(f).status == "available" and diagnose_trt(f).status == "available"
    assert gpu.common_gpu_problem(f) is None  # the trtexec check stands on the same facts
    # and without torch's GPU it is unavailable again
    assert diagnose_cuda(facts(nvml=nvml, gpu_count=None, torch_gpus=0)).status == "unavailable"


# ----------------------------------------- fault 5: shortened UUIDs and device order, over a stand-in NVML

UUIDS = ["GPU-5d1b2c3e-7f80-4a1b-9c2d-0e1f2a3b4c5d", "GPU-9a8b7c6d-1111-2222-3333-444455556666"]


def test_nvml_target_maps_uuid_prefixes_and_order():
    t = gpu.nvml_target(0, "GPU-9a8b7c6d", None, UUIDS)
    assert (t.index, t.uuid, t.certain) == (1, UUIDS[1], True)
    assert gpu.nvml_target(1, "GPU-5d1b,GPU-9a8b", None, UUIDS).index == 1
    assert gpu.nvml_target(0, "9a8b7c6d", None, UUIDS).index == 1  # CUDA accepts the prefix without GPU-
    assert gpu.nvml_target(0, "GPU-", None, UUIDS).index is None  # ambiguous: matches both
    assert gpu.nvml_target(0, "GPU-ffff", None, UUIDS).index is None
    assert gpu.nvml_target(2, "0,1", None, UUIDS).certain is False  # past the visible list
    # ordinals: NVML counts in PCI bus order; CUDA only with CUDA_DEVICE_ORDER=PCI_BUS_ID
    assert gpu.nvml_target(1, None, "PCI_BUS_ID", UUIDS) == gpu.NvmlTarget(1, UUIDS[1], "CUDA index 1, PCI bus order")
    guess = gpu.nvml_target(1, None, None, UUIDS)
    assert guess.index == 1 and not guess.certain and "CUDA_DEVICE_ORDER=PCI_BUS_ID" in guess.how
    assert gpu.nvml_target(0, "1", "FASTEST_FIRST", UUIDS).certain is False
    assert gpu.nvml_target(0, None, None, UUIDS[:1]).certain  # one GPU: no order to get wrong
    # PyTorch's own UUID for the device is exact, whatever the variables say
    exact = gpu.nvml_target(0, "0", None, UUIDS, torch_uuid=UUIDS[1][4:])
    assert (exact.index, exact.certain) == (1, True)
    assert gpu.nvml_target(0, "MIG-abc", None, UUIDS).uuid == "MIG-abc"


def fake_pynvml():
    """NVML's Python names, two GPUs; nvmlDeviceGetHandleByUUID needs the full UUID, as the real one does."""
    import types

    nv = types.ModuleType("pynvml")

    class NVMLError(Exception):
        pass

    class NVMLError_NotFound(NVMLError):
        pass

    nv.NVMLError, nv.NVMLError_NotFound = NVMLError, NVMLError_NotFound
    nv.NVML_CLOCK_SM, nv.NVML_CLOCK_MEM, nv.NVML_TEMPERATURE_GPU = 1, 2, 0
    names = ["NVIDIA H200", "NVIDIA L4"]
    nv.nvmlInit = nv.nvmlShutdown = lambda: None
    nv.nvmlDeviceGetCount = lambda: 2
    nv.nvmlDeviceGetHandleByIndex = lambda i: i
    nv.nvmlDeviceGetUUID = lambda h: UUIDS[h]
    nv.nvmlDeviceGetName = lambda h: names[h]

    def by_uuid(uuid):
        if uuid not in UUIDS:
            raise NVMLError_NotFound("Not Found")
        return UUIDS.index(uuid)

    nv.nvmlDeviceGetHandleByUUID = by_uuid
    nv.nvmlDeviceGetCudaComputeCapability = lambda h: (9, 0) if h == 0 else (8, 9)

    def not_supported(name):  # every other query: a figure this stand-in does not have
        def query(*args):
            raise NVMLError(f"{name}: Not Supported")
        return query

    nv.__getattr__ = not_supported
    return nv


def test_a_short_uuid_in_cuda_visible_devices_keeps_the_nvml_figures(monkeypatch):
    """Fault 5: NVML needs the full UUID; the short one CUDA accepts lost every NVML figure."""
    import sys

    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml())
    monkeypatch.setattr(gpu.importlib.util, "find_spec", lambda name: object())
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-9a8b7c6d")
    env = gpu.gpu_env(0)
    assert env["nvml"] == "ok" and env["name"] == "NVIDIA L4" and env["uuid"] == UUIDS[1]
    assert env["compute_capability"] == "8.9" and env["nvml_device"]["certain"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-0000")
    env = gpu.gpu_env(0)
    assert "no NVML device for CUDA index 0" in env["nvml"] and "name" not in env
