"""The A/B schedule and its stopping rule, and run_ab's orchestration, with synthetic rounds."""
import math
import random
import zlib

import numpy as np
import pytest

from bench.ab import BASE, HEAD, RoundMeasurer, RoundResult, Variant, abba_order, interleave, pair_order
from bench.compare import ERROR, FAIL, PASS, SKIP, UNSTABLE, ABPlan, Effects, decide_pairs, run_ab
from bench.core.protocol import get_protocol


def test_abba_order_from_either_start():
    assert abba_order(4, BASE) == [BASE, HEAD, HEAD, BASE, BASE, HEAD, HEAD, BASE]
    assert abba_order(4, HEAD) == [HEAD, BASE, BASE, HEAD, HEAD, BASE, BASE, HEAD]
    assert pair_order(3, HEAD) == (BASE, HEAD)


class Scripted:
    """A synthetic machine: round medians from level(variant) x drift(time) x noise."""

    def __init__(self, ratio=1.0, sd=0.0, drift=0.0, seed=0):
        self.ratio, self.sd, self.drift = ratio, sd, drift
        self.rng = np.random.default_rng(seed)
        self.calls = []

    def __call__(self, variant, pair):
        t = len(self.calls)
        self.calls.append((variant, pair))
        level = 10.0 * (self.ratio if variant == HEAD else 1.0) * (1 + self.drift * t)
        return RoundResult((level * math.exp(self.rng.normal(0, self.sd)) if self.sd else level,))


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


class FakeProbe:
    """Stands in for /proc/stat: a scripted share of our cores used by others, per round."""

    def __init__(self, busy):
        self.busy = list(busy)

    def start(self):
        pass

    def stop(self):
        return self.busy.pop(0)


def test_busy_rounds_are_redone():
    proto = get_protocol("quick", contention_retries=2, round_min_iters=3, round_min_s=0.0)
    calls = []
    m = RoundMeasurer({BASE: lambda: calls.append("b"), HEAD: lambda: calls.append("h")}, proto,
                      FakeProbe([0.9, 0.1]), sleep=lambda s: None)
    r = m(BASE, 0)
    assert r.redone == 1 and r.contention == 0.1 and len(r.samples_ms) == 3
    assert calls == ["b"] * 8  # 1 untimed + 3 timed, twice
    r = RoundMeasurer({BASE: lambda: None}, proto, FakeProbe([0.9, 0.9, 0.9]), sleep=lambda s: None)(BASE, 0)
    assert r.redone == 2 and r.contention == 0.9  # kept after the last retry, and said so


def variant(label, models, errors=None, threads=1):
    return Variant(label, f"synthetic {label}", "cpu", threads, {}, {m: f"{label}:{m}" for m in models},
                   {m: "deploy" for m in models}, errors or {})


def synthetic_cell(ratios, sd=0.01):
    """A measure_cell for run_ab that interleaves a Scripted machine per model."""
    def measure(model, base, head, protocol, plan, level, min_effect, first):
        if ratios[model] is None:
            raise RuntimeError("session creation failed")
        m = Scripted(ratios[model], sd, seed=zlib.crc32(model.encode()) % 1000)
        inter = interleave(m, first, plan.min_pairs, plan.max_pairs, plan.step,
                           lambda lr: decide_pairs(lr, level, min_effect, plan.ci)[1] != UNSTABLE)
        est, v = decide_pairs(inter.log_ratios, level, min_effect, plan.ci)
        return inter, est, v
    return measure


