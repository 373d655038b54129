"""The `--via trtexec` cross-check: NVIDIA's trtexec builds an engine from the same ONNX and measures it, and
its per-inference trace (`--exportTimes`) becomes an ExternalMeasurement beside our own `tensorrt` cell.

Pure parts (tested on fixtures in trtexec's documented formats): reading `trtexec --help` for the flags this
version has, the command lines (argument lists, never shell strings), the `--exportTimes` JSON, the text
summary. The runner runs one trtexec process per round, so rounds are independent sessions.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.core.artifact import ExportArtifact
from bench.core.errors import MissingBackendError, UserError
from bench.core.io import atomic_write_json, build_into, default_cache_dir, read_json, sha256_of
from bench.core.options import option_flag
from bench.core.protocol import Protocol
from bench.core.runner import Availability, ExternalMeasurement, RunnerBase, RunnerOptions
from bench.env.gpu import GpuIdentity, common_gpu_problem, gather_facts, gpu_env, gpu_identity, gpu_snapshot
from bench.measure import Measurement, stopping_reason
from bench.stats import summarize
from exporters.tensorrt import precision_counts, timing_cache_path

TRTEXEC_ENV = "TRTEXEC"
# Where NVIDIA's packages put trtexec (Debian/RPM packages, NGC containers, tar installs).
KNOWN_LOCATIONS = ("/usr/src/tensorrt/bin/trtexec", "/opt/tensorrt/bin/trtexec", "/usr/local/tensorrt/bin/trtexec")
MIN_WARMUP_MS = 200.0  # trtexec's own default; warm-up is by time only, so protocols asking for a few
#                        warm-up inferences get at least this (MEASUREMENT.md: GPU warm-up 200 ms)
REQUIRED_FLAGS = ("--onnx", "--saveEngine", "--loadEngine", "--warmUp", "--iterations", "--duration",
                  "--exportTimes")
# setting -> (flag that turns it on, flag that turns it off). Which exist, and the defaults, changed between
# TensorRT 10 and 11, so every one is stated explicitly where this trtexec has the flag (see `toggle_args`).
TOGGLES = {
    "cuda_graph": ("--useCudaGraph", "--noCudaGraph"),
    "copies": ("--dataTransfers", "--noDataTransfers"),
    "spin_wait": ("--useSpinWait", "--noSpinWait"),
}
LATENCY_NOTE = ("trtexec's Latency is H2D + GPU compute + D2H, each timed with CUDA events (with "
                "--noDataTransfers it equals GPU compute); it is not a host wall clock. trtexec also enqueues "
                "one inference ahead. Compare GPU compute (device samples) with our tensorrt cell's CUDA-event "
                "times.")


# ---------------------------------------------------------------------------------------------- help

@dataclass(frozen=True)
class TrtexecHelp:
    """What `trtexec --help` says: the flags it knows, and the defaults its help lines state."""

    flags: frozenset[str]
    defaults: dict = field(default_factory=dict)  # flag -> the text of "(default = ...)" on its line
    version: str | None = None

    @property
    def name(self) -> str:
        return f"trtexec {self.version}" if self.version else "this trtexec"

    def feature_default(self, *flags: str) -> bool | None:
        """The default of a feature as trtexec's help states it on any of its flags' lines: "(default =
        enabled)" describes the feature itself, on a --useX line as on a --noX line."""
        for flag in flags:
            text = self.defaults.get(flag, "")
            if text.startswith("enabled"):
                return True
            if text.startswith("disabled"):
                return False
        return None


_FLAG_LINE = re.compile(r"^\s{1,8}(--[A-Za-z][A-Za-z0-9]*)")
_DEFAULT = re.compile(r"\(default\s*=\s*([^)]*)\)")
_RUNNING = re.compile(r"&&&& (?:RUNNING|PASSED|FAILED) TensorRT\.trtexec \[TensorRT v(\d+)\]")


