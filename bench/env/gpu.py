"""NVIDIA GPU facts: the GPU's identity and environment, and whether trt and cuda can run here (and why not).

Everything GPU-related (pynvml, torch.cuda, tensorrt) is imported inside functions, so importing this module
costs nothing on a machine without a GPU. The decisions (`diagnose_*`, `decode_throttle_reasons`) are pure
functions of gathered facts, tested without hardware.
"""
from __future__ import annotations

import importlib.util
import os
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata

from bench.core.errors import MissingBackendError
from bench.core.io import now_iso
from bench.core.runner import Availability

TRT_EXTRA = "pip install 'mobileone-bench[trt]'"
CUDA_TORCH_HINT = "install a CUDA build of torch (https://pytorch.org/get-started/locally/)"

# NVML's clock event ("throttle") reason bits, from nvml.h (nvmlClocksEventReason*). The first two are not
# slowdowns: an idle GPU and application clocks set below the maximum are normal states.
THROTTLE_REASONS: tuple[tuple[int, str, bool], ...] = (  # (bit, name, is a slowdown)
    (0x1, "gpu_idle", False),
    (0x2, "applications_clocks_setting", False),
    (0x4, "sw_power_cap", True),
    (0x8, "hw_slowdown", True),
    (0x10, "sync_boost", False),
    (0x20, "sw_thermal_slowdown", True),
    (0x40, "hw_thermal_slowdown", True),
    (0x80, "hw_power_brake_slowdown", True),
    (0x100, "display_clock_setting", False),
)


@dataclass(frozen=True)
class GpuFacts:
    """What this host says about NVIDIA GPUs, gathered without importing tensorrt."""

    nvml: str  # "ok", or why NVML could not be read (no driver, driver not loaded, nvidia-ml-py absent)
    gpu_count: int | None  # devices NVML reports; None when NVML could not be read
    torch_version: str
    torch_cuda: str | None  # torch.version.cuda: None for a CPU-only build of torch
    torch_gpus: int  # devices PyTorch's CUDA runtime sees (after CUDA_VISIBLE_DEVICES)
    tensorrt: bool  # the tensorrt package is installed (found, never imported here)


@dataclass(frozen=True)
class GpuIdentity:
    """What an engine is specific to: TensorRT engines and timing caches are valid for one GPU model and SM."""

    name: str
    compute_capability: str  # "9.0"
    uuid: str | None = None


NO_PYNVML = "nvidia-ml-py is not installed"


def _driver_missing(nvml: str) -> bool:
    return nvml.startswith("no NVIDIA driver") or nvml.startswith("NVIDIA driver not loaded")


def common_gpu_problem(f: GpuFacts) -> str | None:
    """Why no NVIDIA GPU can run here, or None. What can run decides: a CUDA build of torch that sees a GPU
    proves a driver and a GPU, whatever NVML says (containers often lack libnvidia-ml while CUDA works);
    NVML's figures are then missing, and each result's `gpu.nvml` says why."""
    if f.torch_cuda is not None and f.torch_gpus > 0:
        return None
    if _driver_missing(f.nvml):
        return f.nvml
    if f.gpu_count == 0:
        return "no NVIDIA GPU: the driver reports 0 devices"
    if f.nvml == NO_PYNVML and f.torch_cuda is not None and f.torch_gpus == 0:
        return (f"no NVIDIA GPU visible to PyTorch (CUDA {f.torch_cuda} build); check the NVIDIA driver "
                f"and CUDA_VISIBLE_DEVICES")
    return None


def _torch_problem(f: GpuFacts) -> str | None:
    if f.torch_cuda is None:
        return f"PyTorch {f.torch_version} is a CPU-only build; {CUDA_TORCH_HINT}"
    if f.torch_gpus == 0:
        return (f"PyTorch (CUDA {f.torch_cuda} build) sees no GPU; check CUDA_VISIBLE_DEVICES and that the "
                f"driver supports CUDA {f.torch_cuda}")
    return None


def diagnose_cuda(f: GpuFacts) -> Availability:
    """The `cuda` device needs a driver, a GPU and a CUDA build of PyTorch (in that order of diagnosis)."""
    why = common_gpu_problem(f) or _torch_problem(f)
    return Availability("unavailable", why) if why else Availability("available")


def diagnose_trt(f: GpuFacts) -> Availability:
    """The `trt` device needs a driver, a GPU, the tensorrt package, and PyTorch's CUDA runtime (the runner
    keeps its buffers, stream and events in torch.cuda; see docs/gpu.md)."""
    why = common_gpu_problem(f)
    if not why and not f.tensorrt:
        why = f"tensorrt package missing ({TRT_EXTRA})"
    why = why or _torch_problem(f)
    return Availability("unavailable", why) if why else Availability("available")


