"""The measurement engine on a synthetic clock: the stopping rule, presets, contention retries."""
import itertools
import time
from dataclasses import replace

import numpy as np
import pytest

from bench.core.errors import UserError
from bench.core.protocol import PRESETS, Protocol, get_protocol
from bench.measure import ContentionProbe, measure
from bench.stats import summarize


class FakeClock:
    """Time advances only inside infer(), by the next scripted duration (ms)."""

    def __init__(self, durations_ms):
        self.now = 0
        self.durations = iter(durations_ms)
        self.calls = 0

    def clock(self) -> int:
        return self.now

    def infer(self):
        self.calls += 1
        self.now += int(next(self.durations) * 1e6)


def fixed(ms):
    return itertools.repeat(ms)


def test_samples_are_exactly_the_timed_calls():
    fc = FakeClock(itertools.chain([50.0] * 3, itertools.cycle([10.0, 12.0])))
    p = Protocol("t", warmup_iters=3, warmup_s=0.0, min_rounds=2, max_rounds=2, round_min_iters=4,
                 round_max_iters=4, round_min_s=0, target_rel_ci=None)
    m = measure(fc.infer, p, clock=fc.clock)
    assert m.warmup_iters == 3
    assert m.samples_ms == [[10.0, 12.0, 10.0, 12.0], [10.0, 12.0, 10.0, 12.0]]
    assert m.stop_reason == "protocol complete"


def test_warmup_runs_until_both_iterations_and_seconds():
    fc = FakeClock(fixed(100.0))
    p = Protocol("t", warmup_iters=2, warmup_s=1.0, min_rounds=1, max_rounds=1, round_min_iters=1,
                 round_max_iters=1, target_rel_ci=None)
    m = measure(fc.infer, p, clock=fc.clock)
    assert m.warmup_iters == 10  # 2 iterations are not yet 1 s at 100 ms each


def test_round_length_by_time_and_cap():
    fc = FakeClock(fixed(30.0))
    p = Protocol("t", warmup_iters=0, warmup_s=0, min_rounds=1, max_rounds=1, round_min_iters=2,
                 round_min_s=0.25, round_max_s=10, target_rel_ci=None)
    m = measure(fc.infer, p, clock=fc.clock)
    assert len(m.samples_ms[0]) == 9  # first count whose elapsed time reaches 250 ms
    fc = FakeClock(fixed(400.0))
    p = replace(p, round_min_iters=10, round_max_s=1.0)
    m = measure(fc.infer, p, clock=fc.clock)
    assert len(m.samples_ms[0]) == 3  # the 1 s cap wins over 10 iterations for a slow model


def test_stopping_rule_stops_early_on_a_steady_clock():
    rng = np.random.default_rng(1)
    fc = FakeClock(10.0 + rng.normal(0, 0.05, 100000))
    p = Protocol("t", warmup_iters=0, warmup_s=0, min_rounds=3, max_rounds=30, round_min_iters=20,
                 round_min_s=0, target_rel_ci=0.02)
    m = measure(fc.infer, p, clock=fc.clock)
    assert len(m.samples_ms) == 3 and m.stop_reason.startswith("precision reached")


def test_stopping_rule_adds_rounds_until_the_cap_on_a_noisy_clock():
    rng = np.random.default_rng(2)
    # Each round sits at its own level (a shared machine): the CI over rounds stays wide.
    levels = itertools.chain.from_iterable([lvl] * 20 for lvl in rng.uniform(5, 20, 1000))
    fc = FakeClock(levels)
    p = Protocol("t", warmup_iters=0, warmup_s=0, min_rounds=3, max_rounds=8, round_min_iters=20,
                 round_max_iters=20, round_min_s=0, target_rel_ci=0.02)
    m = measure(fc.infer, p, clock=fc.clock)
    assert len(m.samples_ms) == 8 and m.stop_reason == "round cap"
    assert summarize(m.samples_ms).ci_rel_halfwidth > 0.02


