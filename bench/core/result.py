"""The record of one measured (model, device) cell: typed, validated when built, and serialized to strict JSON.

A `LatencyResult` holds a `Summary` of its latencies (and one of its device-side samples), the protocol it ran
(`bench.core.protocol.Protocol`, or an `ExternalProtocol` for numbers imported from another tool), the
`ExportArtifact` it measured, and its `ComparabilityKey`: what two cells must share to be compared. Every
figure is checked when a record is built, from code or from a results file: latencies are finite and > 0,
counts are whole numbers >= 0, text is text, an ok cell has a summary and a failed cell an error. A bad value
raises a UserError of one line naming the cell and the field (`bench.store` adds the file). Keyword arguments
may still be given as dicts (summary=..., protocol=..., artifact=..., env_key=...): they are converted.

The file format and its history are in results/README.md; bench.store reads, migrates and writes it.
"""
from __future__ import annotations

import copy
import math
import numbers
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any

from bench.core.artifact import ExportArtifact
from bench.core.errors import UserError
from bench.core.protocol import Protocol

SCHEMA_VERSION = 2
RUN_KIND = "mobileone-bench/run"

OK, FAILED = "ok", "failed"
STATUSES = (OK, FAILED)

_ABSENT = object()


class InvalidField(UserError):
    """One field of a record is missing, of the wrong type or out of range; `field` is its dotted path."""

    def __init__(self, field: str, problem: str, value: Any = _ABSENT):
        self.field, self.problem, self.value = field, problem, value
        shown = "" if value is _ABSENT else f" = {_show(value)}"
        super().__init__(f"{field}{shown} {problem}")

    def within(self, prefix: str) -> "InvalidField":
        """The same problem, one level down: summary + latency_ms -> summary.latency_ms."""
        sep = "" if self.field.startswith("[") else "."
        return InvalidField(f"{prefix}{sep}{self.field}", self.problem, self.value)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# --- Checks of single values: each returns the value, normalized (ints as ints, numbers as floats) ----------

def _is_number(v) -> bool:  # numpy scalars count: they are numbers.Real
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _text(name: str, v, *, optional: bool = False, nonempty: bool = False) -> str | None:
    if v is None and optional:
        return None
    if not isinstance(v, str):
        raise InvalidField(name, "must be text" + (" or null" if optional else ""), v)
    if nonempty and not v.strip():
        raise InvalidField(name, "must not be empty", v)
    return v


def _whole(name: str, v, *, optional: bool = False, minimum: int = 0) -> int | None:
    if v is None and optional:
        return None
    if not isinstance(v, numbers.Integral) or isinstance(v, bool) or v < minimum:  # numpy ints count
        raise InvalidField(name, f"must be a whole number >= {minimum}" + (" or null" if optional else ""), v)
    return int(v)


def _number(name: str, v, *, optional: bool = False, positive: bool = True, at_most: float | None = None,
            infinite: bool = False) -> float | None:
    """A finite number, > 0 (positive) or >= 0; `infinite` also lets +inf through (a protocol's 'no cap')."""
    if v is None and optional:
        return None
    if _is_number(v):
        x = float(v)
        if (math.isfinite(x) or (infinite and x == math.inf)) and (x > 0 if positive else x >= 0) and \
                (at_most is None or x <= at_most):
            return x
    rule = "> 0" if positive else ">= 0"
    if at_most is not None:
        rule += f" and <= {at_most:g}"
    if infinite:
        raise InvalidField(name, f"must be a number {rule}, or null for no cap", v)
    raise InvalidField(name, f"must be a finite number {rule}" + (" or null" if optional else ""), v)


def _flag(name: str, v) -> bool:
    if not isinstance(v, bool):
        raise InvalidField(name, "must be true or false", v)
    return v


def _texts(name: str, v) -> list[str]:
    if not isinstance(v, (list, tuple)):
        raise InvalidField(name, "must be a list of text", v)
    return [_text(f"{name}[{i}]", x) for i, x in enumerate(v)]


