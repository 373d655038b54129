"""Runner `android`: the int8 TFLite artifact on a phone, measured by TFLite's `benchmark_model` over adb.

Default settings target the Pixel 6's TPU: NNAPI with the `google-edgetpu` accelerator and NNAPI's CPU
fallback disabled (`options.extra["delegate"]`: nnapi | gpu | cpu). Our Protocol maps onto benchmark_model's
flags; its printed statistics (init, first inference, warm-up, count/avg/std/min/max, and the op profile
with `op_profiling`) become the round the measurement loop records, with the phone's model, Android version, SoC and
thermal state before and after.

Pure parts (tested without a phone): every command line (argument lists, never shell strings; the remote
side is quoted because `adb shell` joins its arguments into one line for the phone's shell), the flag
mapping, and the parsing of `adb devices`, getprop and `dumpsys thermalservice`.
"""
from __future__ import annotations

import math
import re
import shlex
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from bench.core.artifact import ExportArtifact
from bench.core.device import DeviceSpec, OptionSpec, RunnerSpec
from bench.core.errors import MissingBackendError, UserError
from bench.core.protocol import Protocol
from bench.core.runner import Availability, RunnerBase, RunnerOptions, TimedRound
from devices import tflite
from devices.benchmark_model_parser import BenchmarkOutput, delegated_share, parse

REMOTE_DIR = "/data/local/tmp/mobileone-bench"
DEFAULT_DELEGATE = "nnapi"
DEFAULT_ACCELERATOR = "google-edgetpu"  # the Pixel 6's TPU as NNAPI names it
DELEGATES = ("nnapi", "gpu", "cpu")
MAX_SECS_CAP = 3600.0  # benchmark_model stops a run after max_secs; open-ended protocols get an hour
ADB_TIMEOUT_S = 120.0
NO_ADB = "adb not found on PATH; install Android platform-tools and connect a phone with USB debugging on"
NO_PHONE = "no Android device attached (adb devices lists none ready); connect a phone with USB debugging on"
BINARY_URL = ("https://storage.googleapis.com/tensorflow-nightly-public/prod/tensorflow/release/lite/tools/"
              "nightly/latest/android_aarch64_benchmark_model")
BINARY_HELP = (f"download TFLite's prebuilt benchmark_model for android_aarch64 ({BINARY_URL}; see "
               "docs/tflite.md) and pass --option android.benchmark_model=PATH")
PROPS = {"model": "ro.product.model", "manufacturer": "ro.product.manufacturer", "device": "ro.product.device",
         "android": "ro.build.version.release", "sdk": "ro.build.version.sdk", "build": "ro.build.fingerprint",
         "soc_manufacturer": "ro.soc.manufacturer", "soc_model": "ro.soc.model", "platform": "ro.board.platform",
         "abi": "ro.product.cpu.abi"}
THERMAL_STATUS = ("none", "light", "moderate", "severe", "critical", "emergency", "shutdown")

Run = Callable[..., subprocess.CompletedProcess]


# ----------------------------------------------------------------------------------- command lines

def adb(serial: str | None, *args: str) -> list[str]:
    return ["adb", *(["-s", serial] if serial else []), *args]


def shell(serial: str | None, argv: list[str]) -> list[str]:
    """`adb shell` joins its arguments with spaces and hands the line to the phone's shell; quoting each
    argument keeps paths and values single words there."""
    return adb(serial, "shell", *(shlex.quote(a) for a in argv))


def push(serial: str | None, local: str | Path, remote: str) -> list[str]:
    return adb(serial, "push", str(local), remote)


def getprop(serial: str | None) -> list[str]:
    return shell(serial, ["getprop"])


def thermal(serial: str | None) -> list[str]:
    return shell(serial, ["dumpsys", "thermalservice"])


@dataclass(frozen=True)
class RunParams:
    """What benchmark_model is asked to do, from our Protocol."""

    warmup_runs: int
    warmup_min_secs: float
    num_runs: int
    min_secs: float
    max_secs: float


