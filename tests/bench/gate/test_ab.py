"""The A/B job (bench/gate/ab.py): verdicts, levels, errors and the seeded random start, on synthetic cells."""
import json
import random

import pytest

from bench.core.errors import UserError
from bench.core.protocol import get_protocol
from bench.gate.ab import measure_variants, run_ab
from bench.gate.effects import Effects
from bench.gate.interleave import BASE, HEAD
from bench.gate.variants import VariantChoice
from bench.gate.verdict import ERROR, FAIL, PASS, SKIP, UNSTABLE, ABPlan

from gate_helpers import synthetic_cell, variant, write_artifact


def test_run_ab_verdicts_levels_and_errors():
    ratios = {"mobileone_s0": 1.0, "mobileone_s1": 1.3, "mobileone_s2": None}
    base = variant("base", ["mobileone_s0", "mobileone_s1", "mobileone_s2", "mobilenetv2_100"])
    head = variant("head", ["mobileone_s0", "mobileone_s1", "mobileone_s2"],
                   errors={"mobilenetv2_100": "ExportError: parity"})
    r = measure_variants(base, head, get_protocol("quick"), ABPlan(12, 44, 8), Effects(0.05), 0.05, seed=1,
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
        measure_variants(variant("base", models), variant("head", models), get_protocol("quick"), ABPlan(6, 6, 1),
               Effects(), seed=seed, measure_cell=spy)
    assert firsts[:5] == firsts[5:10]  # the same seed, the same starts
    assert set(firsts) == {BASE, HEAD}
    rng = random.Random(1)
    assert firsts[:5] == [rng.choice((BASE, HEAD)) for _ in range(5)]


def test_run_ab_base_without_a_model_is_skipped_with_a_note():
    base = variant("base", ["mobileone_s0"], errors={"mobileone_s1": "no model matches 'mobileone_s1'"})
    head = variant("head", ["mobileone_s0", "mobileone_s1"])
    r = measure_variants(base, head, get_protocol("quick"), ABPlan(6, 6, 1), Effects(), seed=0,
               measure_cell=synthetic_cell({"mobileone_s0": 1.0}))
    assert [c.model for c in r.cells] == ["mobileone_s0"] and r.exit_code == 0
    assert any("mobileone_s1: base has no artifact" in n for n in r.notes)
    assert SKIP not in {c.verdict for c in r.cells}


def test_noisy_a_a_is_unstable_not_pass():
    r = measure_variants(variant("base", ["mobileone_s0"]), variant("head", ["mobileone_s0"]), get_protocol("quick"),
               ABPlan(12, 20, 8), Effects(0.05), seed=0, measure_cell=synthetic_cell({"mobileone_s0": 1.0}, sd=0.2))
    c = r.cells[0]
    assert c.verdict == UNSTABLE and c.rounds == 20 and r.exit_code == 3 and "wide" in c.note


def test_run_ab_from_artifact_folders_with_calibrated_effects(tmp_path):
    """`bench ab`'s one function: the variants it names, the effects file, the cells, and a note when the
    effects were calibrated elsewhere."""
    for side in ("base", "head"):
        for model in ("mobileone_s0", "mobileone_s1"):
            write_artifact(tmp_path / side, model)
    effects = tmp_path / "effects.json"
    effects.write_text(json.dumps({"kind": "mobileone-bench/effects", "cpu_model": "Other CPU", "threads": 8,
                                   "effects": {"mobileone_s1": 0.5}}))
    choice = VariantChoice(base_artifacts=str(tmp_path / "base"), head_artifacts=str(tmp_path / "head"))
    r = run_ab(choice, threads=1, options={"cpu": {"disable_optimizations": True}}, protocol="quick",
               plan=ABPlan(12, 12, 1), effects=str(effects), seed=2,
               measure_cell=synthetic_cell({"mobileone_s0": 1.0, "mobileone_s1": 1.3}))
    by = {c.model: c for c in r.cells}
    assert by["mobileone_s0"].verdict == PASS and by["mobileone_s1"].verdict == PASS  # 30% < its 50% effect
    assert by["mobileone_s1"].min_effect == 0.5 and by["mobileone_s0"].min_effect == 0.05
    assert r.base == f"artifacts {tmp_path / 'base'}" and r.exit_code == 0 and r.seed == 2
    assert any("calibrated on Other CPU at 8 thread(s)" in n for n in r.notes)
    with pytest.raises(UserError, match="is for device trt"):
        run_ab(choice, threads=1, options={"trt": {"precision": "fp16"}})


def test_no_model_on_both_sides_names_the_errors():
    base = variant("base", [], errors={"mobileone_s0": "ExportError: parity"})
    head = variant("head", [], errors={"mobileone_s0": "ModuleNotFoundError: no module named x"})
    with pytest.raises(UserError, match=r"prepared on both sides \(base mobileone_s0: ExportError: parity; head "):
        measure_variants(base, head, get_protocol("quick"), ABPlan(6, 6, 1), Effects(), seed=0)