def test_time_cap_ends_a_cell_that_cannot_reach_precision_but_not_before_min_rounds():
    levels = itertools.chain.from_iterable([lvl] * 10 for lvl in np.random.default_rng(3).uniform(5, 20, 1000))
    p = Protocol("t", warmup_iters=0, warmup_s=0.5, min_rounds=3, max_rounds=1000, round_min_iters=10,
                 round_max_iters=10, round_min_s=0, target_rel_ci=0.02, max_s=3.0)
    fc = FakeClock(levels)
    m = measure(fc.infer, p, clock=fc.clock)
    assert m.stop_reason == "time cap (3 s)"
    # No round starts once 3 s have passed, so it ends within one round (<= 200 ms here) of the cap.
    assert 3.0 <= fc.now / 1e9 <= 3.2
    # A slow, noisy model: min_rounds x 10 x ~400 ms = 12 s > max_s, still 3 rounds.
    fc = FakeClock(np.random.default_rng(5).uniform(300, 500, 1000))
    m = measure(fc.infer, p, clock=fc.clock)
    assert len(m.samples_ms) == 3 and m.stop_reason == "time cap (3 s)"


def test_default_preset_bounds_a_cell_in_time():
    p = PRESETS["default"]
    levels = itertools.chain.from_iterable([lvl] * 40 for lvl in np.random.default_rng(4).uniform(5, 9, 10000))
    fc = FakeClock(levels)
    m = measure(fc.infer, p, clock=fc.clock)
    assert m.stop_reason.startswith("time cap") and fc.now / 1e9 <= p.max_s + p.round_max_s


def test_modelbench_preset_is_the_apps_protocol():
    p = PRESETS["modelbench"]
    reloads = []
    fc = FakeClock(itertools.cycle(range(1, 52)))  # per round: 1 untimed warm-up, then 2..51
    m = measure(fc.infer, p, clock=fc.clock, reload=lambda: reloads.append(1))
    assert len(m.samples_ms) == 20 and all(len(r) == 50 for r in m.samples_ms)
    assert len(reloads) == 19  # before every round but the first
    s = summarize(m.samples_ms, p.statistic, p.trim)
    # Each round is 2..51 (the 1 went to warm-up); trimming 10 and 10 keeps 12..41, mean 26.5.
    assert s.latency_ms == pytest.approx(26.5)


def test_paper_preset_min_of_1000_and_gpu_median_of_100():
    p = get_protocol("paper", "mobile")
    fc = FakeClock(itertools.cycle([5.0, 3.0, 4.0]))
    m = measure(fc.infer, p, clock=fc.clock)
    assert sum(map(len, m.samples_ms)) == 1000 and m.warmup_iters == 1
    assert summarize(m.samples_ms, p.statistic).latency_ms == 3.0
    g = get_protocol("paper", "gpu")
    fc = FakeClock(itertools.cycle([5.0, 3.0, 4.0]))
    m = measure(fc.infer, g, clock=fc.clock)
    assert sum(map(len, m.samples_ms)) == 100 and summarize(m.samples_ms, g.statistic).latency_ms == 4.0


def test_mlperf_preset_needs_1024_queries_and_60_s():
    p = PRESETS["mlperf"]
    fc = FakeClock(fixed(100.0))  # 100 ms a query: 60 s is reached at 600 queries, 1024 still needed
    m = measure(fc.infer, replace(p, warmup_iters=0, warmup_s=0), clock=fc.clock)
    n = sum(map(len, m.samples_ms))
    assert n >= 1024 and fc.now / 1e9 >= 60
    fc = FakeClock(fixed(1.0))  # 1 ms a query: 1024 queries come long before 60 s
    m = measure(fc.infer, replace(p, warmup_iters=0, warmup_s=0), clock=fc.clock)
    assert sum(map(len, m.samples_ms)) * 1.0 / 1000 >= 60


