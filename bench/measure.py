"""The one timing loop: warm-up, rounds, contention retries, the stopping rule and the summary.

Two kinds of runner feed it. Most offer `infer()`, and the loop times each call itself; runners whose steady
state an outside tool times (trtexec, Android's benchmark_model) hand it whole rounds they timed
(`SelfTimedRunner.time_round`). Either way this module alone decides when a round is redone for contention,
when to stop, and how the samples are summarized and flagged. The protocol and its presets are in
bench/core/protocol.py; docs/measurement.md says where each comes from.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Protocol as TypingProtocol, runtime_checkable

from bench.core.protocol import Protocol
from bench.core.runner import TimedRound
from bench.stats import round_stability, summarize, widen_for_runs

Clock = Callable[[], int]  # nanoseconds


CONTENTION_FLOOR = 0.05  # what a round tolerates even with no spare CPU: the kernel's and the VM's own noise


def contention_threshold(threads: int | None, cpus: int) -> float:
    """The share of our CPUs other processes may use before a round is redone, from what the round needs: a
    parallel operator waits for its slowest thread, so with as many threads as CPUs (2 on 2) any foreign load
    stalls it and only the floor is tolerated; each CPU the threads leave spare tolerates half of its share
    (the scheduler does not always place the intruder there). 2 threads on 2 CPUs: 5%; 1 on 2: 30%; 1 on 8:
    49%. A protocol's explicit `contention_threshold` overrides it."""
    cpus = max(1, cpus)
    used = min(cpus, threads or cpus)
    return CONTENTION_FLOOR + 0.5 * (cpus - used) / cpus


def foreign_by_cpu(busy_s: dict[int, float], own_s: dict[int, float], own_total_s: float,
                   wall_s: float) -> dict[int, float]:
    """Other processes' share of each CPU over an interval: the CPU's busy seconds (steal included) minus
    ours on it, over the interval. Our per-CPU seconds are attributed to the CPU each thread last ran on, so a
    thread that moved leaves its time on the wrong CPU; the per-CPU figures are therefore scaled so that
    together they hold exactly the pooled foreign time (busy - ours, which /proc/stat and our own clock give
    exactly). A CPU's figure is then at least the pooled share where the load sits there, and never more
    than the pooled time allows."""
    if wall_s <= 0 or not busy_s:
        return {c: 0.0 for c in busy_s}
    raw = {c: max(0.0, busy_s[c] - own_s.get(c, 0.0)) for c in busy_s}
    pooled = max(0.0, sum(busy_s.values()) - own_total_s)
    total_raw = sum(raw.values())
    scale = pooled / total_raw if total_raw > 0 else 0.0
    return {c: min(1.0, raw[c] * scale / wall_s) for c in busy_s}


def load_on_needed_cpus(shares: dict[int, float], threads: int | None) -> float:
    """The foreign load a round with `threads` threads meets: the scheduler can put them on the least-loaded
    CPUs of the affinity set, so it is the highest load among the `threads` least-loaded ones. With as many
    threads as CPUs that is the busiest CPU: a parallel operator waits for its slowest thread."""
    if not shares:
        return 0.0
    ordered = sorted(shares.values())
    used = min(len(ordered), threads or len(ordered))
    return ordered[used - 1]


