"""Minimum effects (bench/gate/effects.py): the file `bench calibrate` writes, or a plain table."""
import pytest

from bench.core.errors import UserError
from bench.gate.effects import Effects, load_effects


def test_effects_file(tmp_path):
    p = tmp_path / "effects.json"
    p.write_text('{"kind": "mobileone-bench/effects", "effects": {"mobileone_s0": 0.03}}')
    e = load_effects(str(p), 0.07)
    assert e.of("mobileone_s0") == 0.03 and e.of("mobileone_s1") == 0.07
    p.write_text('{"mobileone_s0": 0.04}')
    assert load_effects(str(p), None).of("mobileone_s0") == 0.04
    assert load_effects(None, None) == Effects()
    p.write_text('{"effects": {"mobileone_s0": 3}}')
    with pytest.raises(UserError, match="between 0 and 1"):
        load_effects(str(p), None)
    with pytest.raises(UserError, match="bench calibrate"):
        load_effects(str(tmp_path / "missing.json"), None)


def test_effects_calibrated_elsewhere_are_noted(tmp_path):
    p = tmp_path / "effects.json"
    p.write_text('{"kind": "mobileone-bench/effects", "cpu_model": "CPU A", "threads": 1, "effects": {"m": 0.03}}')
    e = load_effects(str(p), None)
    assert e.elsewhere_note("CPU A", 1) is None
    assert e.elsewhere_note("CPU B", 1) == "minimum effects calibrated on CPU A at 1 thread(s), used here on CPU B at 1"
    assert "at 1 thread(s), used here on CPU A at 4" in e.elsewhere_note("CPU A", 4)
    p.write_text('{"m": 0.03}')  # a plain table says nothing of where it was measured
    assert load_effects(str(p), None).elsewhere_note("CPU B", 4) is None