def test_quick_preset_is_short():
    fc = FakeClock(fixed(5.0))
    m = measure(fc.infer, PRESETS["quick"], clock=fc.clock)
    assert len(m.samples_ms) == 3 and fc.now / 1e9 < 2


class ScriptedProbe(ContentionProbe):
    """Scripted shares of our CPUs used by others; the threshold rule is the real one."""

    def __init__(self, values, threads=None):
        super().__init__(threads=threads)
        self.values = iter(values)

    def start(self):
        pass

    def stop(self):
        return next(self.values)


def test_contended_round_is_redone_then_flagged():
    p = Protocol("t", warmup_iters=0, warmup_s=0, min_rounds=2, max_rounds=2, round_min_iters=2,
                 round_max_iters=2, target_rel_ci=None, contention_threshold=0.2, contention_retries=2,
                 contention_wait_s=0.5)
    waits = []
    fc = FakeClock(fixed(1.0))
    # round 1: busy, busy, quiet -> accepted after two redos; round 2: busy three times -> accepted, flagged
    m = measure(fc.infer, p, clock=fc.clock, probe=ScriptedProbe([0.9, 0.5, 0.1, 0.9, 0.9, 0.9]),
                sleep=waits.append)
    assert m.contention == [0.1, 0.9]
    assert len(m.rejected_rounds) == 4 and waits == [0.5, 1.0, 0.5, 1.0]  # each wait of a round doubles
    assert m.contended and m.waited_s == 3.0


def test_quiet_run_is_not_flagged():
    p = replace(PRESETS["quick"], contention_retries=1)
    fc = FakeClock(fixed(1.0))
    m = measure(fc.infer, p, clock=fc.clock, probe=ScriptedProbe(itertools.repeat(0.01)))
    assert not m.contended and not m.rejected_rounds


def _task_stat(tid: int, cpu: int, ticks: int) -> str:
    """A /proc/<pid>/task/<tid>/stat line: utime (field 14) = ticks, processor (field 39) = cpu; a comm
    with spaces and parentheses, as thread names can have."""
    after = ["S"] + ["0"] * 10 + [str(ticks), "0"] + ["0"] * 23 + [str(cpu)] + ["0"] * 13
    return f"{tid} (ort (pool) 1) " + " ".join(after) + "\n"


def _fake_proc(tmp_path, busy: tuple[int, int], own: dict[int, tuple[int, int]], steal=(0, 0)):
    stat = tmp_path / "stat"
    stat.write_text("cpu  0 0 0 0\n" + "".join(f"cpu{c} {b} 0 0 100 0 0 0 {steal[c]}\n" for c, b in enumerate(busy)))
    tasks = tmp_path / "task"
    for tid, (cpu, ticks) in own.items():
        (tasks / str(tid)).mkdir(parents=True, exist_ok=True)
        (tasks / str(tid) / "stat").write_text(_task_stat(tid, cpu, ticks))
    return str(stat), str(tasks)


def _probe_interval(tmp_path, before, after, threads, cpus=(0, 1), own_total_s=0.0, wall_s=1.0):
    """The probe's figure over a faked interval of `wall_s` between two /proc states."""
    stat, tasks = _fake_proc(tmp_path, *before)
    probe = ContentionProbe(stat, threads=threads, task_dir=tasks)
    probe.cpus, probe.tick = list(cpus), 100
    probe.start()
    cpu0, own0, total0, wall0 = probe._start
    probe._start = (cpu0, own0, time.process_time() - own_total_s, time.monotonic() - wall_s)
    _fake_proc(tmp_path, *after)
    return probe.stop(), probe


def test_contention_probe_reads_proc_stat(tmp_path):
    # 1 s: 100 busy ticks on each CPU = 2 CPU-seconds, none of them ours
    share, probe = _probe_interval(tmp_path, ((100, 100), {}), ((200, 200), {}), threads=2)
    assert share == pytest.approx(1.0, abs=0.05)
    assert probe.last["pooled"] == pytest.approx(1.0, abs=0.05)


