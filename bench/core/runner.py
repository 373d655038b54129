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
    # True for runners an outside tool times (trtexec, benchmark_model): they offer
    # `warm_up(protocol) -> (iterations, seconds)` and `time_round(protocol) -> TimedRound` instead of
    # `infer()`, and bench.measure runs its one loop over those rounds.
    self_timed = False

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


@dataclass(frozen=True)
class TimedRound:
    """One round of a runner's steady state. In-process runners get theirs from the timing loop; a runner an
    outside tool times (trtexec, benchmark_model) returns its own, and the loop decides what to do with it.
    `samples_ms` are the host-side (or the tool's end-to-end) times; a tool that prints only aggregates
    gives none and fills `aggregate` (a bench.stats.Summary.to_dict()-shaped dict) instead."""

    samples_ms: tuple[float, ...] = ()
    device_samples_ms: tuple[float, ...] = ()  # CUDA-event / GPU-compute times, when there are any
    measured_s: float | None = None  # time spent measuring (the time cap counts it); None: the round's wall time
    aggregate: dict | None = None
    warmup_iters: int = 0  # warm-up inferences the tool ran inside this round
    load_ms: float | None = None  # model load the tool reported (engine deserialize, interpreter init)
    first_inference_ms: float | None = None
    flags: tuple[str, ...] = ()  # what the tool warned of (delegate fell back, thermal status rose, ...)