def _series(name: str, v, *, positive: bool = True) -> list[float]:
    if not isinstance(v, (list, tuple)):
        raise InvalidField(name, "must be a list of numbers", v)
    out = []
    for i, x in enumerate(v):
        if (type(x) is float or _is_number(x)) and math.isfinite(x) and (x > 0 if positive else x >= 0):
            out.append(float(x))
        else:
            _number(f"{name}[{i}]", x, positive=positive)  # raises, naming the sample
    return out


def _rounds(name: str, v) -> list[list[float]]:
    """Raw samples by round: a list of lists of finite numbers > 0."""
    if not isinstance(v, (list, tuple)):
        raise InvalidField(name, "must be a list of rounds, each a list of milliseconds", v)
    out = []
    for i, r in enumerate(v):
        if not isinstance(r, (list, tuple)):
            raise InvalidField(f"{name}[{i}]", "must be a list of milliseconds (one round)", r)
        out.append(_series(f"{name}[{i}]", r))
    return out


def json_safe(value: Any) -> Any:
    """Free-form data (runner info, environment) as strict JSON values: tuples become lists, dict keys text,
    and a non-finite number, which JSON cannot hold, becomes null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def _free(name: str, v, *, optional: bool = False) -> dict | None:
    """A free-form object (model_info, runner_info, artifact metadata): any JSON, non-finite numbers nulled."""
    if v is None and optional:
        return None
    if not isinstance(v, dict):
        raise InvalidField(name, "must be an object {...}" + (" or null" if optional else ""), v)
    return json_safe(v)


def _kwargs(cls, data, what: str, *, strict: bool, optional: tuple[str, ...] = ()) -> dict:
    """The keyword arguments of dataclass `cls` from an object read from a file or given in code. A key that
    is not a field is an error; so is a missing field without a default, and, `strict` (a results file,
    where the writer always writes every field), any missing field but those in `optional`."""
    if not isinstance(data, dict):
        raise InvalidField("", f"must be an object {{...}} ({what})", data)
    names = [f.name for f in fields(cls)]
    for key in data:
        if key not in names:
            raise InvalidField(str(key), f"is not a field of {what}")
    for f in fields(cls):
        if f.name in data:
            continue
        if (f.default is MISSING and f.default_factory is MISSING) or (strict and f.name not in optional):
            raise InvalidField(f.name, "is missing")
    return dict(data)


def _nested(name: str, build):
    """Run `build()`, naming `name` as the parent of whatever field it finds wrong."""
    try:
        return build()
    except InvalidField as e:
        raise (InvalidField(name, e.problem, e.value) if e.field == "" else e.within(name)) from None


# --- The typed parts of a cell --------------------------------------------------------------------------------

_SUMMARY_MS = ("latency_ms", "median_ms", "p90_ms", "mean_ms", "min_ms", "max_ms", "ci_low_ms", "ci_high_ms",
               "trimmed_low_ms", "trimmed_high_ms", "last_round_ms", "within_low_ms", "within_high_ms")


@dataclass(frozen=True)
class Summary:
    """What a cell reports of its samples (bench.stats.Summary.to_dict()), or what a tool reported of its own:
    `latency_ms` is the protocol's statistic; a figure the tool did not give is None (benchmark_model
    prints no p90 and no interval)."""

    statistic: str
    latency_ms: float
    median_ms: float | None = None
    p90_ms: float | None = None
    mean_ms: float | None = None
    std_ms: float | None = None  # >= 0: one sample, or identical ones, have none
    min_ms: float | None = None
    max_ms: float | None = None
    ci_low_ms: float | None = None  # 95% interval of latency_ms
    ci_high_ms: float | None = None
    ci_rel_halfwidth: float | None = None  # (ci_high - ci_low) / 2 / latency
    count: int | None = None  # samples
    rounds: int | None = None
    # ModelBench aggregates only (no rounds pasted): the lowest and highest kept latency, the last round's mean.
    trimmed_low_ms: float | None = None
    trimmed_high_ms: float | None = None
    last_round_ms: float | None = None
    # Where the 95% interval was widened for run-to-run spread (protocol between_runs_rel): the interval of
    # the run's own rounds.
    within_low_ms: float | None = None
    within_high_ms: float | None = None

    OPTIONAL = ("trimmed_low_ms", "trimmed_high_ms", "last_round_ms", "within_low_ms",
                "within_high_ms")  # written only when set

    def __post_init__(self):
        set_ = object.__setattr__
        set_(self, "statistic", _text("statistic", self.statistic, nonempty=True))
        for name in _SUMMARY_MS:
            set_(self, name, _number(name, getattr(self, name), optional=name != "latency_ms"))
        set_(self, "std_ms", _number("std_ms", self.std_ms, optional=True, positive=False))
        set_(self, "ci_rel_halfwidth", _number("ci_rel_halfwidth", self.ci_rel_halfwidth, optional=True,
                                               positive=False))
        set_(self, "count", _whole("count", self.count, optional=True))
        set_(self, "rounds", _whole("rounds", self.rounds, optional=True))

    def to_dict(self) -> dict:
        d = asdict(self)
        for name in self.OPTIONAL:
            if d[name] is None:
                del d[name]
        return d

    @classmethod
    def from_dict(cls, d: dict, *, strict: bool = False) -> "Summary":
        return cls(**_kwargs(cls, d, "a summary", strict=strict, optional=cls.OPTIONAL))


@dataclass(frozen=True, kw_only=True)
class ExternalProtocol:
    """How an imported cell was measured, as far as its file says: which statistic its number is, and the
    per-round trim applied to its samples (None: not applicable). Warm-up, rounds and stopping happened in a
    tool we did not run."""

    name: str = "external"
    statistic: str
    trim: int | None = None

    def __post_init__(self):
        if self.name != "external":
            raise InvalidField("name", "must be 'external' for an imported cell's protocol", self.name)
        object.__setattr__(self, "statistic", _text("statistic", self.statistic, nonempty=True))
        object.__setattr__(self, "trim", _whole("trim", self.trim, optional=True))

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict, *, strict: bool = False) -> "ExternalProtocol":
        return cls(**_kwargs(cls, d, "an imported cell's protocol", strict=strict))


_PROTOCOL_TYPES = {f.name: str(f.type) for f in fields(Protocol)}


def _protocol(value, *, strict: bool = False) -> Protocol | ExternalProtocol | None:
    """A Protocol (a dict as Protocol.to_json() writes it: null for 'no cap'), an ExternalProtocol (name
    'external'), or None (none recorded; {} in code means the same)."""
    if value is None or isinstance(value, ExternalProtocol):
        return value
    if isinstance(value, dict) and not value and not strict:
        return None
    settings = value.to_dict() if isinstance(value, Protocol) else value
    if isinstance(settings, dict) and settings.get("name") == "external":
        return ExternalProtocol.from_dict(settings, strict=strict)
    kw = _kwargs(Protocol, settings, "a protocol", strict=strict)
    for name, v in kw.items():
        typ = _PROTOCOL_TYPES[name]
        if typ == "str":
            _text(name, v, nonempty=True)
        elif typ == "bool":
            _flag(name, v)
        elif typ.startswith("int"):
            _whole(name, v, optional="None" in typ)
        elif typ == "float":  # null or inf: no cap
            if v is not None:
                _number(name, v, positive=False, infinite=True)
        else:  # float | None
            _number(name, v, optional=True, positive=False)
    try:
        return Protocol.from_json(kw)
    except (ValueError, TypeError) as e:
        raise InvalidField("", str(e)) from None


@dataclass(frozen=True)
class RejectedRound:
    """A round redone because other processes used our CPUs: its samples and that share (0-1)."""

    samples_ms: list[float]
    contention: float | None = None

    def __post_init__(self):
        object.__setattr__(self, "samples_ms", _series("samples_ms", self.samples_ms))
        object.__setattr__(self, "contention", _number("contention", self.contention, optional=True,
                                                       positive=False, at_most=1.0))

    @classmethod
    def from_dict(cls, d: dict, *, strict: bool = False) -> "RejectedRound":
        return cls(**_kwargs(cls, d, "a rejected round", strict=strict))


_ARTIFACT_TEXT = ("model", "target", "precision", "path", "input_name", "input_dtype", "output_name", "sha256",
                  "cache_key")


def _artifact(value, *, strict: bool = False) -> ExportArtifact | None:
    if value is None:
        return None
    d = value.to_dict() if isinstance(value, ExportArtifact) else value
    # `size` came after schema 1's artifacts; a record without it is checked by its hash alone.
    kw = _kwargs(ExportArtifact, d, "an artifact", strict=strict, optional=("size",))
    if kw.get("size") is not None:
        kw["size"] = _whole("size", kw["size"])
    for name in _ARTIFACT_TEXT:
        if name in kw:
            _text(name, kw[name])
    shape = kw["input_shape"]
    if not isinstance(shape, (list, tuple)):
        raise InvalidField("input_shape", "must be a list of whole numbers", shape)
    kw["input_shape"] = tuple(_whole(f"input_shape[{i}]", n) for i, n in enumerate(shape))
    for name in ("tool_versions", "metadata"):
        if name in kw:
            kw[name] = _free(name, kw[name])
    return ExportArtifact(**kw)


@dataclass(frozen=True, kw_only=True)
class ComparabilityKey:
    """What two cells must share to be compared (`bench compare` refuses otherwise; tables and plots show one
    column per key): the machine, the target, the threads, the precision and the runtime's version. Built by
    `ComparabilityKey.of`, the one place that knows how; an empty text means "not applicable"."""

    cpu_model: str = ""
    device: str
    runner: str
    threads: int | None = None
    precision: str = ""
    runtime_version: str = ""  # "<distribution> <version>" of the runtime whose version matters
    gpu: str = ""
    device_name: str = ""  # a phone's model (imported numbers)
    os_version: str = ""  # a phone's OS version (imported numbers)
    compute_units: str = ""  # Core ML compute units (imported numbers)
    input_shape: str = ""  # NCHW ("8x3x256x256") when a suite asked another size or batch; "" for the model's own

    def __post_init__(self):
        for f in fields(self):
            if f.name == "threads":
                object.__setattr__(self, "threads", _whole("threads", self.threads, optional=True, minimum=1))
            else:
                _text(f.name, getattr(self, f.name))

    @classmethod
    def of(cls, env: dict, device: str, runner: str, threads: int | None, precision: str,
           runtime: str | None, input_shape: str = "") -> "ComparabilityKey":
        """The key of a cell measured (or imported) in the run environment `env` (bench.env.capture(), or an
        import's record of the phone). `runtime` is the distribution whose version matters for this device
        (onnxruntime, torch, tensorrt, ...), or None; its version is read from env["libraries"]. A phone's
        OS version counts only for imported numbers (env["imported"]): a host's kernel build does not."""
        env = env if isinstance(env, dict) else {}
        libs = env.get("libraries") if isinstance(env.get("libraries"), dict) else {}
        cpu = env.get("cpu") if isinstance(env.get("cpu"), dict) else {}
        gpu = env.get("gpu") if isinstance(env.get("gpu"), dict) else {}
        osinfo = env.get("os") if isinstance(env.get("os"), dict) else {}
        return cls(cpu_model=str(cpu.get("model") or ""), device=device, runner=runner, threads=threads,
                   precision=precision or "",
                   runtime_version=f"{runtime} {libs.get(runtime, '?')}" if runtime else "",
                   gpu=str(gpu.get("name") or ""), device_name=str(env.get("device_name") or ""),
                   os_version=str(osinfo.get("version") or "") if "imported" in env else "",
                   compute_units=str(env.get("compute_units") or ""), input_shape=input_shape)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict, *, strict: bool = False) -> "ComparabilityKey":
        # input_shape came after the first schema-2 files: absent means the model's own size at batch 1.
        return cls(**_kwargs(cls, d, "a comparability key", strict=strict, optional=("input_shape",)))


