"""The A/B schedule, its stopping rule and its rounds (bench/gate/interleave.py), with synthetic rounds."""
import math

import numpy as np
import pytest

from bench.measure import ContentionProbe

from bench.core.protocol import get_protocol
from bench.gate.interleave import BASE, HEAD, RoundMeasurer, abba_order, interleave, pair_order
from bench.gate.verdict import FAIL, PASS, UNSTABLE, ABPlan, decide_pairs

from gate_helpers import Scripted


def test_abba_order_from_either_start():
    assert abba_order(4, BASE) == [BASE, HEAD, HEAD, BASE, BASE, HEAD, HEAD, BASE]
    assert abba_order(4, HEAD) == [HEAD, BASE, BASE, HEAD, HEAD, BASE, BASE, HEAD]
    assert pair_order(3, HEAD) == (BASE, HEAD)


def test_interleave_follows_abba_and_stops_when_settled():
    m = Scripted()
    inter = interleave(m, HEAD, 6, 20, 4, settled=lambda lr: True)
    assert [v for v, _ in m.calls] == abba_order(6, HEAD) and inter.pairs == 6 and inter.looks == 1
    assert list(inter.order) == abba_order(6, HEAD)


def test_interleave_adds_pairs_until_the_cap_while_unsettled():
    m = Scripted()
    looked = []
    inter = interleave(m, BASE, 6, 15, 4, settled=lambda lr: looked.append(len(lr)) and False)
    assert looked == [6, 10, 14] and inter.pairs == 15 and inter.looks == 4  # the last look is at the cap


def test_abba_cancels_a_linear_drift():
    # The machine slows down by 0.5% per round; both variants are the same. Interleaved A B B A, the
    # drift cancels; A B A B would call the second variant slower every time.
    inter = interleave(Scripted(drift=0.005), BASE, 12, 12, 1, settled=lambda lr: True)
    est, v = decide_pairs(inter.log_ratios, 0.95, 0.05, "hodges-lehmann")
    assert est.ratio == pytest.approx(1.0, abs=0.001) and v == PASS
    naive = np.log([(1 + 0.005 * (2 * k + 1)) / (1 + 0.005 * 2 * k) for k in range(12)])
    assert np.all(naive > 0)


class FakeProbe(ContentionProbe):
    """Stands in for /proc/stat: a scripted share of our cores used by others, per round (the threshold rule
    is the real one)."""

    def __init__(self, busy):
        super().__init__()
        self.busy = list(busy)

    def start(self):
        pass

    def stop(self):
        return self.busy.pop(0)


def test_busy_rounds_are_redone():
    proto = get_protocol("quick", contention_threshold=0.25, contention_retries=2, round_min_iters=3, round_min_s=0.0)
    calls = []
    m = RoundMeasurer({BASE: lambda: calls.append("b"), HEAD: lambda: calls.append("h")}, proto,
                      FakeProbe([0.9, 0.1]), sleep=lambda s: None)
    r = m(BASE, 0)
    assert r.redone == 1 and r.contention == 0.1 and len(r.samples_ms) == 3
    assert calls == ["b"] * 8  # 1 untimed + 3 timed, twice
    r = RoundMeasurer({BASE: lambda: None}, proto, FakeProbe([0.9, 0.9, 0.9]), sleep=lambda s: None)(BASE, 0)
    assert r.redone == 2 and r.contention == 0.9  # kept after the last retry, and said so


def test_sequential_gate_false_alarms_and_power_on_synthetic_noise():
    """The whole procedure (looks, Bonferroni over cells x looks) on 4 cells with 3% per-pair noise:
    A/A jobs rarely FAIL, a 10% slowdown of one cell is caught."""
    rng = np.random.default_rng(5)
    plan, trials = ABPlan(12, 44, 8), 60
    level = plan.level(0.05, 4)
    false_jobs = caught = 0
    for t in range(trials):
        failed = []
        for cell in range(4):
            ratio = 1.10 if cell == 0 else 1.0
            m = Scripted(1.0 if t < trials // 2 else ratio, 0.03 / math.sqrt(2), seed=int(rng.integers(1 << 30)))
            inter = interleave(m, BASE, plan.min_pairs, plan.max_pairs, plan.step,
                               lambda lr: decide_pairs(lr, level, 0.05, plan.ci)[1] != UNSTABLE)
            failed.append(decide_pairs(inter.log_ratios, level, 0.05, plan.ci)[1] == FAIL)
        if t < trials // 2:
            false_jobs += any(failed)
        else:
            caught += failed[0]
            false_jobs += any(failed[1:])
    assert false_jobs <= 2 and caught >= 0.9 * trials // 2
