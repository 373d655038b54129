"""The trt device measured by NVIDIA's trtexec (`via = "trtexec"`): a cross-check of our own TensorRT runner.

trtexec times its own inferences, so this runner hands the one measurement loop whole rounds: one trtexec
process per round (`--loadEngine` of the engine exporters/trtexec.py built, `--exportTimes` for the raw
per-inference trace). Host-side samples are trtexec's Latency, device samples its GPU compute time. Needs the
trtexec binary and a GPU; neither PyTorch's CUDA build nor the tensorrt Python package.
"""
from __future__ import annotations

import tempfile
from dataclasses import asdict
from pathlib import Path

from bench.core.artifact import ExportArtifact
from bench.core.errors import MissingBackendError, UserError
from bench.core.protocol import Protocol
from bench.core.runner import Availability, RunnerBase, RunnerOptions, TimedRound
from bench.env.gpu import common_gpu_problem, gather_facts, gpu_env, gpu_snapshot
from bench.tools import trtexec as tool

ROUND_TIMEOUT_S = 300.0


def check_trtexec() -> Availability:
    """trtexec needs a driver and a GPU, and the trtexec binary (found on PATH, $TRTEXEC or NVIDIA's
    install locations); it needs neither PyTorch's CUDA build nor the tensorrt Python package."""
    why = common_gpu_problem(gather_facts())
    if why:
        return Availability("unavailable", why)
    try:
        tool.find_trtexec(None)
    except MissingBackendError as e:
        return Availability("unavailable", str(e))
    return Availability("available")


class TrtexecRunner(RunnerBase):
    """options.extra: trtexec (path of the binary), cuda_graph, copies, spin_wait, round_timeout_s."""

    self_timed = True

    def __init__(self, options: RunnerOptions):
        super().__init__(options)
        self.extra = dict(options.extra)
        self.index = int(self.extra.get("gpu") or 0)  # trtexec's --device (see bench.tools.trtexec.settings_for)
        self._info: dict = {}
        self._logs: list[dict] = []
        self._notes: list[str] = []

    def load(self, target: ExportArtifact) -> None:
        if not isinstance(target, ExportArtifact) or target.target != "trtexec":
            what = target.target if isinstance(target, ExportArtifact) else str(target)
            raise UserError(f"the trtexec runner loads an engine built by trtexec (bench export --device trt "
                            f"--option trt.via=trtexec), not {what}")
        self.engine = Path(target.path)
        if not self.engine.is_file():
            raise UserError(f"trtexec engine {self.engine} not found; export it again")
        self.exe = tool.find_trtexec(self.extra.get("trtexec") or target.metadata.get("trtexec"))
        help_proc = tool.run_tool([self.exe, "--help"], timeout=120)
        self.help = tool.parse_help(help_proc.stdout + help_proc.stderr)
        tool.check_core_flags(self.help)
        self.precision = target.precision
        self.opt_level = int(target.metadata.get("opt_level", 3))
        self._tmp = tempfile.TemporaryDirectory(prefix="trtexec-times-")
        self._info = {"runner": "trtexec", "trtexec": self.exe, "tensorrt": self.help.version or "unknown",
                      "onnx": target.metadata.get("onnx_path"), "onnx_sha256": target.metadata.get("onnx_sha256"),
                      "engine": str(self.engine), "build": target.metadata.get("build"),
                      "build_path": target.metadata.get("build_path"), "gpu": gpu_env(self.index),
                      "gpu_before": gpu_snapshot(self.index), "latency_semantics": tool.LATENCY_NOTE}

    def warm_up(self, protocol: Protocol) -> tuple[int, float]:
        # trtexec warms up inside every round's process (--warmUp); the loop counts those per round.
        return 0, 0.0

    def time_round(self, protocol: Protocol) -> TimedRound:
        s = tool.settings_for(protocol, self.extra, self.precision, self.opt_level)
        times_file = Path(self._tmp.name) / f"round{len(self._logs)}.json"
        args, flag_notes = tool.run_command(self.exe, self.engine, times_file, s, self.help)
        timeout = s.warmup_ms / 1000 + s.duration_s + float(self.extra.get("round_timeout_s", ROUND_TIMEOUT_S))
        proc = tool.run_tool(args, timeout)
        log = tool.parse_log(proc.stdout + proc.stderr)
        if proc.returncode != 0 or not log["passed"] or not times_file.exists():
            raise tool.failure(f"round {len(self._logs) + 1}", proc, log)
        times, aligned = tool.align_with_log(tool.parse_times(times_file.read_text()), log)
        self._notes += [n for n in aligned if n not in self._notes]
        self._logs.append(log)
        self._info.update(settings=asdict(s), run_command=args, flag_notes=flag_notes)
        first = len(self._logs) == 1
        return TimedRound(
            samples_ms=tuple(times.latency_ms), device_samples_ms=tuple(times.compute_ms),
            # The time cap counts measuring time, as in-process: the warm-up and the timed inferences, not
            # each round's process start and engine load (which alone would pass 5 s in 5 rounds).
            measured_s=(s.warmup_ms if first else 0.0) / 1000 + sum(times.latency_ms) / 1000,
            warmup_iters=log.get("warmup_queries", 0),
            load_ms=log["deserialize_s"] * 1000.0 if first and "deserialize_s" in log else None,
            flags=tuple(tool.flags_from([log]) + self._notes))

    def infer(self) -> float | None:
        raise RuntimeError("trtexec times its own rounds: measure it with bench.measure.measure(runner, ...)")

    def info(self) -> dict:
        return {**self._info, "gpu_after": gpu_snapshot(self.index) if self._logs else None,
                "device_reported": {k: self._logs[0].get(k) for k in ("device", "device_uuid",
                                                                        "compute_capability")}
                if self._logs else {},
                "rounds_printed": [{"summary": log["summary"], "throughput_qps": log.get("throughput_qps"),
                                    "trace_queries": log.get("trace_queries"),
                                    "compute_cv_pct": log.get("compute_cv_pct")} for log in self._logs]}

    def close(self) -> None:
        if getattr(self, "_tmp", None) is not None:
            self._tmp.cleanup()
            self._tmp = None
