"""NVIDIA's trtexec as a tool: finding it, reading `trtexec --help` for the flags this version has, the
command lines that build an engine and measure one round (argument lists, never shell strings), and parsers
for its `--exportTimes` JSON and its log. Pure apart from `find_trtexec` and `run_tool`; tested on fixtures
in trtexec's documented formats. The engine build (exporters/trtexec.py) and the runner (devices/trtexec.py)
both stand on it."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from bench.core.errors import MissingBackendError, UserError
from bench.core.options import option_flag
from bench.core.protocol import Protocol

TRTEXEC_ENV = "TRTEXEC"
# Where NVIDIA's packages put trtexec (Debian/RPM packages, NGC containers, tar installs).
KNOWN_LOCATIONS = ("/usr/src/tensorrt/bin/trtexec", "/opt/tensorrt/bin/trtexec", "/usr/local/tensorrt/bin/trtexec")
MIN_WARMUP_MS = 200.0  # trtexec's own default; warm-up is by time only, so protocols asking for a few
#                        warm-up inferences get at least this (docs/measurement.md: GPU warm-up 200 ms)
REQUIRED_FLAGS = ("--onnx", "--saveEngine", "--loadEngine", "--warmUp", "--iterations", "--duration",
                  "--exportTimes")
# setting -> (flag that turns it on, flag that turns it off). Which exist, and the defaults, changed between
# TensorRT 10 and 11 (samples/common/sampleOptions.cpp): 10 has --noDataTransfers, --useSpinWait and
# --useCudaGraph (transfers on, spin and graph off by default); 11 turned every default round and has
# --includeDataTransfers, --noSpinWait and --noCudaGraph, keeping the old three as deprecated no-ops that
# only print a warning. So each choice is stated with a live flag where this trtexec has one, and otherwise
# left to the default its help states (see `toggle_args`).
TOGGLES = {
    "cuda_graph": ("--useCudaGraph", "--noCudaGraph"),
    "copies": ("--includeDataTransfers", "--noDataTransfers"),
    "spin_wait": ("--useSpinWait", "--noSpinWait"),
}
# How an fp16 engine is built (recorded in the artifact): TensorRT 10's trtexec has --fp16 (weakly typed:
# fp16 kernels allowed where faster); 11's has none (every network strongly typed), so it builds the fp16
# ONNX (exporters/onnx_fp16.py) as it is typed.
WEAKLY_TYPED_FP16 = "weakly-typed+fp16-flag"
STRONGLY_TYPED_FP16 = "strongly-typed+fp16-onnx"
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
    deprecated: frozenset[str] = frozenset()  # flags the help calls "[Deprecated] ... no-op"

    def live(self, flag: str) -> bool:
        """This trtexec has the flag and it does something (a deprecated no-op only prints a warning)."""
        return flag in self.flags and flag not in self.deprecated

    @property
    def fp16_build(self) -> str:
        """How this trtexec builds fp16: the --fp16 flag on the fp32 ONNX (10), else the fp16 ONNX (11)."""
        return WEAKLY_TYPED_FP16 if self.live("--fp16") else STRONGLY_TYPED_FP16

    @property
    def name(self) -> str:
        return f"trtexec {self.version}" if self.version else "this trtexec"

    def feature_default(self, *flags: str) -> bool | None:
        """The default of a feature as trtexec's help states it on any of its flags' lines: "(default =
        enabled)" describes the feature itself, on a --useX line as on a --noX line."""
        for flag in flags:
            # "enabled", "disabled", "spin wait enabled", "CUDA graph enabled" (11's --noX lines)
            m = re.search(r"\b(enabled|disabled)\b", self.defaults.get(flag, ""))
            if m:
                return m.group(1) == "enabled"
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
    flags, defaults, deprecated = set(), {}, set()
    for line in text.splitlines():
        m = _FLAG_LINE.match(_strip_prefix(line)[1])
        if not m:
            continue
        flags.add(m.group(1))
        if "[deprecated]" in line.lower() and "no-op" in line.lower():
            deprecated.add(m.group(1))
        d = _DEFAULT.search(line)
        if d:
            defaults.setdefault(m.group(1), d.group(1).strip().lower())
    v = _RUNNING.search(text)
    return TrtexecHelp(frozenset(flags), defaults, version_from_code(int(v.group(1))) if v else None,
                       frozenset(deprecated))