class ContentionProbe:
    """How much of the CPUs a round needs other processes used: per CPU of our affinity set, its busy time
    (steal included, as the kernel reports it for a VM's CPUs) from /proc/stat, minus our threads' time on it
    (/proc/self/task/*/stat), as a share of the interval (foreign_by_cpu); the round is judged by the load on
    the CPUs its threads need (load_on_needed_cpus). `threads` is what the measured runner uses: it sets both
    that and the threshold (contention_threshold). `last` holds the last interval's per-CPU figures, steal
    and pooled share, the evidence behind the figure."""

    def __init__(self, stat_path: str = "/proc/stat", threads: int | None = None,
                 task_dir: str = "/proc/self/task"):
        self.stat_path, self.task_dir = stat_path, task_dir
        self.threads = threads
        try:
            self.cpus = sorted(os.sched_getaffinity(0))
        except AttributeError:  # not Linux
            self.cpus = list(range(os.cpu_count() or 1))
        self.tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self._start: tuple | None = None
        self.last: dict = {}

    def _cpu_seconds(self) -> tuple[dict[int, float], dict[int, float]] | None:
        """(busy, steal) seconds per CPU of the affinity set; None where /proc/stat is absent."""
        try:
            with open(self.stat_path) as f:
                lines = f.read().splitlines()
        except OSError:
            return None
        wanted = {f"cpu{c}": c for c in self.cpus}
        busy: dict[int, float] = {}
        steal: dict[int, float] = {}
        for line in lines:
            parts = line.split()
            if parts and parts[0] in wanted:
                v = [int(x) for x in parts[1:]]
                idle = v[3] + (v[4] if len(v) > 4 else 0)  # idle + iowait
                c = wanted[parts[0]]
                busy[c] = (sum(v[:8]) - idle) / self.tick  # guest time is already inside user
                steal[c] = (v[7] if len(v) > 7 else 0) / self.tick
        return (busy, steal) if busy else None

    def _own_by_cpu(self) -> dict[int, float]:
        """Our threads' CPU seconds, each thread's on the CPU it last ran on (field 39 of its stat)."""
        own: dict[int, float] = {}
        try:
            tasks = os.listdir(self.task_dir)
        except OSError:
            return own
        for tid in tasks:
            try:
                with open(f"{self.task_dir}/{tid}/stat") as f:
                    text = f.read()
            except OSError:
                continue  # a thread that ended
            fields = text[text.rindex(")") + 2:].split()  # after "pid (comm) ", comm may hold spaces
            if len(fields) > 36:
                cpu = int(fields[36])
                own[cpu] = own.get(cpu, 0.0) + (int(fields[11]) + int(fields[12])) / self.tick
        return own

    def threshold(self, p: Protocol) -> float:
        return p.contention_threshold if p.contention_threshold is not None else \
            contention_threshold(self.threads, len(self.cpus))

    def start(self) -> None:
        self._start = (self._cpu_seconds(), self._own_by_cpu(), time.process_time(), time.monotonic())

    def stop(self) -> float | None:
        """The foreign load on the CPUs the round needs since start(), in [0, 1]; None where /proc/stat is
        absent."""
        if self._start is None or self._start[0] is None:
            return None
        cpu0, own0, total0, wall0 = self._start
        cpu1, own1, total1, wall1 = self._cpu_seconds(), self._own_by_cpu(), time.process_time(), time.monotonic()
        if cpu1 is None or wall1 <= wall0:
            return None
        (busy0, steal0), (busy1, steal1) = cpu0, cpu1
        wall = wall1 - wall0
        busy = {c: busy1[c] - busy0.get(c, 0.0) for c in busy1}
        # A thread's time since start, on the CPU it was last seen on (threads born since start count whole).
        own = {c: own1.get(c, 0.0) - own0.get(c, 0.0) for c in set(own1) | set(own0)}
        shares = foreign_by_cpu(busy, own, total1 - total0, wall)
        load = load_on_needed_cpus(shares, self.threads)
        self.last = {"per_cpu": shares, "load": load,
                     "pooled": max(0.0, sum(busy.values()) - (total1 - total0)) / (wall * len(busy)),
                     "steal": {c: (steal1[c] - steal0.get(c, 0.0)) / wall for c in steal1}}
        return float(min(1.0, max(0.0, load)))


@runtime_checkable
class SelfTimedRunner(TypingProtocol):
    """A runner whose inferences an outside tool times: it warms up and times whole rounds itself."""

    def warm_up(self, protocol: Protocol) -> tuple[int, float]: ...

    def time_round(self, protocol: Protocol) -> TimedRound: ...


class InferRounds:
    """The rounds of an in-process runner: the loop times each `infer()` call on `clock`."""

    def __init__(self, infer: Callable[[], float | None], clock: Clock = time.perf_counter_ns):
        self.infer, self.clock = infer, clock

    def warm_up(self, protocol: Protocol) -> tuple[int, float]:
        return warm_up(self.infer, protocol, self.clock)

    def time_round(self, protocol: Protocol) -> TimedRound:
        host, device = run_round(self.infer, protocol, self.clock)
        return TimedRound(tuple(host), tuple(device))


@dataclass
class Measurement:
    """A cell's steady state, by round, and what the loop concluded from it. Rounds redone for contention
    are kept apart."""

    samples_ms: list[list[float]] = field(default_factory=list)
    device_samples_ms: list[list[float]] = field(default_factory=list)  # CUDA-event times, when the runner has them
    contention: list[float | None] = field(default_factory=list)  # per accepted round
    rejected_rounds: list[dict] = field(default_factory=list)  # {"samples_ms", "contention"} of redone rounds
    warmup_iters: int = 0
    warmup_s: float = 0.0
    stop_reason: str = ""
    wall_s: float = 0.0
    measured_s: float = 0.0  # what the time cap counts: warm-up and rounds (a tool's process starts excluded)
    waited_s: float = 0.0  # spent waiting for quiet between redone rounds
    contended: bool = False  # some accepted round never got below the contention threshold
    aggregates: list[dict] = field(default_factory=list)  # rounds a tool reported only as aggregates
    round_flags: list[str] = field(default_factory=list)  # what the runner said of its rounds
    load_ms: float | None = None  # as a self-timing tool reported it (else the caller times load)
    first_inference_ms: float | None = None
    summary: dict | None = None  # bench.stats.Summary.to_dict() of the host-side samples
    device_summary: dict | None = None
    flags: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def add(self, r: TimedRound, contention: float | None) -> None:
        if r.samples_ms:
            self.samples_ms.append(list(r.samples_ms))
        if r.device_samples_ms:
            self.device_samples_ms.append(list(r.device_samples_ms))
        if r.aggregate is not None:
            self.aggregates.append(dict(r.aggregate))
        self.contention.append(contention)
        self.warmup_iters += r.warmup_iters
        self.round_flags += [f for f in r.flags if f not in self.round_flags]
        if self.load_ms is None:
            self.load_ms = r.load_ms
        if self.first_inference_ms is None:
            self.first_inference_ms = r.first_inference_ms

    @property
    def rounds(self) -> int:
        return len(self.contention)


