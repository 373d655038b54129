"""The Runner contract every target implements, and what a host says about whether it can run one."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class RunnerOptions:
    """Options every runner gets. `extra` carries target-specific ones (compute units, CUDA graphs, adb serial)."""

    threads: int
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Runner(Protocol):
    """Load an artifact (or a model), infer once synchronously, close. Used as a context manager.

    `infer()` returns None, or the device-side time of that inference in milliseconds when the runner
    measures one itself (CUDA events on a GPU); the engine always times the host side around the call."""

    def load(self, target: Any) -> None: ...

    def infer(self) -> float | None: ...

    def close(self) -> None: ...

    def __enter__(self) -> "Runner": ...

    def __exit__(self, *exc) -> None: ...


class RunnerBase:
    """Context manager plumbing and the optional hooks the pipeline calls when a runner has them."""

    def __init__(self, options: RunnerOptions):
        self.options = options

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        pass

    def reload(self) -> None:
        """Presets that reload the model each round (modelbench) call this; by default a no-op."""

    def output(self):
        """The last inference's output as a numpy array (for parity checks)."""
        # An optional hook: callers check `supports_output` first, so reaching this is a caller's bug.
        raise TypeError(f"{type(self).__name__} does not keep its output (supports_output is False)")

    supports_output = False
    # True for runners whose steady state an outside tool measures: the pipeline then calls
    # `measure_external(protocol) -> ExternalMeasurement` instead of running our loop over `infer()`.
    external = False

    def info(self) -> dict:
        """What the runner knows about how it ran (providers, delegate, compute plan): stored with the result."""
        return {}


@dataclass(frozen=True)
class Availability:
    status: str  # available | export-only | unavailable
    reason: str = ""

    @property
    def can_run(self) -> bool:
        return self.status == "available"


@dataclass
class ExternalMeasurement:
    """A steady state measured by an outside tool (benchmark_model on a phone, trtexec) rather than by our
    loop. `samples_ms` holds raw samples by round where the tool gives them (trtexec's --exportTimes);
    where it gives only aggregates (benchmark_model), `samples_ms` is empty and `summary` carries them."""

    summary: dict  # bench.stats.Summary.to_dict()-shaped: latency_ms, median_ms, mean_ms, std_ms, min_ms, ...
    samples_ms: list[list[float]] = field(default_factory=list)
    device_samples_ms: list[list[float]] = field(default_factory=list)
    load_ms: float | None = None
    first_inference_ms: float | None = None
    warmup_iters: int = 0
    stop_reason: str = ""
    info: dict = field(default_factory=dict)  # tool version, command line, device properties, op profile
    flags: list[str] = field(default_factory=list)