def test_load_on_one_cpu_is_judged_per_cpu(tmp_path):
    # 1 s, 2 threads on 2 CPUs: our threads busy 0.9 s on each; CPU 0 also ran an intruder 0.1 s
    # (busy 1.0 s), CPU 1 only ours. Pooled that is 5% (0.1 of 2 CPU-seconds), under the 5% floor's edge;
    # per CPU it is 10% on CPU 0, and a parallel operator waits for the thread on CPU 0.
    before = ((0, 0), {11: (0, 0), 12: (1, 0)})
    after = ((100, 90), {11: (0, 90), 12: (1, 90)})
    share, probe = _probe_interval(tmp_path, before, after, threads=2, own_total_s=1.8)
    assert probe.last["pooled"] == pytest.approx(0.05, abs=0.01)
    assert share == pytest.approx(0.10, abs=0.01)
    # The same interval judged for a 1-thread round: the scheduler can keep it on the quiet CPU.
    share1, _ = _probe_interval(tmp_path, before, after, threads=1, own_total_s=1.8)
    assert share1 == pytest.approx(0.0, abs=0.01)


def test_per_cpu_figures_are_bounded_by_the_pooled_foreign_time():
    from bench.measure import foreign_by_cpu, load_on_needed_cpus

    # A thread that moved: its 0.9 s are credited to CPU 1 though it ran on CPU 0. Raw, CPU 0 would look
    # 90% foreign; scaled to the exact pooled foreign time (0.1 s) it cannot exceed 10%.
    shares = foreign_by_cpu({0: 1.0, 1: 0.9}, {1: 1.8}, own_total_s=1.8, wall_s=1.0)
    assert shares[0] == pytest.approx(0.1) and shares[1] == 0.0
    # Nothing foreign at all: all zero, whatever the attribution.
    assert foreign_by_cpu({0: 0.5, 1: 0.5}, {0: 1.0}, own_total_s=1.0, wall_s=1.0) == {0: 0.0, 1: 0.0}
    # The load a round meets: the highest among the `threads` least-loaded CPUs.
    loads = {0: 0.6, 1: 0.0, 2: 0.2, 3: 0.05}
    assert load_on_needed_cpus(loads, 1) == 0.0
    assert load_on_needed_cpus(loads, 2) == 0.05
    assert load_on_needed_cpus(loads, 4) == 0.6
    assert load_on_needed_cpus(loads, 16) == 0.6  # oversubscribed: every CPU is needed
    assert load_on_needed_cpus(loads, None) == 0.6  # unknown threads: the strictest


def test_steal_time_counts_as_foreign_load(tmp_path):
    # The hypervisor ran someone else on CPU 1 for 0.3 s (steal), which /proc/stat counts as busy.
    share, probe = _probe_interval(tmp_path, ((0, 0), {}, (0, 0)), ((0, 0), {}, (0, 30)), threads=2)
    assert share == pytest.approx(0.3, abs=0.02)
    assert probe.last["steal"][1] == pytest.approx(0.3, abs=0.01)


def test_unknown_protocol_and_bad_override():
    with pytest.raises(UserError, match="known protocols: default, quick, paper, modelbench, mlperf"):
        get_protocol("fastest")
    with pytest.raises(UserError, match="min_rounds"):
        get_protocol("default", min_rounds=10, max_rounds=2)
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(UserError, match="max_s must be a positive number of seconds"):
            get_protocol("default", max_s=bad)
    assert get_protocol("default", max_s=float("inf")).max_s == float("inf")


def test_the_threshold_follows_the_threads_and_cpus():
    from bench.measure import CONTENTION_FLOOR, contention_threshold

    assert contention_threshold(2, 2) == pytest.approx(CONTENTION_FLOOR)  # every CPU busy with our threads
    assert contention_threshold(1, 2) == pytest.approx(0.30)
    assert contention_threshold(1, 8) == pytest.approx(0.4875)
    assert contention_threshold(16, 8) == pytest.approx(CONTENTION_FLOOR)  # oversubscribed: no slack either
    assert contention_threshold(None, 4) == pytest.approx(CONTENTION_FLOOR)  # unknown threads: the strictest
    assert contention_threshold(1, 8) > contention_threshold(2, 4) > contention_threshold(4, 4)