@dataclass
class WaitBudget:
    """Seconds that may still be spent waiting for quiet: one per cell (the protocol's contention_budget_s)
    and one per run (`--wait-budget`), both drawn on by every wait."""

    seconds: float = math.inf
    spent: float = 0.0

    @property
    def left(self) -> float:
        return max(0.0, self.seconds - self.spent)


@dataclass(frozen=True)
class RoundOutcome:
    """One accepted round, the share of our CPUs others used during it, and the rounds redone before it."""

    round: TimedRound
    contention: float | None
    quiet: bool  # False: even the last try was above the threshold
    rejected: tuple[dict, ...] = ()
    waited_s: float = 0.0  # spent waiting for quiet (not measuring: the time cap does not count it)


def measure_round(take: Callable[[], TimedRound], p: Protocol, probe: ContentionProbe | None = None,
                  sleep: Callable[[float], None] = time.sleep,
                  before: Callable[[], None] | None = None, budgets: tuple[WaitBudget, ...] = (),
                  on_wait: Callable[[float, float, float], None] | None = None) -> RoundOutcome:
    """One round, redone while other processes took more of our CPUs than the round can spare: after a wait
    that doubles each time, up to the protocol's retries and as long as every budget (the cell's, the run's)
    has time left. The last try is kept either way; the caller flags it. `on_wait(load, threshold, seconds)`
    tells the progress display why it waits."""
    rejected: list[dict] = []
    wait, waited = p.contention_wait_s, 0.0
    for attempt in range(p.contention_retries + 1):
        if before is not None:
            before()
        if probe:
            probe.start()
        r = take()
        busy = probe.stop() if probe else None
        quiet = busy is None or busy <= probe.threshold(p)
        grant = min([wait, *(b.left for b in budgets)])
        spent = any(b.left <= 0 for b in budgets)  # a budget used up: keep this round, flagged
        if quiet or attempt == p.contention_retries or spent:
            return RoundOutcome(r, busy, quiet, tuple(rejected), waited)
        rejected.append({"samples_ms": list(r.samples_ms), "contention": busy})
        if on_wait:
            on_wait(busy, probe.threshold(p), grant)
        sleep(grant)
        waited += grant
        for b in budgets:
            b.spent += grant
        wait *= 2
    raise AssertionError("unreachable")


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
    if m.aggregates and not m.samples_ms:
        # A tool that reports aggregates only ran its own protocol in one invocation: nothing to add.
        return "the tool's own protocol (aggregates only)"
    rounds = len(m.samples_ms)
    if rounds < p.min_rounds:
        return ""
    total = sum(len(r) for r in m.samples_ms)
    if total < p.min_total_iters or elapsed_s < p.min_total_s:
        return "" if rounds < p.max_rounds else "round cap"
    if p.target_rel_ci is None:
        return "protocol complete"
    width = summarize(m.samples_ms, p.statistic, p.trim).ci_rel_halfwidth  # the rounds' own: more rounds shrink it
    if width <= p.target_rel_ci:
        return f"precision reached (+-{width:.1%})"
    if rounds >= p.max_rounds:
        return "round cap"
    return f"time cap ({p.max_s:g} s)" if elapsed_s >= p.max_s else ""