def version_from_code(code: int) -> str:
    """trtexec's banner version number: 100900 -> 10.9.0 (TensorRT 10 on), 8403 -> 8.4.3 (before)."""
    if code >= 10000:
        return f"{code // 10000}.{(code // 100) % 100}.{code % 100}"
    return f"{code // 1000}.{(code // 100) % 10}.{code % 100}"


def parse_help(text: str) -> TrtexecHelp:
    flags, defaults = set(), {}
    for line in text.splitlines():
        m = _FLAG_LINE.match(_strip_prefix(line)[1])
        if not m:
            continue
        flags.add(m.group(1))
        d = _DEFAULT.search(line)
        if d:
            defaults.setdefault(m.group(1), d.group(1).strip().lower())
    v = _RUNNING.search(text)
    return TrtexecHelp(frozenset(flags), defaults, version_from_code(int(v.group(1))) if v else None)


def check_core_flags(help: TrtexecHelp) -> None:
    missing = [f for f in REQUIRED_FLAGS if f not in help.flags]
    if missing:
        raise UserError(f"{help.name} lacks {', '.join(missing)}; "
                        f"point --trtexec (or ${TRTEXEC_ENV}) at the trtexec of TensorRT 10")


# ------------------------------------------------------------------------------------------ commands

@dataclass(frozen=True)
class TrtexecSettings:
    precision: str = "fp16"
    opt_level: int = 3
    warmup_ms: float = MIN_WARMUP_MS
    iterations: int = 10
    duration_s: float = 3.0
    cuda_graph: bool = False
    copies: bool = False  # H2D/D2H copies inside each timed inference (our tensorrt runner: same default)
    spin_wait: bool = True  # our runner waits in cudaStreamSynchronize, which spins by default


def settings_for(protocol: Protocol, extra: dict, precision: str = "fp16", opt_level: int = 3) -> TrtexecSettings:
    """A protocol's round as trtexec flags: fixed-size rounds become --iterations with --duration=0;
    time-based rounds become at least round_min_iters and round_min_s."""
    fixed = protocol.round_max_iters is not None
    return TrtexecSettings(
        precision=precision, opt_level=int(opt_level),
        warmup_ms=max(protocol.warmup_s * 1000.0, MIN_WARMUP_MS),
        iterations=int(protocol.round_max_iters if fixed else protocol.round_min_iters),
        duration_s=0.0 if fixed else float(protocol.round_min_s),
        cuda_graph=option_flag(extra, "cuda_graph", False),
        copies=option_flag(extra, "copies", False),
        spin_wait=option_flag(extra, "spin_wait", True))


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def toggle_args(setting: str, want: bool, help: TrtexecHelp) -> tuple[list[str], str]:
    """The flag stating `setting=want`, or none where this trtexec has no such flag AND its help states that
    the default already is `want`; otherwise a UserError (we never guess a default)."""
    on, off = TOGGLES[setting]
    flag = on if want else off
    if flag in help.flags:
        return [flag], f"{setting}={want}: {flag}"
    if help.feature_default(on, off) is want:
        state = "enabled" if want else "disabled"
        return [], f"{setting}={want}: this trtexec has no {flag}; its help states the default ({state})"
    raise UserError(f"{help.name} cannot be told {setting}={want}: it has no {flag} flag and "
                    f"its help does not state that default; set {setting}={not want} or use another trtexec")