def check_core_flags(help: TrtexecHelp) -> None:
    missing = [f for f in REQUIRED_FLAGS if f not in help.flags]
    if missing:
        raise UserError(f"{help.name} lacks {', '.join(missing)}; "
                        f"point --trtexec (or ${TRTEXEC_ENV}) at the trtexec of TensorRT 10 or 11")


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
    device: int | None = None  # CUDA device (the trt device's `gpu` option): --device=N


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
        spin_wait=option_flag(extra, "spin_wait", True),
        device=int(extra["gpu"]) if extra.get("gpu") is not None else None)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def toggle_args(setting: str, want: bool, help: TrtexecHelp) -> tuple[list[str], str]:
    """The flag stating `setting=want`, or none where this trtexec has no live such flag (absent, or a
    deprecated no-op) AND its help states that the default already is `want`; otherwise a UserError (we never
    guess a default)."""
    on, off = TOGGLES[setting]
    flag = on if want else off
    if help.live(flag):
        return [flag], f"{setting}={want}: {flag}"
    if help.feature_default(on, off) is want:
        state = "enabled" if want else "disabled"
        why = f"{flag} is a deprecated no-op" if flag in help.flags else f"this trtexec has no {flag}"
        return [], f"{setting}={want}: {why}; its help states the default ({state})"
    raise UserError(f"{help.name} cannot be told {setting}={want}: it has no {flag} flag and "
                    f"its help does not state that default; set {setting}={not want} or use another trtexec")


def build_command(exe: str, onnx: Path, engine: Path, layers: Path, timing_cache: Path, s: TrtexecSettings,
                  help: TrtexecHelp) -> tuple[list[str], list[str]]:
    """trtexec arguments that build (and only build) the engine, and notes on how each choice was stated.
    `onnx` is the fp32 ONNX, or for fp16 on a trtexec without --fp16 (`help.fp16_build`) the fp16 one."""
    check_core_flags(help)
    args = [exe, f"--onnx={onnx}", f"--saveEngine={engine}"]
    notes = []
    if s.precision == "fp16":
        if help.fp16_build == WEAKLY_TYPED_FP16:
            args.append("--fp16")
        else:  # 11: strongly typed is the only mode; the fp16 ONNX carries the precision
            if help.live("--stronglyTyped"):
                args.append("--stronglyTyped")
            notes.append(f"precision=fp16: {help.name} has no --fp16; built strongly typed from the fp16 ONNX")
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
                        "use the trtexec of TensorRT 10 or 11")
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
    if s.device is not None:
        if "--device" not in help.flags:
            raise UserError(f"{help.name} has no --device: leave the gpu option unset and select the GPU with "
                            "CUDA_VISIBLE_DEVICES")
        args.append(f"--device={s.device}")
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


def flags_from(logs: list[dict]) -> list[str]:
    """Result flags from what trtexec warned of in its logs."""
    flags = []
    for log in logs:
        for w in log["warnings"]:
            if w.startswith("* ") and f"trtexec: {w[2:]}" not in flags:
                flags.append(f"trtexec: {w[2:]}")
            elif "graph capture" in w.lower() and "trtexec: CUDA graph capture failed" not in flags:
                flags.append("trtexec: CUDA graph capture failed")
    return flags


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


def run_tool(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"trtexec did not finish within {timeout:.0f} s: {' '.join(args)}") from None


def failure(what: str, proc: subprocess.CompletedProcess, log: dict) -> RuntimeError:
    lines = log["errors"][-3:] or (proc.stderr or proc.stdout or "").strip().splitlines()[-1:]
    detail = "; ".join(lines) or "no output"
    return RuntimeError(f"trtexec {what} failed (exit {proc.returncode}): {detail}")


