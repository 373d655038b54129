"""What a device module declares once: its runners (with the exporter each needs), the runtime it measures,
the paper platform it is compared with, whether the CPU contention probe applies, and its typed options.

Config validation, `bench devices`, the comparability key's runtime, the tables' paper columns and the gate's
probe choice are all derived from these specs (devices/registry.py collects them)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from bench.core.errors import UserError
from bench.core.options import as_bool, check_value
from bench.core.runner import Availability

# The paper's Table 1 platform columns (bench/data/reference/paper_table1_latency.csv) and what they were.
PAPER_PLATFORMS = {
    "cpu_x86_ms": "x86 CPU (Xeon Gold 5118)",
    "iphone12_ane_ms": "iPhone 12 (Neural Engine)",
    "trt_2080ti_ms": "RTX-2080Ti (TensorRT)",
    "pixel6_tpu_ms": "Pixel-6 (TPU, int8)",
}
KINDS = ("cpu", "gpu", "mobile")  # selects protocol variants (the paper preset: min of 1000 vs median of 100)


@dataclass(frozen=True)
class OptionSpec:
    """One `[devices.<name>]` option: its type, default, allowed values, and whether it shapes the exported
    artifact (then it is part of the export request and of the artifact's cache key)."""

    name: str
    type: type
    default: Any = None  # None: the runner's or exporter's own default
    allowed: tuple | None = None
    help: str = ""
    shapes_artifact: bool = False
    parse: Callable[[str, Any], Any] | None = None  # (key, value) -> value, raising UserError: a value's form

    def check(self, device: str, value: Any) -> Any:
        key = f"devices.{device}.{self.name}"
        if self.type is bool and isinstance(value, str):
            return as_bool(key, value, "option")
        value = check_value(key, value, self.type, self.allowed)
        return self.parse(key, value) if self.parse else value


@dataclass(frozen=True)
class RunnerSpec:
    """One way of measuring a device: the runner class, the exporter whose artifact it loads (None: it takes
    the PyTorch model), the packages it needs and the extra that installs them, and a hardware/OS check."""

    label: str  # recorded as the result's `runner`
    runner: type  # a RunnerBase subclass, constructed with RunnerOptions
    exporter: str | None
    runtime: str | None  # the distribution whose version goes into the comparability key
    modules: tuple[str, ...] = ()  # Python packages the runner needs
    extra: str | None = None
    check: Callable[[], Availability] | None = None
    export_modules: tuple[str, ...] = ()  # packages the exporter needs (export-only when these alone exist)


@dataclass(frozen=True)
class DeviceSpec:
    name: str
    description: str
    kind: str  # cpu | gpu | mobile
    precision: str  # default precision (an artifact's own precision wins)
    runners: tuple[tuple[str, RunnerSpec], ...]  # via name -> runner; the first is the default ("runtime")
    paper_column: str | None = None  # the PAPER_PLATFORMS column this device is compared with
    contention_probe: bool = False  # shares the host's CPUs: rounds are checked for foreign load
    options: tuple[OptionSpec, ...] = ()
    imported_as: tuple[str, ...] = ()  # device keys of imported results that stand for this device (iphone)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"device {self.name}: kind {self.kind!r} is not one of {KINDS}")
        if not self.runners:
            raise ValueError(f"device {self.name} declares no runner")
        if self.paper_column is not None and self.paper_column not in PAPER_PLATFORMS:
            raise ValueError(f"device {self.name}: unknown paper column {self.paper_column!r}")

    @property
    def default_runner(self) -> RunnerSpec:
        return self.runners[0][1]

    @property
    def label(self) -> str:
        return self.default_runner.label

    @property
    def exporter(self) -> str | None:
        return self.default_runner.exporter

    def option(self, name: str) -> OptionSpec | None:
        return next((o for o in self.options if o.name == name), None)

    def check_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """Each option known and of the right type and value; returns them as checked (text booleans parsed)."""
        out = {}
        for key, value in options.items():
            spec = self.option(key)
            if spec is None:
                allowed = ", ".join(o.name for o in self.options) or "none"
                raise UserError(f"devices.{self.name}.{key} is not an option of {self.name}; allowed: {allowed}")
            out[key] = spec.check(self.name, value)
        return out

    def artifact_settings(self, options: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
        """The options that shape the exported artifact, as an export request carries them."""
        shaping = {o.name for o in self.options if o.shapes_artifact}
        return tuple(sorted((k, v) for k, v in options.items() if k in shaping))

    def runners_for(self, via: str | None) -> list[RunnerSpec]:
        """The runners a `via` option selects: the default, a named alternative, or all of them ("both")."""
        names = [name for name, _ in self.runners]
        if via in (None, names[0]):
            return [self.default_runner]
        if via == "both" and len(names) > 1:
            return [spec for _, spec in self.runners]
        if via not in names:
            choices = names + (["both"] if len(names) > 1 else [])
            raise UserError(f"device {self.name} has no runner {via!r}; use {', '.join(choices)}")
        return [dict(self.runners)[via]]


VIA_HELP = "measure with our runtime loop, an alternative runner, or both"


def via_option(names: tuple[str, ...]) -> OptionSpec:
    return OptionSpec("via", str, names[0], (*names, "both"), VIA_HELP)