def run_params(p: "Protocol") -> RunParams:
    """benchmark_model runs one warm-up phase then one timed phase of at least num_runs and min_secs (stopping
    at max_secs); our rounds collapse into it: num_runs = min_rounds x iterations per round (fixed-size rounds
    count their size), min_secs = min_rounds x round_min_s, both at least the protocol's totals. At least
    one warm-up run, as the tool reports first-inference time from it."""
    per_round = p.round_max_iters if p.round_max_iters is not None else p.round_min_iters
    num_runs = max(p.min_rounds * per_round, p.min_total_iters, 1)
    min_secs = max(p.min_rounds * p.round_min_s, p.min_total_s)
    # Not max_s: benchmark_model's --max_secs would cut the run below num_runs, and the tool has no
    # precision rule that could run long: it stops once num_runs and min_secs are both reached.
    budget = p.max_rounds * p.round_max_s
    max_secs = min(budget, MAX_SECS_CAP) if math.isfinite(budget) else MAX_SECS_CAP
    return RunParams(warmup_runs=max(1, p.warmup_iters), warmup_min_secs=p.warmup_s, num_runs=num_runs,
                     min_secs=min_secs, max_secs=max(max_secs, min_secs))


def delegate_flags(delegate: str, accelerator: str = DEFAULT_ACCELERATOR) -> list[str]:
    if delegate == "nnapi":
        # With an accelerator name NNAPI compiles for that device only; --disable_nnapi_cpu (the tool's spelling
        # of the delegate's `disallow_nnapi_cpu`; --disallow_nnapi_cpu is no flag of the tool) also keeps
        # NNAPI's CPU reference path from standing in for the TPU.
        return ["--use_nnapi=true", f"--nnapi_accelerator_name={accelerator}", "--disable_nnapi_cpu=true"]
    if delegate == "gpu":
        return ["--use_gpu=true"]
    if delegate == "cpu":
        return ["--use_xnnpack=true"]
    raise UserError(f"android delegate {delegate!r} is not one of {', '.join(DELEGATES)}; "
                    "set --option android.delegate=nnapi|gpu|cpu")


def _num(x: float) -> str:
    return f"{x:g}"


def benchmark_args(binary: str, graph: str, protocol: "Protocol", threads: int, delegate: str,
                   accelerator: str = DEFAULT_ACCELERATOR, op_profiling: bool = False) -> list[str]:
    """The benchmark_model command (run on the phone) for one measurement."""
    r = run_params(protocol)
    args = [binary, f"--graph={graph}", f"--num_threads={threads}", f"--warmup_runs={r.warmup_runs}",
            f"--warmup_min_secs={_num(r.warmup_min_secs)}", f"--num_runs={r.num_runs}",
            f"--min_secs={_num(r.min_secs)}", f"--max_secs={_num(r.max_secs)}",
            *delegate_flags(delegate, accelerator)]
    if op_profiling:
        args += ["--enable_op_profiling=true", "--max_profiling_buffer_entries=4096"]
    return args


def single_run_args(binary: str, graph: str, threads: int, delegate: str, accelerator: str) -> list[str]:
    return [binary, f"--graph={graph}", f"--num_threads={threads}", "--warmup_runs=1", "--warmup_min_secs=0",
            "--num_runs=1", "--min_secs=0", *delegate_flags(delegate, accelerator)]


# ------------------------------------------------------------------------------------- parsing

def parse_devices(text: str) -> list[tuple[str, str]]:
    """(serial, state) pairs from `adb devices`: state is device, unauthorized, offline, ..."""
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and not line.startswith(("List of devices", "*")):
            out.append((parts[0], parts[1]))
    return out


_PROP = re.compile(r"^\[([^\]]+)\]: \[(.*)\]$")


def parse_props(text: str) -> dict[str, str]:
    """The phone fields we record, from `getprop`'s `[key]: [value]` lines."""
    values = {}
    for line in text.splitlines():
        m = _PROP.match(line.strip())
        if m:
            values[m.group(1)] = m.group(2)
    return {field: values[prop] for field, prop in PROPS.items() if values.get(prop)}


