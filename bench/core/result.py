"""The record of one measured (model, device) cell: summary, raw samples, environment, error if any."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

SCHEMA_VERSION = 1
RUN_KIND = "mobileone-bench/run"

OK, FAILED = "ok", "failed"


@dataclass(frozen=True)
class LatencyResult:
    model: str
    device: str  # the --device name, or an imported device key (iphone, android)
    runner: str  # what produced the samples: onnxruntime, torch, tensorrt, trtexec, coreml, litert, ...
    form: str = "deploy"  # deploy | train (the reparameterization ablation)
    precision: str = "fp32"
    threads: int | None = None
    status: str = OK
    error: str | None = None
    error_stage: str | None = None  # export | load | run
    protocol: dict = field(default_factory=dict)
    summary: dict | None = None  # bench.stats.Summary.to_dict() of host-side samples
    device_summary: dict | None = None  # the same of device-side (CUDA event) samples, when measured
    samples_ms: list[list[float]] = field(default_factory=list)  # by round
    device_samples_ms: list[list[float]] = field(default_factory=list)
    contention: list[float | None] = field(default_factory=list)
    rejected_rounds: list[dict] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    load_ms: float | None = None
    first_inference_ms: float | None = None
    warmup_iters: int = 0
    stop_reason: str = ""
    wall_s: float = 0.0
    artifact: dict | None = None
    model_info: dict = field(default_factory=dict)  # build info, params, MACs
    runner_info: dict = field(default_factory=dict)  # providers, delegate, compute plan, GPU clocks
    env_key: dict = field(default_factory=dict)  # what must match for two cells to be compared
    source: str = "measured"  # measured | imported:<format>
    started: str = ""
    finished: str = ""

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.model, self.device, self.runner, self.form)

    @property
    def ok(self) -> bool:
        return self.status == OK

    @property
    def latency_ms(self) -> float | None:
        return self.summary["latency_ms"] if self.summary else None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "LatencyResult":
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


def cell_id(key: tuple[str, str, str, str]) -> str:
    return "|".join(key)