def nvml_failure_reason(error_class: str, message: str = "") -> str:
    """One line for an NVML error class name (pynvml raises NVMLError_<Reason> subclasses)."""
    if error_class == "NVMLError_LibraryNotFound":
        return "no NVIDIA driver (the NVML library libnvidia-ml is not installed)"
    if error_class == "NVMLError_DriverNotLoaded":
        return "NVIDIA driver not loaded (is the kernel module installed and the GPU passed through?)"
    if error_class == "NVMLError_NoPermission":
        return "no permission to query the NVIDIA driver"
    return f"NVML error: {message or error_class}"


class _NvmlUnavailable(Exception):
    pass


@contextmanager
def _nvml():
    """pynvml, initialized; raises _NvmlUnavailable(reason) where NVML cannot be used, at init or in the body
    (a device index past the last GPU, a GPU fallen off the bus)."""
    if importlib.util.find_spec("pynvml") is None:
        raise _NvmlUnavailable(NO_PYNVML)
    import pynvml

    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as e:
        raise _NvmlUnavailable(nvml_failure_reason(type(e).__name__, str(e))) from None
    try:
        yield pynvml
    except pynvml.NVMLError as e:
        raise _NvmlUnavailable(nvml_failure_reason(type(e).__name__, str(e))) from None
    finally:
        try:
            pynvml.nvmlShutdown()
        except pynvml.NVMLError:
            pass


def gather_facts() -> GpuFacts:
    nvml, count = "ok", None
    try:
        with _nvml() as nv:
            count = int(nv.nvmlDeviceGetCount())
    except _NvmlUnavailable as e:
        nvml = str(e)
    import torch  # a core dependency; CUDA itself is not initialized by these queries

    torch_cuda = torch.version.cuda
    torch_gpus = torch.cuda.device_count() if torch_cuda else 0
    return GpuFacts(nvml=nvml, gpu_count=count, torch_version=torch.__version__, torch_cuda=torch_cuda,
                    torch_gpus=torch_gpus, tensorrt=importlib.util.find_spec("tensorrt") is not None)


def check_cuda() -> Availability:
    return diagnose_cuda(gather_facts())


def check_trt() -> Availability:
    return diagnose_trt(gather_facts())


def require_cuda_device() -> None:
    """Raise MissingBackendError with the diagnosis when no CUDA GPU can run PyTorch here."""
    avail = check_cuda()
    if not avail.can_run:
        raise MissingBackendError(f"no usable CUDA GPU: {avail.reason}")


def decode_throttle_reasons(mask: int) -> list[str]:
    return [name for bit, name, _ in THROTTLE_REASONS if mask & bit]


def is_slowed_down(mask: int) -> bool:
    return any(mask & bit for bit, _, slowdown in THROTTLE_REASONS if slowdown)


def cuda_version_string(version: int) -> str:
    """NVML's CUDA driver version integer (12040) as "12.4"."""
    return f"{version // 1000}.{(version % 1000) // 10}"


