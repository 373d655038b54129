"""The device registry: every device module declares its spec once (`SPEC`), and this dict collects them.
Adding a device is one module plus one line here (see docs/architecture.md)."""
from __future__ import annotations

from bench.core.device import DeviceSpec, RunnerSpec
from bench.core.errors import MissingBackendError, UserError
from bench.core.optional import install_hint, missing
from bench.core.result import ComparabilityKey
from bench.core.runner import Availability, RunnerBase, RunnerOptions
from devices import android, coreml, cuda, openvino, ort_cpu, tflite, torch_cpu, torchscript, trt

DEVICES: dict[str, DeviceSpec] = {spec.name: spec for spec in (
    ort_cpu.SPEC,
    torch_cpu.SPEC,
    torchscript.SPEC,
    openvino.SPEC,
    trt.SPEC,
    cuda.SPEC,
    coreml.SPEC,
    tflite.SPEC,
    android.SPEC,
)}


def get_device(name: str) -> DeviceSpec:
    if name not in DEVICES:
        raise UserError(f"unknown device {name!r}; known devices: {', '.join(DEVICES)}")
    return DEVICES[name]


def device_for_key(key: str) -> DeviceSpec | None:
    """The device a results cell's device key stands for: ours, or one imported as another name (iphone)."""
    return DEVICES.get(key) or next((d for d in DEVICES.values() if key in d.imported_as), None)


def runner_availability(runner: RunnerSpec) -> Availability:
    """Whether this host can run (or only export for) one runner, and why not, without importing heavy
    modules."""
    absent = missing(*runner.modules)
    exportable = bool(runner.export_modules) and not missing(*runner.export_modules)
    if absent:
        why = f"missing Python package {', '.join(absent)} ({install_hint(runner.extra)})"
        return Availability("export-only" if exportable else "unavailable", why)
    if runner.check:
        try:
            result = runner.check()
        except Exception as e:  # a broken check must not take `bench devices` down with it
            result = Availability("unavailable", f"availability check failed: {type(e).__name__}: {e}")
        if not result.can_run and exportable:
            return Availability("export-only", result.reason)
        return result
    return Availability("available")


def availability(name: str, via: str | None = None) -> Availability:
    """Whether the runners that `via` selects (the device's default by default) can run here: the first
    that cannot says why."""
    checks = [runner_availability(r) for r in get_device(name).runners_for(via)]
    return next((a for a in checks if not a.can_run), checks[0])


def require_runnable(name: str, via: str | None = None) -> DeviceSpec:
    device = get_device(name)
    avail = availability(name, via)
    if not avail.can_run:
        raise MissingBackendError(f"device {name} cannot run here: {avail.reason}")
    return device


def make_runner(runner: RunnerSpec, options: RunnerOptions) -> RunnerBase:
    return runner.runner(options)


def paper_column(device_key: str) -> str | None:
    """The paper's Table 1 column a device (or an imported device key) is compared with."""
    device = device_for_key(device_key)
    return device.paper_column if device else None


def comparability_key(env: dict, device_key: str, runner_label: str, threads: int | None,
                      precision: str) -> ComparabilityKey:
    """What two cells must share to be compared, with the runtime whose version counts taken from the
    device's spec."""
    return ComparabilityKey.of(env, device_key, runner_label, threads, precision, runtime_of(device_key, runner_label))


def runtime_of(device_key: str, runner_label: str) -> str | None:
    """The distribution whose version a cell's comparability key records."""
    device = device_for_key(device_key)
    if device is None:
        return None
    return next((r.runtime for _, r in device.runners if r.label == runner_label), device.default_runner.runtime)


def host_cpu_devices() -> tuple[str, ...]:
    """The devices that run on this host's CPUs (their rounds are checked for foreign load): the ones whose
    latency can be read against the host's CPU peak."""
    return tuple(name for name, d in DEVICES.items() if d.contention_probe)