def build_command(exe: str, onnx: Path, engine: Path, layers: Path, timing_cache: Path, s: TrtexecSettings,
                  help: TrtexecHelp) -> tuple[list[str], list[str]]:
    """trtexec arguments that build (and only build) the engine, and notes on how each choice was stated."""
    check_core_flags(help)
    args = [exe, f"--onnx={onnx}", f"--saveEngine={engine}"]
    notes = []
    if s.precision == "fp16":
        if "--fp16" not in help.flags:
            raise UserError(f"{help.name} has no --fp16 (TensorRT 11 builds strongly typed "
                            "networks only): use the trtexec of TensorRT 10, or precision fp32")
        args.append("--fp16")
    elif s.precision == "fp32":
        if "--noTF32" in help.flags:
            args.append("--noTF32")  # as our builder: fp32 means IEEE fp32, not TensorFloat-32
        else:
            notes.append("precision=fp32: this trtexec has no --noTF32; TF32 left at its default")
    else:
        raise UserError(f"trtexec precision {s.precision!r} is not supported; use fp16 or fp32")
    for flag, value in (("--builderOptimizationLevel", str(s.opt_level)), ("--timingCacheFile", str(timing_cache)),
                        ("--profilingVerbosity", "detailed"), ("--exportLayerInfo", str(layers))):
        if flag in help.flags:
            args.append(f"{flag}={value}")
        else:
            notes.append(f"this trtexec has no {flag}")
    skip = next((f for f in ("--skipInference", "--buildOnly") if f in help.flags), None)
    if skip is None:
        raise UserError(f"{help.name} has neither --skipInference nor --buildOnly; "
                        "use the trtexec of TensorRT 10")
    args.append(skip)
    return args, notes


def run_command(exe: str, engine: Path, times: Path, s: TrtexecSettings, help: TrtexecHelp) -> tuple[list[str], list[str]]:
    """trtexec arguments for one measured round of the built engine, every timing choice explicit."""
    check_core_flags(help)
    args = [exe, f"--loadEngine={engine}", f"--warmUp={_num(s.warmup_ms)}", f"--iterations={s.iterations}",
            f"--duration={_num(s.duration_s)}"]
    notes = []
    for setting in ("cuda_graph", "copies", "spin_wait"):
        flags, note = toggle_args(setting, getattr(s, setting), help)
        args += flags
        notes.append(note)
    args.append(f"--exportTimes={times}")
    return args, notes


# --------------------------------------------------------------------------------------------- parsing

@dataclass(frozen=True)
class TrtexecTimes:
    """One round's raw per-inference samples from `--exportTimes`, in milliseconds."""

    compute_ms: tuple[float, ...]  # GPU compute time (CUDA events around the enqueue)
    latency_ms: tuple[float, ...]  # H2D + compute + D2H
    h2d_ms: tuple[float, ...] = ()
    d2h_ms: tuple[float, ...] = ()
    enqueue_ms: tuple[float, ...] = ()  # host time to enqueue

    def last(self, n: int) -> "TrtexecTimes":
        return TrtexecTimes(*(getattr(self, f)[-n:] for f in self.__dataclass_fields__))

    def __len__(self) -> int:
        return len(self.compute_ms)


def parse_times(data: str | list) -> TrtexecTimes:
    """trtexec's --exportTimes JSON: an array with one object per inference, fields (sampleReporting.cpp)
    startEnqMs endEnqMs startH2dMs endH2dMs startComputeMs endComputeMs startD2hMs endD2hMs h2dMs computeMs
    d2hMs latencyMs (older versions add endToEndMs)."""
    entries = json.loads(data) if isinstance(data, str) else data
    if not isinstance(entries, list) or not entries:
        raise ValueError("not a trtexec --exportTimes file: expected a non-empty JSON array")
    cols: dict[str, list[float]] = {k: [] for k in ("computeMs", "latencyMs", "h2dMs", "d2hMs", "enq")}
    for i, e in enumerate(entries):
        if not isinstance(e, dict) or "computeMs" not in e or "latencyMs" not in e:
            raise ValueError(f"not a trtexec --exportTimes file: entry {i} lacks computeMs/latencyMs")
        for k in ("computeMs", "latencyMs", "h2dMs", "d2hMs"):
            if k in e:
                cols[k].append(float(e[k]))
        if "startEnqMs" in e and "endEnqMs" in e:
            cols["enq"].append(float(e["endEnqMs"]) - float(e["startEnqMs"]))
    n = len(entries)
    full = {k: tuple(v) if len(v) == n else () for k, v in cols.items()}
    return TrtexecTimes(full["computeMs"], full["latencyMs"], full["h2dMs"], full["d2hMs"], full["enq"])


