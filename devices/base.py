"""The Runner protocol every target implements, and the device registry with its availability checks."""
from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import Callable

from bench.core.errors import MissingBackendError, UserError
from bench.core.runner import Availability, RunnerBase, RunnerOptions


@dataclass(frozen=True)
class Device:
    name: str
    description: str
    exporter: str | None  # exporter name; None when the runner takes the PyTorch model itself
    runner: str  # "module:Class"
    modules: tuple[str, ...]  # Python packages the runner needs
    extra: str | None  # the extra that installs them
    kind: str  # cpu | gpu | mobile: selects protocol variants (paper: min of 1000 vs median of 100)
    label: str  # what produced the samples, recorded as the result's `runner`
    precision: str  # default precision (an artifact's own precision wins)
    check: str | None = None  # "module:function" -> Availability, for hardware and OS checks
    export_modules: tuple[str, ...] = ()  # packages the exporter needs (export-only when these alone exist)


DEVICES: dict[str, Device] = {
    "cpu": Device("cpu", "ONNX Runtime, CPU execution provider, fp32", "onnx", "devices.ort_cpu:OrtCpuRunner",
                  ("onnxruntime",), None, "cpu", "onnxruntime", "fp32"),
    "torch": Device("torch", "PyTorch eager on the CPU, fp32", None, "devices.torch_cpu:TorchCpuRunner",
                    ("torch",), None, "cpu", "torch", "fp32"),
    "trt": Device("trt", "TensorRT engine, fp16, on an NVIDIA GPU", "tensorrt", "devices.trt:TrtRunner",
                  ("tensorrt", "torch"), "trt", "gpu", "tensorrt", "fp16", check="bench.env.gpu:check_trt"),
    "cuda": Device("cuda", "PyTorch fp16 on CUDA, channels-last", None, "devices.cuda:CudaRunner",
                   ("torch",), "cuda", "gpu", "torch-cuda", "fp16", check="bench.env.gpu:check_cuda"),
    "coreml": Device("coreml", "Core ML fp16 (ML Program) on macOS", "coreml", "devices.coreml:CoreMLRunner",
                     ("coremltools",), "coreml", "mobile", "coreml", "fp16", check="devices.coreml:check",
                     export_modules=("coremltools",)),
    "tflite": Device("tflite", "full-integer int8 TFLite, LiteRT interpreter + XNNPACK",
                     "tflite", "devices.tflite:TFLiteRunner", ("ai_edge_litert",), "tflite", "mobile", "litert", "int8",
                     export_modules=("litert_torch", "ai_edge_quantizer")),
    "android": Device("android", "int8 TFLite on an Android phone via adb + benchmark_model", "tflite",
                      "devices.android:AndroidRunner", (), "tflite", "mobile", "benchmark_model", "int8",
                      check="devices.android:check"),
}


def get_device(name: str) -> Device:
    if name not in DEVICES:
        raise UserError(f"unknown device {name!r}; known devices: {', '.join(DEVICES)}")
    return DEVICES[name]


def _call(path: str):
    module, func = path.split(":")
    return getattr(importlib.import_module(module), func)


def availability(name: str) -> Availability:
    """Whether this host can run (or only export for) a device, and why not, without importing heavy modules."""
    device = get_device(name)
    missing = [m for m in device.modules if importlib.util.find_spec(m) is None]
    exportable = bool(device.export_modules) and all(
        importlib.util.find_spec(m) is not None for m in device.export_modules)
    if missing:
        why = f"missing Python package {', '.join(missing)} (pip install 'mobileone-bench[{device.extra}]')"
        return Availability("export-only" if exportable else "unavailable", why)
    if device.check:
        try:
            result: Availability = _call(device.check)()
        except Exception as e:  # a broken check must not take `bench devices` down with it
            result = Availability("unavailable", f"availability check failed: {type(e).__name__}: {e}")
        if not result.can_run and exportable:
            return Availability("export-only", result.reason)
        return result
    return Availability("available")


def require_runnable(name: str) -> Device:
    device = get_device(name)
    avail = availability(name)
    if not avail.can_run:
        raise MissingBackendError(f"device {name} cannot run here: {avail.reason}")
    return device


def make_runner(path: str, options: RunnerOptions) -> RunnerBase:
    """Instantiate a runner class given as "module:Class" (a device's own, or an alternative such as trtexec)."""
    cls: Callable[[RunnerOptions], RunnerBase] = _call(path)
    return cls(options)


# Alternative runners of a device, selected by its `via` option: label -> ("module:Class", availability check).
ALTERNATIVE_RUNNERS: dict[str, dict[str, tuple[str, str]]] = {
    # trtexec needs neither the tensorrt Python package nor a CUDA build of torch: its own check.
    "trt": {"trtexec": ("devices.trtexec:TrtexecRunner", "devices.trtexec:check_trtexec")},
}


def runners_for(name: str, via: str | None) -> list[tuple[str, str]]:
    """(label, "module:Class") of each runner to measure a device with: its own, an alternative, or both."""
    device = get_device(name)
    alternatives = {label: path for label, (path, _check) in ALTERNATIVE_RUNNERS.get(name, {}).items()}
    if via in (None, "runtime"):
        return [(device.label, device.runner)]
    if via == "both":
        return [(device.label, device.runner), *alternatives.items()]
    if via not in alternatives:
        raise UserError(f"device {name} has no runner {via!r}; use runtime"
                        + "".join(f", {k}" for k in alternatives) + (", both" if alternatives else ""))
    return [(via, alternatives[via])]


def runner_availability(name: str, via: str | None) -> Availability:
    """Whether the runners that `via` selects can run here: the device's own check, an alternative's, or both."""
    checks = []
    if via in (None, "runtime", "both"):
        checks.append(availability(name))
    for label, (_path, check) in ALTERNATIVE_RUNNERS.get(name, {}).items():
        if via in (label, "both"):
            try:
                checks.append(_call(check)())
            except Exception as e:
                checks.append(Availability("unavailable", f"availability check failed: {type(e).__name__}: {e}"))
    return next((a for a in checks if not a.can_run), Availability("available"))