def test_a_two_thread_round_on_two_cpus_is_redone_at_a_load_a_one_thread_round_tolerates():
    p = Protocol("t", warmup_iters=0, warmup_s=0, min_rounds=1, max_rounds=1, round_min_iters=2,
                 round_max_iters=2, target_rel_ci=None, contention_retries=1, contention_wait_s=0.0)
    for threads, redone in ((2, 1), (1, 0)):
        probe = ScriptedProbe([0.15, 0.0], threads=threads)
        probe.cpus = [0, 1]
        m = measure(FakeClock(fixed(1.0)).infer, p, clock=FakeClock(fixed(1.0)).clock, probe=probe, sleep=lambda s: None)
        assert len(m.rejected_rounds) == redone
    explicit = replace(p, contention_threshold=0.2)
    probe = ScriptedProbe([0.15], threads=2)
    probe.cpus = [0, 1]
    m = measure(FakeClock(fixed(1.0)).infer, explicit, clock=FakeClock(fixed(1.0)).clock, probe=probe)
    assert not m.rejected_rounds  # an explicit threshold overrides the rule


def test_waiting_for_quiet_stops_when_a_budget_is_spent():
    from bench.measure import WaitBudget

    p = Protocol("t", warmup_iters=0, warmup_s=0, min_rounds=3, max_rounds=3, round_min_iters=2,
                 round_max_iters=2, target_rel_ci=None, contention_threshold=0.2, contention_retries=5,
                 contention_wait_s=1.0, contention_budget_s=5.0)
    waits, told = [], []
    fc = FakeClock(fixed(1.0))
    # always busy: 1 + 2 waits (3 s) in round one, then 2 s left: one wait of 2 s, then the cell's budget is spent
    m = measure(fc.infer, p, clock=fc.clock, probe=ScriptedProbe(itertools.repeat(0.9)), sleep=waits.append,
                on_wait=lambda load, threshold, s: told.append((load, threshold, s)))
    assert waits == [1.0, 2.0, 2.0] and m.waited_s == 5.0 and m.contended
    assert told[0] == (0.9, 0.2, 1.0)
    run = WaitBudget(1.5)  # the run's budget, shared with other cells, is smaller still
    waits.clear()
    m = measure(fc.infer, p, clock=fc.clock, probe=ScriptedProbe(itertools.repeat(0.9)), sleep=waits.append,
                run_budget=run)
    assert waits == [1.0, 0.5] and run.left == 0.0 and m.contended


def test_precision_is_judged_on_the_rounds_own_interval_not_the_widened_one():
    # Rounds that agree to within 0.1%: the rounds' interval reaches a 2% target at once, even though the
    # reported interval, widened by a 3% run-to-run spread, is near +-6%.
    p = Protocol("t", warmup_iters=0, warmup_s=0, min_rounds=3, max_rounds=10, round_min_iters=5,
                 round_max_iters=5, target_rel_ci=0.02, between_runs_rel=0.03)
    fc = FakeClock(itertools.cycle([1.0, 1.001, 0.999]))
    m = measure(fc.infer, p, clock=fc.clock)
    assert m.stop_reason.startswith("precision reached") and len(m.samples_ms) == 3
    assert "precision-not-reached" not in m.flags
    s = m.summary
    assert (s["ci_high_ms"] - s["ci_low_ms"]) / 2 / s["latency_ms"] > 0.05
    assert s["within_high_ms"] - s["within_low_ms"] < 0.01


def test_between_runs_rel_is_checked():
    for bad in (-0.1, 1.0, float("nan")):
        with pytest.raises(UserError, match="between_runs_rel"):
            get_protocol("default", between_runs_rel=bad)