_PREFIX = re.compile(r"^(?:\[\d\d/\d\d/\d{4}-[\d:]+\]\s*)?(?:\[([IWEVF])\]\s*)?")
_STATS = re.compile(r"(min|max|mean|median|percentile\((\d+(?:\.\d+)?)%\))\s*=\s*([-+\d.eE]+)\s*ms")
SUMMARY_METRICS = ("Latency", "End-to-End Host Latency", "Enqueue Time", "H2D Latency", "GPU Compute Time",
                   "D2H Latency")


def _strip_prefix(line: str) -> tuple[str | None, str]:
    m = _PREFIX.match(line)
    return m.group(1), line[m.end():]


def parse_stats(text: str) -> dict[str, float]:
    """'min = 1.4 ms, max = 3 ms, mean = 1.48 ms, median = 1.43 ms, percentile(90%) = 1.45 ms' -> dict."""
    out = {}
    for name, pct, value in _STATS.findall(text):
        out[f"p{pct.rstrip('0').rstrip('.') if '.' in pct else pct}" if pct else name] = float(value)
    return out


def parse_log(text: str) -> dict:
    """The facts trtexec prints: version, device, warm-up and trace counts, the performance summary, its
    warnings and errors, and whether it PASSED."""
    out: dict = {"summary": {}, "warnings": [], "errors": [], "passed": "&&&& PASSED" in text,
                 "failed": "&&&& FAILED" in text}
    simple = {
        "TensorRT version": ("version", str), "Selected Device": ("device", str),
        "Selected Device UUID": ("device_uuid", str), "Compute Capability": ("compute_capability", str),
        "SMs": ("sms", int),
    }
    for raw in text.splitlines():
        level, line = _strip_prefix(raw.rstrip())
        if level == "W":
            out["warnings"].append(line.strip())
        elif level == "E":
            out["errors"].append(line.strip())
        key, sep, rest = line.partition(": ")
        if sep and key in simple:
            name, conv = simple[key]
            out[name] = conv(rest.strip())
        elif sep and key in SUMMARY_METRICS:
            out["summary"][key] = parse_stats(rest)
        elif key == "Throughput" and sep:
            out["throughput_qps"] = float(rest.split()[0])
        if m := re.match(r"Warmup completed (\d+) queries over ([\d.]+) ms", line):
            out["warmup_queries"], out["warmup_ms"] = int(m.group(1)), float(m.group(2))
        elif m := re.match(r"Timing trace has (\d+) queries over ([\d.]+) s", line):
            out["trace_queries"], out["trace_s"] = int(m.group(1)), float(m.group(2))
        elif m := re.match(r"Engine deserialized in ([\d.]+) sec", line):
            out["deserialize_s"] = float(m.group(1))
        elif m := re.match(r"Engine built in ([\d.]+) sec", line):
            out["build_s"] = float(m.group(1))
        elif m := re.search(r"coefficient of variance = ([\d.]+)%", line):
            out["compute_cv_pct"] = float(m.group(1))
    if "version" not in out and (v := _RUNNING.search(text)):
        out["version"] = version_from_code(int(v.group(1)))
    return out


def align_with_log(times: TrtexecTimes, log: dict) -> tuple[TrtexecTimes, list[str]]:
    """Older trtexec versions exported warm-up queries too, first: keep the trace the log reports."""
    n = log.get("trace_queries")
    if n is None or len(times) == n:
        return times, []
    if len(times) > n:
        return times.last(n), [f"trtexec exported {len(times) - n} warm-up queries too; kept the last {n}"]
    return times, [f"trtexec's log reports {n} queries but --exportTimes holds {len(times)}"]


