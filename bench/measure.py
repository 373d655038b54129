"""The one timing loop: warm-up, rounds x iterations, a stopping rule, contention checks.

The protocol and its presets are in bench/core/protocol.py; docs/measurement.md says where each comes from.
"""
from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

from bench.core.protocol import Protocol
from bench.stats import summarize

Clock = Callable[[], int]  # nanoseconds


class ContentionProbe:
    """How much of our CPUs other processes used over an interval: busy time of the CPUs in our affinity set
    (from /proc/stat) minus this process's own CPU time, as a fraction of those CPUs' capacity."""

    def __init__(self, stat_path: str = "/proc/stat"):
        self.stat_path = stat_path
        try:
            self.cpus = sorted(os.sched_getaffinity(0))
        except AttributeError:  # not Linux
            self.cpus = list(range(os.cpu_count() or 1))
        self.tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self._start: tuple[float, float, float] | None = None

    def _busy_s(self) -> float | None:
        try:
            with open(self.stat_path) as f:
                lines = f.read().splitlines()
        except OSError:
            return None
        wanted = {f"cpu{c}" for c in self.cpus}
        busy = 0
        found = 0
        for line in lines:
            parts = line.split()
            if parts and parts[0] in wanted:
                v = [int(x) for x in parts[1:]]
                idle = v[3] + (v[4] if len(v) > 4 else 0)  # idle + iowait
                busy += sum(v[:8]) - idle  # guest time is already inside user
                found += 1
        return busy / self.tick if found else None

    def start(self) -> None:
        self._start = (self._busy_s(), time.process_time(), time.monotonic())

    def stop(self) -> float | None:
        """Other processes' share of our CPUs since start(), in [0, 1]; None where /proc/stat is absent."""
        if self._start is None or self._start[0] is None:
            return None
        busy0, own0, wall0 = self._start
        busy1, own1, wall1 = self._busy_s(), time.process_time(), time.monotonic()
        if busy1 is None or wall1 <= wall0:
            return None
        other = (busy1 - busy0) - (own1 - own0)
        return float(min(1.0, max(0.0, other / ((wall1 - wall0) * len(self.cpus)))))


@dataclass
class Measurement:
    """Raw material of a cell's steady state, by round. Rounds redone for contention are kept apart."""

    samples_ms: list[list[float]] = field(default_factory=list)
    device_samples_ms: list[list[float]] = field(default_factory=list)  # CUDA-event times, when the runner has them
    contention: list[float | None] = field(default_factory=list)  # per accepted round
    rejected_rounds: list[dict] = field(default_factory=list)  # {"samples_ms", "contention"} of redone rounds
    warmup_iters: int = 0
    warmup_s: float = 0.0
    stop_reason: str = ""
    wall_s: float = 0.0
    contended: bool = False  # some accepted round never got below the contention threshold

    def to_dict(self) -> dict:
        return asdict(self)


def run_round(infer: Callable[[], float | None], p: Protocol, clock: Clock) -> tuple[list[float], list[float]]:
    for _ in range(p.round_warmup_iters):
        infer()
    host: list[float] = []
    device: list[float] = []
    start = clock()
    min_ns, max_ns = p.round_min_s * 1e9, p.round_max_s * 1e9
    while True:
        t0 = clock()
        dev = infer()
        t1 = clock()
        host.append((t1 - t0) / 1e6)
        if dev is not None:
            device.append(float(dev))
        n, elapsed = len(host), t1 - start
        if p.round_max_iters is not None and n >= p.round_max_iters:
            break
        if n >= p.round_min_iters and elapsed >= min_ns:
            break
        if elapsed >= max_ns:
            break
    return host, device


def warm_up(infer: Callable[[], float | None], p: Protocol, clock: Clock) -> tuple[int, float]:
    start = clock()
    n = 0
    while n < p.warmup_iters or (clock() - start) < p.warmup_s * 1e9:
        infer()
        n += 1
    return n, (clock() - start) / 1e9


def stopping_reason(m: Measurement, p: Protocol, elapsed_s: float) -> str:
    rounds = len(m.samples_ms)
    if rounds < p.min_rounds:
        return ""
    total = sum(len(r) for r in m.samples_ms)
    if total < p.min_total_iters or elapsed_s < p.min_total_s:
        return "" if rounds < p.max_rounds else "round cap"
    if p.target_rel_ci is None:
        return "protocol complete"
    width = summarize(m.samples_ms, p.statistic, p.trim).ci_rel_halfwidth
    if width <= p.target_rel_ci:
        return f"precision reached (+-{width:.1%})"
    if rounds >= p.max_rounds:
        return "round cap"
    return f"time cap ({p.max_s:g} s)" if elapsed_s >= p.max_s else ""


def measure(
    infer: Callable[[], float | None],
    protocol: Protocol,
    *,
    clock: Clock = time.perf_counter_ns,
    probe: ContentionProbe | None = None,
    reload: Callable[[], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    on_round: Callable[[Measurement], None] | None = None,
) -> Measurement:
    """Steady-state samples of `infer` under `protocol`. Load time and first inference are the caller's."""
    p = protocol
    m = Measurement()
    t_start = clock()
    m.warmup_iters, m.warmup_s = warm_up(infer, p, clock)
    while not m.stop_reason:
        for attempt in range(p.contention_retries + 1):
            if p.reload_each_round and reload is not None and m.samples_ms:
                reload()
            if probe:
                probe.start()
            host, device = run_round(infer, p, clock)
            busy = probe.stop() if probe else None
            quiet = busy is None or busy <= p.contention_threshold
            if quiet or attempt == p.contention_retries:
                break
            m.rejected_rounds.append({"samples_ms": host, "contention": busy})
            sleep(p.contention_wait_s)
        if not quiet:
            m.contended = True
        m.samples_ms.append(host)
        if device:
            m.device_samples_ms.append(device)
        m.contention.append(busy)
        m.stop_reason = stopping_reason(m, p, (clock() - t_start) / 1e9)
        if on_round:
            on_round(m)
    m.wall_s = (clock() - t_start) / 1e9
    return m


def timed_ms(fn: Callable[[], object], clock: Clock = time.perf_counter_ns) -> tuple[object, float]:
    t0 = clock()
    out = fn()
    return out, (clock() - t0) / 1e6