def _key(value, *, strict: bool = False) -> ComparabilityKey | None:
    if value is None or isinstance(value, ComparabilityKey):
        return value
    if isinstance(value, dict) and not value and not strict:
        return None  # {}: no key recorded
    return ComparabilityKey.from_dict(value, strict=strict)


def _summary(value, *, strict: bool = False) -> Summary | None:
    if value is None or isinstance(value, Summary):
        return value
    return Summary.from_dict(value, strict=strict)


def _rejected(value, *, strict: bool = False) -> list[RejectedRound]:
    if not isinstance(value, (list, tuple)):
        raise InvalidField("", "must be a list of rounds {samples_ms, contention}", value)
    return [r if isinstance(r, RejectedRound) else _nested(f"[{i}]", lambda r=r: RejectedRound.from_dict(
        r, strict=strict)) for i, r in enumerate(value)]


# Converters of the fields that hold records, by field name.
_CONVERT = {"protocol": _protocol, "summary": _summary, "device_summary": _summary, "artifact": _artifact,
            "env_key": _key, "rejected_rounds": _rejected}


def cell_id(key: tuple[str, str, str, str]) -> str:
    return "|".join(key)


def cell_label(d) -> str:
    """model|device|runner|form of a cell, or of a dict read from a file, as far as it has them."""
    get = (lambda k: getattr(d, k, None)) if not isinstance(d, dict) else d.get
    parts = [get(k) for k in ("model", "device", "runner", "form")]
    if parts[3] is None and isinstance(parts[0], str):
        parts[3] = "deploy"
    return "|".join(p if isinstance(p, str) else "?" for p in parts)