def _flags_from(logs: list[dict]) -> list[str]:
    flags = []
    for log in logs:
        for w in log["warnings"]:
            if w.startswith("* ") and f"trtexec: {w[2:]}" not in flags:
                flags.append(f"trtexec: {w[2:]}")
            elif "graph capture" in w.lower() and "trtexec: CUDA graph capture failed" not in flags:
                flags.append("trtexec: CUDA graph capture failed")
    return flags


def to_external(rounds: list[TrtexecTimes], logs: list[dict], protocol: Protocol, stop_reason: str,
                info: dict, notes: list[str] = ()) -> ExternalMeasurement:
    """Rounds of trtexec samples as an ExternalMeasurement: host-side samples = trtexec's Latency,
    device samples = GPU compute time, summarized with the protocol's own statistic."""

    samples = [list(r.latency_ms) for r in rounds]
    device = [list(r.compute_ms) for r in rounds]
    enq = [x for r in rounds for x in r.enqueue_ms]
    first = logs[0] if logs else {}
    return ExternalMeasurement(
        summary=summarize(samples, protocol.statistic, protocol.trim).to_dict(),
        samples_ms=samples, device_samples_ms=device,
        load_ms=first["deserialize_s"] * 1000.0 if "deserialize_s" in first else None,
        first_inference_ms=None,
        warmup_iters=sum(log.get("warmup_queries", 0) for log in logs),
        stop_reason=stop_reason,
        info={**info, "latency_semantics": LATENCY_NOTE,
              "device_summary": summarize(device, protocol.statistic, protocol.trim).to_dict(),
              "enqueue_mean_ms": sum(enq) / len(enq) if enq else None,
              "rounds_printed": [{"summary": log["summary"], "throughput_qps": log.get("throughput_qps"),
                                  "trace_queries": log.get("trace_queries"),
                                  "compute_cv_pct": log.get("compute_cv_pct")} for log in logs]},
        flags=_flags_from(logs) + list(notes))


# ---------------------------------------------------------------------------------------------- runner

def find_trtexec(explicit: str | None) -> str:
    """The trtexec to run: the one given, else $TRTEXEC, else on PATH, else NVIDIA's install locations."""
    for candidate in (explicit, os.environ.get(TRTEXEC_ENV)):
        if candidate:
            path = shutil.which(candidate) or (candidate if Path(candidate).is_file() else None)
            if not path or not os.access(path, os.X_OK):
                raise MissingBackendError(f"trtexec {candidate!r} is not an executable file; give the path "
                                          f"of TensorRT's bin/trtexec")
            return path
    found = shutil.which("trtexec") or next((p for p in KNOWN_LOCATIONS if os.access(p, os.X_OK)), None)
    if not found:
        raise MissingBackendError(f"trtexec not found on PATH nor in {', '.join(KNOWN_LOCATIONS)}; install "
                                  f"TensorRT (it ships bin/trtexec) and put it on PATH or set ${TRTEXEC_ENV}")
    return found


def check_trtexec() -> Availability:
    """trtexec needs a driver and a GPU, and the trtexec binary (found on PATH, $TRTEXEC or NVIDIA's
    install locations); it needs neither PyTorch's CUDA build nor the tensorrt Python package."""
    why = common_gpu_problem(gather_facts())
    if why:
        return Availability("unavailable", why)
    try:
        find_trtexec(None)
    except MissingBackendError as e:
        return Availability("unavailable", str(e))
    return Availability("available")



def engine_key(onnx_sha256: str, trtexec_version: str | None, gpu_name: str, compute_capability: str,
               precision: str, opt_level: int) -> str:
    payload = [onnx_sha256, trtexec_version, gpu_name, compute_capability, precision, opt_level]
    return hashlib.sha256(json.dumps(payload).encode()).hexdigest()[:20]