def test_run_ab_verdicts_levels_and_errors():
    ratios = {"mobileone_s0": 1.0, "mobileone_s1": 1.3, "mobileone_s2": None}
    base = variant("base", ["mobileone_s0", "mobileone_s1", "mobileone_s2", "mobilenetv2_100"])
    head = variant("head", ["mobileone_s0", "mobileone_s1", "mobileone_s2"],
                   errors={"mobilenetv2_100": "ExportError: parity"})
    r = run_ab(base, head, get_protocol("quick"), ABPlan(12, 44, 8), Effects(0.05), 0.05, seed=1,
               measure_cell=synthetic_cell(ratios))
    by = {c.model: c for c in r.cells}
    assert by["mobileone_s0"].verdict == PASS and by["mobileone_s1"].verdict == FAIL
    assert by["mobileone_s1"].ratio == pytest.approx(1.3, rel=0.01)
    assert by["mobileone_s2"].verdict == ERROR and "session creation failed" in by["mobileone_s2"].note
    assert by["mobilenetv2_100"].verdict == ERROR and "parity" in by["mobilenetv2_100"].note
    assert by["mobileone_s0"].level == pytest.approx(1 - 0.05 / (3 * 5))  # 3 cells x 5 looks
    assert len(by["mobileone_s0"].log_ratios) == by["mobileone_s0"].rounds == 12
    assert r.exit_code == 1 and r.seed == 1 and "seed 1" in " ".join(r.notes)


def test_run_ab_random_start_is_seeded():
    firsts = []

    def spy(model, base, head, protocol, plan, level, min_effect, first):
        firsts.append(first)
        return synthetic_cell({model: 1.0})(model, base, head, protocol, plan, level, min_effect, first)

    models = [f"mobileone_s{i}" for i in range(5)]
    for seed in (1, 1, 2):
        run_ab(variant("base", models), variant("head", models), get_protocol("quick"), ABPlan(6, 6, 1),
               Effects(), seed=seed, measure_cell=spy)
    assert firsts[:5] == firsts[5:10]  # the same seed, the same starts
    assert set(firsts) == {BASE, HEAD}
    rng = random.Random(1)
    assert firsts[:5] == [rng.choice((BASE, HEAD)) for _ in range(5)]


def test_run_ab_base_without_a_model_is_skipped_with_a_note():
    base = variant("base", ["mobileone_s0"], errors={"mobileone_s1": "no model matches 'mobileone_s1'"})
    head = variant("head", ["mobileone_s0", "mobileone_s1"])
    r = run_ab(base, head, get_protocol("quick"), ABPlan(6, 6, 1), Effects(), seed=0,
               measure_cell=synthetic_cell({"mobileone_s0": 1.0}))
    assert [c.model for c in r.cells] == ["mobileone_s0"] and r.exit_code == 0
    assert any("mobileone_s1: base has no artifact" in n for n in r.notes)
    assert SKIP not in {c.verdict for c in r.cells}


def test_noisy_a_a_is_unstable_not_pass():
    r = run_ab(variant("base", ["mobileone_s0"]), variant("head", ["mobileone_s0"]), get_protocol("quick"),
               ABPlan(12, 20, 8), Effects(0.05), seed=0, measure_cell=synthetic_cell({"mobileone_s0": 1.0}, sd=0.2))
    c = r.cells[0]
    assert c.verdict == UNSTABLE and c.rounds == 20 and r.exit_code == 3 and "wide" in c.note


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


def test_calibrate_on_synthetic_noise(tmp_path):
    import json

    from bench.compare import calibrate, load_effects

    v = variant("base", ["mobileone_s0", "mobileone_s1"])
    noisy = {"mobileone_s0": 0.002, "mobileone_s1": 0.05}

    def measure(model, base, head, protocol, plan, level, min_effect, first):
        assert base is head and plan.min_pairs == plan.max_pairs == 20  # A/A, no early stop
        return synthetic_cell({model: 1.0}, sd=noisy[model])(model, base, head, protocol, plan, level, min_effect,
                                                               first)

    data = calibrate(v, get_protocol("quick"), 20, 2, seed=0, measure_cell=measure)
    assert data["kind"] == "mobileone-bench/effects" and data["level"] == pytest.approx(1 - 0.05 / (2 * 5))
    quiet, loud = data["models"]["mobileone_s0"], data["models"]["mobileone_s1"]
    assert len(quiet["log_ratios"]) == 2 and len(quiet["log_ratios"][0]) == 20
    assert quiet["suggested_effect"] == 0.02  # the floor
    assert loud["suggested_effect"] > 0.05 and loud["log_ratio_sd_pooled"] > 10 * quiet["log_ratio_sd_pooled"]
    path = tmp_path / "effects.json"
    path.write_text(json.dumps(data))
    assert load_effects(str(path), None).of("mobileone_s1") == loud["suggested_effect"]