def _visible_device(cuda_index: int) -> str | int:
    """What CUDA_VISIBLE_DEVICES says the CUDA device `cuda_index` is: a CUDA ordinal or a (possibly
    shortened) UUID; the index itself where the variable is unset."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible:
        entries = [e.strip() for e in visible.split(",") if e.strip()]
        if cuda_index < len(entries):
            entry = entries[cuda_index]
            return int(entry) if entry.isdigit() else entry
    return cuda_index


@dataclass(frozen=True)
class NvmlTarget:
    """The NVML device a CUDA index stands for: by NVML index or by full UUID, with how it was found and
    whether that mapping is certain (recorded with every result as `gpu.nvml_device`)."""

    index: int | None = None
    uuid: str | None = None
    how: str = ""
    certain: bool = True


def nvml_target(cuda_index: int, visible: str | None, order: str | None, nvml_uuids: list[str],
                torch_uuid: str | None = None) -> NvmlTarget:
    """Map a CUDA device index to NVML's numbering, which is physical (PCI bus order) and ignores both
    CUDA_VISIBLE_DEVICES and CUDA_DEVICE_ORDER.

    - A UUID from PyTorch's device properties (when CUDA is already up in this process) is exact.
    - CUDA_VISIBLE_DEVICES may name a GPU by a unique UUID prefix ("GPU-5d1b2c3e"), which CUDA accepts but
      nvmlDeviceGetHandleByUUID does not: the prefix is matched against NVML's own listing.
    - A CUDA ordinal equals NVML's index only in PCI bus order: CUDA_DEVICE_ORDER=PCI_BUS_ID, or a single
      GPU. Under FASTEST_FIRST (CUDA's default) with several GPUs it is a guess, and says so."""
    if torch_uuid:
        full = torch_uuid if torch_uuid.startswith(("GPU-", "MIG-")) else f"GPU-{torch_uuid}"
        if full in nvml_uuids:
            return NvmlTarget(nvml_uuids.index(full), full, "by UUID from PyTorch's device properties")
    entries = [e.strip() for e in (visible or "").split(",") if e.strip()]
    if visible is not None and visible.strip() != "":
        if cuda_index >= len(entries):
            return NvmlTarget(how=f"CUDA index {cuda_index} is past CUDA_VISIBLE_DEVICES={visible}", certain=False)
        entry = entries[cuda_index]
        if entry.startswith("MIG-"):  # a MIG instance: NVML resolves its full UUID itself
            return NvmlTarget(uuid=entry, how="by MIG UUID from CUDA_VISIBLE_DEVICES")
        if not entry.isdigit():
            prefix = entry if entry.startswith("GPU-") else f"GPU-{entry}"
            matches = [i for i, u in enumerate(nvml_uuids) if u.startswith(prefix)]
            if len(matches) == 1:
                return NvmlTarget(matches[0], nvml_uuids[matches[0]], f"UUID prefix {entry} from CUDA_VISIBLE_DEVICES")
            return NvmlTarget(how=f"UUID {entry} from CUDA_VISIBLE_DEVICES matches {len(matches)} NVML devices",
                              certain=False)
        ordinal = int(entry)
        how = f"ordinal {ordinal} from CUDA_VISIBLE_DEVICES"
    else:
        ordinal, how = cuda_index, f"CUDA index {cuda_index}"
    if ordinal >= len(nvml_uuids):
        return NvmlTarget(how=f"{how}: NVML lists {len(nvml_uuids)} devices", certain=False)
    order = (order or "FASTEST_FIRST").upper()
    if len(nvml_uuids) == 1 or order == "PCI_BUS_ID":
        return NvmlTarget(ordinal, nvml_uuids[ordinal], f"{how}, PCI bus order")
    return NvmlTarget(ordinal, nvml_uuids[ordinal], f"{how} taken as NVML index {ordinal}, but "
                      "CUDA_DEVICE_ORDER is FASTEST_FIRST: set CUDA_DEVICE_ORDER=PCI_BUS_ID to make it certain",
                      certain=False)


def _torch_uuid(cuda_index: int) -> str | None:
    """The device's UUID from PyTorch, only where CUDA is already initialized here (asking must not start it)."""
    import torch

    try:
        if torch.version.cuda and torch.cuda.is_initialized():
            uuid = getattr(torch.cuda.get_device_properties(cuda_index), "uuid", None)
            return str(uuid) if uuid is not None else None
    except Exception:  # an index past the last GPU: NVML's own mapping decides
        return None
    return None


def _resolve(nv, cuda_index: int) -> tuple[object, NvmlTarget]:
    uuids = []
    for i in range(int(nv.nvmlDeviceGetCount())):
        u = _query(nv.nvmlDeviceGetUUID, nv.nvmlDeviceGetHandleByIndex(i))
        uuids.append(u or "")
    target = nvml_target(cuda_index, os.environ.get("CUDA_VISIBLE_DEVICES"), os.environ.get("CUDA_DEVICE_ORDER"),
                         uuids, _torch_uuid(cuda_index))
    if target.index is not None:
        return nv.nvmlDeviceGetHandleByIndex(target.index), target
    if target.uuid is not None:
        return nv.nvmlDeviceGetHandleByUUID(target.uuid), target
    raise _NvmlUnavailable(f"no NVML device for CUDA index {cuda_index}: {target.how}")


def _handle(nv, cuda_index: int):
    return _resolve(nv, cuda_index)[0]


def _query(fn, *args):
    """One NVML query; None where this GPU or driver does not support it (MIG slices, some boards)."""
    try:
        value = fn(*args)
    except Exception:  # pynvml.NVMLError_NotSupported and kin: a missing figure, never a failed run
        return None
    return value.decode() if isinstance(value, bytes) else value


def _versions() -> dict:
    out = {}
    try:
        out["tensorrt"] = metadata.version("tensorrt")
    except metadata.PackageNotFoundError:
        out["tensorrt"] = None
    import torch

    out["torch"] = torch.__version__
    out["cuda_runtime_torch"] = torch.version.cuda
    out["cudnn"] = torch.backends.cudnn.version() if torch.version.cuda else None
    return out


def gpu_env(cuda_index: int = 0) -> dict:
    """The GPU a result was measured on: name, UUID, driver and CUDA versions, TensorRT version, limits.
    Never raises: what cannot be read is recorded as why."""
    env = {"cuda_index": cuda_index, **_versions()}
    try:
        with _nvml() as nv:
            h, target = _resolve(nv, cuda_index)
            cc = _query(nv.nvmlDeviceGetCudaComputeCapability, h)
            mem = _query(nv.nvmlDeviceGetMemoryInfo, h)
            power = _query(nv.nvmlDeviceGetPowerManagementLimit, h)
            cuda_drv = _query(nv.nvmlSystemGetCudaDriverVersion)
            env.update({
                "nvml": "ok",
                "nvml_device": {"index": target.index, "how": target.how, "certain": target.certain},
                "name": _query(nv.nvmlDeviceGetName, h),
                "uuid": _query(nv.nvmlDeviceGetUUID, h),
                "compute_capability": f"{cc[0]}.{cc[1]}" if cc else None,
                "driver": _query(nv.nvmlSystemGetDriverVersion),
                "cuda_driver": cuda_version_string(cuda_drv) if cuda_drv else None,
                "memory_total_mib": mem.total // 2**20 if mem else None,
                "power_limit_w": power / 1000 if power else None,
                "max_sm_clock_mhz": _query(nv.nvmlDeviceGetMaxClockInfo, h, nv.NVML_CLOCK_SM),
                "max_mem_clock_mhz": _query(nv.nvmlDeviceGetMaxClockInfo, h, nv.NVML_CLOCK_MEM),
                "app_sm_clock_mhz": _query(nv.nvmlDeviceGetApplicationsClock, h, nv.NVML_CLOCK_SM),
                "persistence_mode": _query(nv.nvmlDeviceGetPersistenceMode, h),
            })
    except _NvmlUnavailable as e:
        env["nvml"] = str(e)
    return env


def gpu_snapshot(cuda_index: int = 0) -> dict:
    """Clocks, temperature, power and throttle reasons now: taken before and after each model, so a result
    shows whether the GPU slowed down while it was measured. Never raises."""

    snap: dict = {"time": now_iso()}
    try:
        with _nvml() as nv:
            h = _handle(nv, cuda_index)
            reasons_fn = getattr(nv, "nvmlDeviceGetCurrentClocksEventReasons", None) or \
                nv.nvmlDeviceGetCurrentClocksThrottleReasons
            mask = _query(reasons_fn, h)
            power = _query(nv.nvmlDeviceGetPowerUsage, h)
            snap.update({
                "sm_clock_mhz": _query(nv.nvmlDeviceGetClockInfo, h, nv.NVML_CLOCK_SM),
                "mem_clock_mhz": _query(nv.nvmlDeviceGetClockInfo, h, nv.NVML_CLOCK_MEM),
                "temperature_c": _query(nv.nvmlDeviceGetTemperature, h, nv.NVML_TEMPERATURE_GPU),
                "power_w": power / 1000 if power is not None else None,
                "pstate": _query(nv.nvmlDeviceGetPerformanceState, h),
                "throttle_reasons": decode_throttle_reasons(mask) if mask is not None else None,
                "slowed_down": is_slowed_down(mask) if mask is not None else None,
            })
    except _NvmlUnavailable as e:
        snap["nvml"] = str(e)
    return snap


def gpu_identity(cuda_index: int = 0) -> GpuIdentity:
    """Name and compute capability of the CUDA device engines are built on: from PyTorch's CUDA runtime
    (which honours CUDA_VISIBLE_DEVICES like TensorRT does), else from NVML."""
    import torch

    if torch.version.cuda and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(cuda_index)
        uuid = getattr(props, "uuid", None)
        uuid = None if uuid is None else (str(uuid) if str(uuid).startswith("GPU-") else f"GPU-{uuid}")
        return GpuIdentity(props.name, f"{props.major}.{props.minor}", uuid)
    try:
        with _nvml() as nv:
            h = _handle(nv, cuda_index)
            major, minor = nv.nvmlDeviceGetCudaComputeCapability(h)
            return GpuIdentity(_query(nv.nvmlDeviceGetName, h), f"{major}.{minor}", _query(nv.nvmlDeviceGetUUID, h))
    except _NvmlUnavailable as e:
        raise MissingBackendError(f"no NVIDIA GPU to build for: {e}") from None
    except Exception as e:  # an index past the last GPU, a lost device
        raise MissingBackendError(f"no NVIDIA GPU at CUDA index {cuda_index}: {e}") from None



def env_info(cuda_index: int, before: dict | None) -> dict:
    """What a GPU runner's info() carries: the GPU's environment and its state before and after the model."""
    return {"gpu": gpu_env(cuda_index), "gpu_before": before, "gpu_after": gpu_snapshot(cuda_index)}