def _source(target, extra: dict) -> tuple[Path, str, str, str, int]:
    """(onnx path, its sha256, model name, precision, opt_level) from what the pipeline hands over: an ONNX
    artifact, our tensorrt artifact (built from an ONNX it names), or a path."""

    precision = str(extra.get("precision", "fp16"))
    opt_level = int(extra.get("opt_level", 3))
    if isinstance(target, ExportArtifact):
        if target.target == "tensorrt":
            path = Path(target.metadata["onnx_path"])
            return path, target.metadata["onnx_sha256"], target.model, target.precision, \
                int(target.metadata.get("opt_level", opt_level))
        if target.target != "onnx":
            raise UserError(f"trtexec measures an ONNX model, not a {target.target} artifact")
        return Path(target.path), target.sha256, target.model, precision, opt_level
    path = Path(target)
    if path.suffix != ".onnx" or not path.is_file():
        raise UserError(f"trtexec needs an .onnx file; {path} is not one")
    return path, sha256_of(path), path.stem, precision, opt_level


def _cache_root(target) -> Path | None:
    """The suite's cache folder, from an artifact that lives in it (`<cache>/<target>/<model>-<key>/<file>`,
    as `cached_export` lays it out), so trtexec's engines sit beside ours."""
    path = getattr(target, "path", None)
    return Path(path).parents[2] if path and getattr(target, "cache_key", "") else None


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"trtexec did not finish within {timeout:.0f} s: {' '.join(args)}") from None


def _failure(what: str, proc: subprocess.CompletedProcess, log: dict) -> RuntimeError:
    lines = log["errors"][-3:] or (proc.stderr or proc.stdout or "").strip().splitlines()[-1:]
    detail = "; ".join(lines) or "no output"
    return RuntimeError(f"trtexec {what} failed (exit {proc.returncode}): {detail}")