_TEMPERATURE = re.compile(r"Temperature\{mValue=(-?[\d.]+(?:[eE][-+]?\d+)?), mType=(-?\d+), mName=([^,}]+)")


def parse_thermal(text: str) -> dict:
    """`dumpsys thermalservice`: the overall status (0 none .. 6 shutdown) and the HAL's current
    temperatures (not the cached ones, which can be stale)."""
    m = re.search(r"^Thermal Status:\s*(\d+)", text, re.MULTILINE)
    status = int(m.group(1)) if m else None
    temps: dict[str, float] = {}
    section = text.split("Current temperatures from HAL:", 1)
    if len(section) == 2:
        for line in section[1].splitlines()[1:]:
            t = _TEMPERATURE.search(line)
            if not t:
                break
            temps[t.group(3).strip()] = float(t.group(1))
    return {"status": status, "status_name": THERMAL_STATUS[status] if status is not None and status < 7 else None,
            "temperatures_c": temps}


def summary_from(out: BenchmarkOutput, protocol: "Protocol") -> tuple[dict, list[str]]:
    """A Summary-shaped dict from the tool's aggregates, and flags saying what it could not give. The
    protocol's statistic where the tool printed it (min always; median only in versions that print
    percentiles); else the mean, flagged."""
    s = out.inference
    if s is None:
        raise UserError("benchmark_model printed no statistics for its timed runs; re-run with a newer binary")
    ms = (lambda us: us / 1000.0 if us is not None else None)
    flags = ["aggregates-only"]
    stat = protocol.statistic
    if stat == "min":
        latency = ms(s.min_us)
    elif stat == "median" and s.median_us is not None:
        latency = ms(s.median_us)
    else:
        latency, stat = ms(s.avg_us), "mean"
        flags.append(f"statistic-unavailable:{protocol.statistic}")
    return ({"statistic": stat, "latency_ms": latency, "median_ms": ms(s.median_us), "p90_ms": None,
             "mean_ms": ms(s.avg_us), "std_ms": ms(s.std_us), "min_ms": ms(s.min_us), "max_ms": ms(s.max_us),
             "ci_low_ms": None, "ci_high_ms": None, "count": s.count, "rounds": 1, "ci_rel_halfwidth": None},
            flags)


# ------------------------------------------------------------------------------------ availability

def _run(cmd: list[str], timeout: float = ADB_TIMEOUT_S) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def attached(run: Run = _run, which: Callable[[str], str | None] = shutil.which) -> list[tuple[str, str]]:
    if which("adb") is None:
        raise MissingBackendError(NO_ADB)
    try:
        result = run(adb(None, "devices"), timeout=20)
    except subprocess.TimeoutExpired:
        raise MissingBackendError("`adb devices` did not answer in 20 s; restart its server (adb kill-server) "
                                  "and retry") from None
    return parse_devices(result.stdout)


def check(run: Run = _run, which: Callable[[str], str | None] = shutil.which) -> Availability:
    try:
        devices = attached(run, which)
    except MissingBackendError as e:
        return Availability("unavailable", str(e))
    ready = [s for s, state in devices if state == "device"]
    if ready:
        return Availability("available")
    if any(state == "unauthorized" for _, state in devices):
        return Availability("unavailable", "the phone is attached but unauthorized; accept the USB debugging "
                                           "prompt on its screen")
    return Availability("unavailable", NO_PHONE)


# ------------------------------------------------------------------------------------------ runner