def summarize_measurement(m: Measurement, p: Protocol) -> tuple[dict | None, dict | None, list[str]]:
    """(summary, device summary, flags) of a finished measurement."""
    width = None
    if m.samples_ms:
        own = summarize(m.samples_ms, p.statistic, p.trim)
        summary, width = widen_for_runs(own, p.between_runs_rel).to_dict(), own.ci_rel_halfwidth
    else:
        summary = m.aggregates[-1] if m.aggregates else None
        width = summary.get("ci_rel_halfwidth") if summary else None
    device_summary = (widen_for_runs(summarize(m.device_samples_ms, p.statistic, p.trim), p.between_runs_rel).to_dict()
                      if m.device_samples_ms else None)
    flags = []
    if m.contended:
        flags.append("contended")
    if m.rejected_rounds:
        flags.append(f"rounds-redone:{len(m.rejected_rounds)}")
    # Precision is the rounds' own interval: the run-to-run part is the same however long the cell runs.
    if p.target_rel_ci is not None and width is not None and width > p.target_rel_ci:
        flags.append("precision-not-reached")
    stability = round_stability(m.samples_ms)
    if not stability.stable:  # rounds that trend or split: no single number describes the cell
        flags.append(f"unstable:{stability.kind} {stability.evidence}")
    return summary, device_summary, flags + [f for f in m.round_flags if f not in flags]


class CellLoop:
    """The one loop, a round at a time: `measure` runs it to its end; an interleaved suite steps the loops of
    many cells in turn, so slow drift hits every model alike. `own_time`: the time cap counts only this cell's
    warm-up and rounds (interleaved), not the wall time since it started."""

    def __init__(self, source: Callable[[], float | None] | SelfTimedRunner, protocol: Protocol, *,
                 clock: Clock = time.perf_counter_ns, probe: ContentionProbe | None = None,
                 reload: Callable[[], None] | None = None, sleep: Callable[[float], None] = time.sleep,
                 on_round: Callable[[Measurement], None] | None = None, run_budget: WaitBudget | None = None,
                 on_wait: Callable[[float, float, float], None] | None = None, own_time: bool = False):
        self.p, self.clock, self.probe, self.reload, self.sleep = protocol, clock, probe, reload, sleep
        self.on_round, self.on_wait, self.own_time = on_round, on_wait, own_time
        self.rounds: Any = source if isinstance(source, SelfTimedRunner) else InferRounds(source, clock)
        self.self_timed = self.rounds is source
        self.budgets = (WaitBudget(protocol.contention_budget_s), *([run_budget] if run_budget else []))
        self.m = Measurement()
        self.t_start = clock()
        self.m.warmup_iters, self.m.warmup_s = self.rounds.warm_up(protocol)
        self.m.measured_s = self.m.warmup_s

    @property
    def done(self) -> bool:
        return bool(self.m.stop_reason)

    def _before(self) -> None:
        if self.p.reload_each_round and self.reload is not None and self.m.rounds:
            self.reload()

    def step(self) -> None:
        """One round (redone under foreign load, within the budgets), then the stopping rule."""
        p, m, clock = self.p, self.m, self.clock
        t_round = clock()
        outcome = measure_round(lambda: self.rounds.time_round(p), p, self.probe, self.sleep, self._before,
                                budgets=self.budgets, on_wait=self.on_wait)
        m.rejected_rounds += list(outcome.rejected)
        m.waited_s += outcome.waited_s
        if not outcome.quiet:
            m.contended = True
        m.add(outcome.round, outcome.contention)
        # The time cap counts measuring time: for a tool, its timed inferences, not its process starts.
        m.measured_s += (outcome.round.measured_s if self.self_timed and outcome.round.measured_s is not None
                         else (clock() - t_round) / 1e9 - outcome.waited_s)
        own = self.self_timed or self.own_time
        m.stop_reason = stopping_reason(m, p, m.measured_s if own else (clock() - self.t_start) / 1e9 - m.waited_s)
        if self.on_round:
            self.on_round(m)

    def finish(self) -> Measurement:
        self.m.wall_s = (self.clock() - self.t_start) / 1e9
        self.m.summary, self.m.device_summary, self.m.flags = summarize_measurement(self.m, self.p)
        return self.m


def measure(
    source: Callable[[], float | None] | SelfTimedRunner,
    protocol: Protocol,
    *,
    clock: Clock = time.perf_counter_ns,
    probe: ContentionProbe | None = None,
    reload: Callable[[], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    on_round: Callable[[Measurement], None] | None = None,
    run_budget: WaitBudget | None = None,
    on_wait: Callable[[float, float, float], None] | None = None,
) -> Measurement:
    """The steady state of `source` under `protocol`: an `infer` callable the loop times, or a runner that
    times its own rounds. Load time and first inference are the caller's (or the tool's, when it reports
    them)."""
    loop = CellLoop(source, protocol, clock=clock, probe=probe, reload=reload, sleep=sleep, on_round=on_round,
                    run_budget=run_budget, on_wait=on_wait)
    while not loop.done:
        loop.step()
    return loop.finish()


def timed_ms(fn: Callable[[], object], clock: Clock = time.perf_counter_ns) -> tuple[object, float]:
    t0 = clock()
    out = fn()
    return out, (clock() - t0) / 1e6