@dataclass(frozen=True)
class LatencyResult:
    model: str
    device: str  # the --device name, or an imported device key (iphone, android)
    runner: str  # what produced the samples: onnxruntime, torch, tensorrt, trtexec, coreml, litert, ...
    form: str = "deploy"  # deploy | train (the reparameterization ablation)
    precision: str = "fp32"
    threads: int | None = None
    status: str = OK  # ok | failed
    error: str | None = None
    error_stage: str | None = None  # export | load | run
    protocol: Protocol | ExternalProtocol | None = None
    summary: Summary | None = None  # of the host-side samples (or the tool's aggregates)
    device_summary: Summary | None = None  # the same of device-side (CUDA event) samples, when measured
    samples_ms: list[list[float]] = field(default_factory=list)  # by round
    device_samples_ms: list[list[float]] = field(default_factory=list)
    contention: list[float | None] = field(default_factory=list)  # per accepted round, 0-1
    rejected_rounds: list[RejectedRound] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    load_ms: float | None = None
    first_inference_ms: float | None = None
    warmup_iters: int = 0
    stop_reason: str = ""
    wall_s: float = 0.0
    artifact: ExportArtifact | None = None
    model_info: dict = field(default_factory=dict)  # build info, params, MACs (free-form JSON)
    runner_info: dict = field(default_factory=dict)  # providers, delegate, compute plan, GPU clocks (free-form)
    env_key: ComparabilityKey | None = None  # what must match for two cells to be compared
    source: str = "measured"  # measured | measured:external | imported:<format>
    started: str = ""
    finished: str = ""

    def __post_init__(self):
        try:
            self._check()
        except InvalidField as e:
            raise UserError(f"cell {cell_label(self)}: {e}") from None

    def _check(self) -> None:
        set_ = object.__setattr__
        for name in ("model", "device", "runner", "form"):
            _text(name, getattr(self, name), nonempty=True)
        _text("precision", self.precision)
        set_(self, "threads", _whole("threads", self.threads, optional=True, minimum=1))
        if self.status not in STATUSES:
            raise InvalidField("status", f"must be one of {', '.join(STATUSES)}", self.status)
        _text("error", self.error, optional=True)
        _text("error_stage", self.error_stage, optional=True)
        for name, convert in _CONVERT.items():
            set_(self, name, _nested(name, lambda c=convert, v=getattr(self, name): c(v)))
        set_(self, "samples_ms", _rounds("samples_ms", self.samples_ms))
        set_(self, "device_samples_ms", _rounds("device_samples_ms", self.device_samples_ms))
        if not isinstance(self.contention, (list, tuple)):
            raise InvalidField("contention", "must be a list of shares (0-1) or nulls", self.contention)
        set_(self, "contention", [_number(f"contention[{i}]", c, optional=True, positive=False, at_most=1.0)
                                  for i, c in enumerate(self.contention)])
        set_(self, "flags", _texts("flags", self.flags))
        set_(self, "load_ms", _number("load_ms", self.load_ms, optional=True))
        set_(self, "first_inference_ms", _number("first_inference_ms", self.first_inference_ms, optional=True))
        set_(self, "warmup_iters", _whole("warmup_iters", self.warmup_iters))
        _text("stop_reason", self.stop_reason)
        set_(self, "wall_s", _number("wall_s", self.wall_s, positive=False))
        set_(self, "model_info", _free("model_info", self.model_info))
        set_(self, "runner_info", _free("runner_info", self.runner_info))
        for name in ("source", "started", "finished"):
            _text(name, getattr(self, name))
        if self.status == OK and self.summary is None:
            raise InvalidField("summary", "is missing: an ok cell reports a summary (or is failed, with an error)")
        if self.status == FAILED and not (self.error or "").strip():
            raise InvalidField("error", "is missing: a failed cell says why it failed",
                               *(() if self.error is None else (self.error,)))

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.model, self.device, self.runner, self.form)

    @property
    def ok(self) -> bool:
        return self.status == OK

    @property
    def latency_ms(self) -> float | None:
        return self.summary.latency_ms if self.summary else None

    def to_dict(self) -> dict:
        """The cell as strict JSON values (a protocol's infinite cap as null), the form results files hold."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["protocol"] = self.protocol.to_json() if self.protocol is not None else None
        for name in ("summary", "device_summary", "artifact", "env_key"):
            d[name] = getattr(self, name).to_dict() if getattr(self, name) is not None else None
        d["rejected_rounds"] = [asdict(r) for r in self.rejected_rounds]
        for name in ("samples_ms", "device_samples_ms"):
            d[name] = [list(r) for r in d[name]]
        for name in ("contention", "flags"):
            d[name] = list(d[name])
        for name in ("model_info", "runner_info"):
            d[name] = copy.deepcopy(d[name])
        return d

    @classmethod
    def from_dict(cls, d: dict, *, strict: bool = False) -> "LatencyResult":
        """A cell from its dict. `strict` (a results file): every field must be present, also in the records
        it holds; without, missing fields take their defaults. Unknown keys are an error either way."""
        try:
            kw = _kwargs(cls, d, "a cell", strict=strict)
            for name, convert in _CONVERT.items():
                if name in kw:
                    kw[name] = _nested(name, lambda c=convert, v=kw[name]: c(v, strict=strict))
        except InvalidField as e:
            raise UserError(f"cell {cell_label(d)}: {e}") from None
        return cls(**kw)


def untrustworthy(flags) -> bool:
    """A cell whose number a quiet machine might not reproduce: measured under foreign load that never went
    away, or with rounds that drift or split into two levels."""
    return any(f == "contended" or f.startswith("unstable:") for f in flags)