class AndroidRunner(RunnerBase):
    """options.extra: serial, benchmark_model (local path of the android_aarch64 binary), delegate
    (nnapi | gpu | cpu), nnapi_accelerator (default google-edgetpu), op_profiling (bool)."""

    self_timed = True

    def __init__(self, options: RunnerOptions, run: Run = _run, which: Callable[[str], str | None] = shutil.which):
        super().__init__(options)
        self._run, self._which = run, which
        extra = options.extra
        self.delegate = str(extra.get("delegate", DEFAULT_DELEGATE))
        delegate_flags(self.delegate)  # validates the name
        self.accelerator = str(extra.get("nnapi_accelerator", DEFAULT_ACCELERATOR))
        self.op_profiling = bool(extra.get("op_profiling", False))
        if options.threads < 1:
            raise UserError(f"android needs threads >= 1 (got {options.threads}); pass --threads N")
        self.serial: str | None = None
        self.remote_binary = f"{REMOTE_DIR}/benchmark_model"
        self.remote_model: str | None = None
        self.phone: dict = {}
        self._run_info: dict = {}

    def _adb(self, cmd: list[str], what: str, timeout: float = ADB_TIMEOUT_S) -> str:
        try:
            result = self._run(cmd, timeout=timeout)
        except FileNotFoundError:
            raise MissingBackendError(NO_ADB) from None
        except subprocess.TimeoutExpired:
            raise UserError(f"{what} took over {timeout:g} s on {self.serial}; check the phone and retry") from None
        if result.returncode != 0:
            detail = (result.stderr or result.stdout or "").strip().splitlines()
            raise UserError(f"{what} failed on {self.serial} (exit {result.returncode}): "
                            f"{detail[-1] if detail else 'no output'}")
        return result.stdout

    def _pick_serial(self) -> str:
        ready = [s for s, state in attached(self._run, self._which) if state == "device"]
        wanted = self.options.extra.get("serial")
        if wanted:
            if wanted not in ready:
                raise UserError(f"phone {wanted} is not attached and ready (adb devices: "
                                f"{', '.join(ready) or 'none'}); check the serial or the cable")
            return str(wanted)
        if len(ready) == 1:
            return ready[0]
        if not ready:
            raise MissingBackendError(NO_PHONE)
        raise UserError(f"{len(ready)} phones attached ({', '.join(ready)}); choose one with "
                        "--option android.serial=SERIAL")

    def load(self, target: "ExportArtifact") -> None:
        binary = self.options.extra.get("benchmark_model")
        if not binary:
            raise UserError(f"android needs the benchmark_model binary; {BINARY_HELP}")
        binary = Path(binary).expanduser()
        if not binary.is_file():
            raise UserError(f"benchmark_model binary {binary} not found; {BINARY_HELP}")
        if not Path(target.path).is_file():
            raise UserError(f"TFLite model {target.path} not found; export it first (bench export --device tflite)")
        self.serial = self._pick_serial()
        self._adb(shell(self.serial, ["mkdir", "-p", REMOTE_DIR]), "mkdir")
        self._adb(push(self.serial, binary, self.remote_binary), "adb push benchmark_model", timeout=300)
        self._adb(shell(self.serial, ["chmod", "755", self.remote_binary]), "chmod")
        # Named by content: two models (or two versions of one) never overwrite each other mid-run.
        self.remote_model = f"{REMOTE_DIR}/{target.model}-{target.sha256[:12]}.tflite"
        self._adb(push(self.serial, target.path, self.remote_model), "adb push model", timeout=300)
        self.phone = parse_props(self._adb(getprop(self.serial), "getprop"))

    def _thermal(self) -> dict:
        try:
            return parse_thermal(self._adb(thermal(self.serial), "dumpsys thermalservice", timeout=30))
        except UserError as e:  # older Android has no thermalservice: record why, measure anyway
            return {"status": None, "error": str(e)}

    def _benchmark(self, argv: list[str], timeout: float) -> tuple[BenchmarkOutput, str]:
        cmd = shell(self.serial, argv)
        try:
            result = self._run(cmd, timeout=timeout)
        except FileNotFoundError:
            raise MissingBackendError(NO_ADB) from None
        except subprocess.TimeoutExpired:
            raise UserError(f"benchmark_model ran over {timeout:g} s on {self.serial}; lower the protocol's "
                            "budget or check the phone") from None
        text = (result.stdout or "") + "\n" + (result.stderr or "")
        return parse(text), text

    def warm_up(self, protocol: "Protocol") -> tuple[int, float]:
        # benchmark_model warms up inside its own run (--warmup_runs, --warmup_min_secs), counted per round.
        return 0, 0.0

    def time_round(self, protocol: "Protocol") -> TimedRound:
        """One benchmark_model run under the protocol: the tool prints aggregates only, so the round carries
        its summary (and the loop stops after it: rounds, trim and the stopping rule do not apply)."""
        argv = benchmark_args(self.remote_binary, self.remote_model, protocol, self.options.threads,
                              self.delegate, self.accelerator, self.op_profiling)
        r = run_params(protocol)
        before = self._thermal()
        out, _ = self._benchmark(argv, timeout=r.max_secs * 2 + 300)
        after = self._thermal()
        summary, flags = summary_from(out, protocol)
        if out.delegate_fell_back:
            flags.append("delegate-fell-back-to-cpu")
        if before.get("status") is not None and after.get("status") is not None and after["status"] > before["status"]:
            flags.append("thermal-status-rose")
        self._run_info = {
            "tool": "benchmark_model", "tool_version": out.tool_version, "command": shell(self.serial, argv),
            "tool_protocol": f"{out.inference.count} runs (asked >= {r.num_runs} runs and >= {r.min_secs:g} s, "
                             f"<= {r.max_secs:g} s)",
            "delegate": self.delegate, "nnapi_accelerator": self.accelerator if self.delegate == "nnapi" else None,
            "threads": self.options.threads, "phone": self.phone, "serial": self.serial,
            "thermal_before": before, "thermal_after": after,
            "warmup": asdict(out.warmup) if out.warmup else None,
            "warmup_avg_ms": out.warmup_avg_ms, "inference_avg_ms": out.inference_avg_ms,
            "nnapi_accelerators": list(out.nnapi_accelerators), **delegated_share(out),
            "op_profile": [asdict(row) for row in out.op_profile],
            "op_summary": [asdict(row) for row in out.op_summary], "memory_mb": out.memory_mb}
        return TimedRound(aggregate=summary, measured_s=(out.inference.count * (out.inference.avg_us or 0)) / 1e6,
                          warmup_iters=out.warmup.count if out.warmup else r.warmup_runs, load_ms=out.init_ms,
                          first_inference_ms=out.first_inference_ms, flags=tuple(flags))

    def infer(self) -> float:
        """One inference by benchmark_model (one warm-up, one timed run); returns that run's ms. Each call is
        a process start on the phone: the suite measures whole runs through time_round instead."""
        out, _ = self._benchmark(single_run_args(self.remote_binary, self.remote_model, self.options.threads,
                                                 self.delegate, self.accelerator), timeout=ADB_TIMEOUT_S)
        return out.inference_avg_ms

    def info(self) -> dict:
        return self._run_info or {"tool": "benchmark_model", "delegate": self.delegate,
                                  "threads": self.options.threads, "phone": self.phone, "serial": self.serial}

    def close(self) -> None:
        if self.serial and self.remote_model:
            try:
                self._run(shell(self.serial, ["rm", "-f", self.remote_model]), timeout=30)
            except (OSError, subprocess.SubprocessError):
                pass  # the phone went away; nothing of ours is left on this machine
            self.remote_model = None


SPEC = DeviceSpec(
    "android", "int8 TFLite on an Android phone via adb + benchmark_model", kind="mobile", precision="int8",
    paper_column="pixel6_tpu_ms",
    runners=(("runtime", RunnerSpec("benchmark_model", AndroidRunner, exporter="tflite", runtime=None, extra="tflite",
                                     check=check)),),
    options=(
        OptionSpec("serial", str, help="adb serial of the phone"),
        OptionSpec("benchmark_model", str, help="path of the android_aarch64 benchmark_model binary"),
        OptionSpec("delegate", str, None, DELEGATES, "TFLite delegate (nnapi = the Pixel's TPU)"),
        OptionSpec("nnapi_accelerator", str, help="NNAPI accelerator name (default google-edgetpu)"),
        OptionSpec("op_profiling", bool, help="record which ops each delegate ran"),
        *tflite.EXPORT_OPTIONS,
    ))