class TrtexecRunner(RunnerBase):
    """NVIDIA's trtexec as an outside measurer: `load()` builds (or reuses) its engine from the ONNX,
    `measure_external(protocol)` runs one trtexec process per round until the protocol's stopping rule."""

    external = True
    BUILD_TIMEOUT_S = 1800.0

    def __init__(self, options: RunnerOptions):
        super().__init__(options)
        self.extra = dict(options.extra)
        self._info: dict = {}

    def load(self, target) -> None:

        onnx, onnx_sha, model, self.precision, self.opt_level = _source(target, self.extra)
        self.exe = find_trtexec(self.extra.get("trtexec"))
        help_proc = _run([self.exe, "--help"], timeout=120)
        self.help = parse_help(help_proc.stdout + help_proc.stderr)
        check_core_flags(self.help)
        try:  # trtexec runs on CUDA device 0 (after CUDA_VISIBLE_DEVICES), as the other GPU runners by default
            gpu = gpu_identity(0)
        except MissingBackendError:  # trtexec will say what it runs on; the key then names no GPU
            gpu = GpuIdentity("unknown-gpu", "unknown")
        cache_dir = Path(self.extra.get("cache_dir") or _cache_root(target) or default_cache_dir())
        version = self.help.version or "unknown"
        key = engine_key(onnx_sha, version, gpu.name, gpu.compute_capability, self.precision, self.opt_level)
        entry = cache_dir / "trtexec" / f"{model}-{key}"
        self.engine = entry / "model.engine"
        self._info = {"runner": "trtexec", "trtexec": self.exe, "tensorrt": version, "onnx": str(onnx),
                      "onnx_sha256": onnx_sha, "engine": str(self.engine), "gpu": gpu_env(0)}
        record = read_json(entry / "build.json")
        cached = bool(record) and self.engine.exists()
        if not cached:

            cache = timing_cache_path(cache_dir, gpu.name, gpu.compute_capability, version, tool="trtexec")
            record = self._build(onnx, entry, cache)
        self._info.update(engine_cached=cached, build=record)

    def _build(self, onnx: Path, entry: Path, timing_cache: Path) -> dict:
        """Build with trtexec into a scratch folder renamed into the cache: a failure leaves no half entry."""
        settings = TrtexecSettings(precision=self.precision, opt_level=self.opt_level)
        timing_cache.parent.mkdir(parents=True, exist_ok=True)
        records: list[dict] = []

        def fill(scratch: Path) -> None:
            args, notes = build_command(self.exe, onnx, scratch / "model.engine", scratch / "layers.json",
                                        timing_cache, settings, self.help)
            t0 = time.perf_counter()
            proc = _run(args, timeout=float(self.extra.get("build_timeout_s", self.BUILD_TIMEOUT_S)))
            log = parse_log(proc.stdout + proc.stderr)
            if proc.returncode != 0 or not log["passed"] or not (scratch / "model.engine").exists():
                raise _failure("engine build", proc, log)
            record = {"command": args, "notes": notes, "wall_s": time.perf_counter() - t0,
                      "build_s": log.get("build_s"), "device": log.get("device"),
                      "compute_capability": log.get("compute_capability"), "warnings": log["warnings"],
                      "precision_counts": _layer_counts(scratch / "layers.json")}
            (scratch / "build.log").write_text(proc.stdout + proc.stderr)
            atomic_write_json(scratch / "build.json", record)
            records.append(record)

        build_into(entry, fill)
        return records[0]

    def infer(self) -> float | None:
        raise RuntimeError("trtexec measures on its own: call measure_external(protocol), not infer()")

    def measure_external(self, protocol: Protocol) -> ExternalMeasurement:

        s = settings_for(protocol, self.extra, self.precision, self.opt_level)
        timeout = s.warmup_ms / 1000 + s.duration_s + float(self.extra.get("round_timeout_s", 300.0))
        rounds: list[TrtexecTimes] = []
        logs: list[dict] = []
        notes: list[str] = []
        m = Measurement()
        before = gpu_snapshot(0)
        with tempfile.TemporaryDirectory(prefix="trtexec-times-") as tmp:
            while not m.stop_reason:
                times_file = Path(tmp) / f"round{len(rounds)}.json"
                args, flag_notes = run_command(self.exe, self.engine, times_file, s, self.help)
                proc = _run(args, timeout)
                log = parse_log(proc.stdout + proc.stderr)
                if proc.returncode != 0 or not log["passed"] or not times_file.exists():
                    raise _failure(f"round {len(rounds) + 1}", proc, log)
                times, aligned = align_with_log(parse_times(times_file.read_text()), log)
                notes += [n for n in aligned if n not in notes]
                rounds.append(times)
                logs.append(log)
                m.samples_ms.append(list(times.latency_ms))
                # The time cap counts measuring time, as in-process: one warm-up and the timed inferences,
                # not each round's process start and engine load (which alone would pass 5 s in 5 rounds).
                measured_s = protocol.warmup_s + sum(map(sum, m.samples_ms)) / 1000
                m.stop_reason = stopping_reason(m, protocol, measured_s)
        info = {**self._info, "settings": asdict(s), "run_command": args, "flag_notes": flag_notes,
                "device_reported": {k: logs[0].get(k) for k in ("device", "device_uuid", "compute_capability")},
                "gpu_before": before, "gpu_after": gpu_snapshot(0)}
        return to_external(rounds, logs, protocol, m.stop_reason, info, notes)

    def info(self) -> dict:
        return dict(self._info)


def _layer_counts(layers_json: Path) -> dict | None:
    """Per-precision layer counts of trtexec's engine (its --exportLayerInfo is the engine inspector's
    JSON), for comparison with our own engine's."""

    data = read_json(layers_json)
    if data is None:
        return None
    try:
        return precision_counts(data)
    except ValueError as e:
        return {"error": str(e)}
