"""`bench calibrate`'s A/A (bench/gate/calibrate.py) on synthetic noise."""
import json

import pytest

from bench.core.protocol import get_protocol
from bench.gate.calibrate import calibrate
from bench.gate.effects import load_effects

from gate_helpers import synthetic_cell, variant


def test_calibrate_on_synthetic_noise(tmp_path):
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
