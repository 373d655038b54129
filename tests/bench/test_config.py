"""bench.toml parsing and validation: every bad value is one line naming the key and what is allowed."""
import pytest

from bench.config import SuiteConfig, load_config, parse_toml, with_cli
from bench.core.errors import UserError
from bench.reference import REPO_ROOT


def test_repository_bench_toml_is_valid():
    cfg = load_config(str(REPO_ROOT / "bench.toml"))
    assert cfg.devices == ("cpu",) and cfg.models == "all" and cfg.threads is None
    assert cfg.options_for("trt")["via"] == "runtime"


def test_round_trip_through_dict():
    cfg = parse_toml('[suite]\nmodels = "mobileone_s0"\nthreads = 2\n[protocol]\nmax_rounds = 7\n'
                     '[devices.coreml]\ncompute_units = "CPU_ONLY"\n', "t.toml")
    assert SuiteConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize("text, message", [
    ('[suite]\nmodel = "x"\n', "suite.model is not a setting; allowed:"),
    ('[suite]\nthreads = 0\n', "threads = 0 must be a whole number >= 1"),
    ('[suite]\nthreads = "many"\n', "threads = 'many' must be a whole number"),
    ('[suite]\nprotocol = "fast"\n', "protocol = 'fast' is unknown; known protocols:"),
    ('[suite]\ndevices = ["gpu"]\n', "unknown device 'gpu'; known devices: cpu, torch"),
    ('[suite]\nmodels = "resnet50"\n', "no model matches 'resnet50'; known models:"),
    ('[suite]\nform = "fused"\n', "form = 'fused' is not allowed; use one of deploy, train, both"),
    ('[protocol]\nrounds = 3\n', "protocol.rounds is not a protocol setting; allowed:"),
    ('[protocol]\ntarget_rel_ci = "tight"\n', "protocol.target_rel_ci = 'tight' is not a float"),
    ('[devices.coreml]\ncompute_units = "NPU"\n', "devices.coreml.compute_units = 'NPU' is not allowed; use one of ALL"),
    ('[devices.cpu]\nturbo = true\n', "devices.cpu.turbo is not an option of cpu; allowed: disable_optimizations"),
    ('[extras]\nx = 1\n', "unknown section(s) extras"),
    ('[suite\n', "is not valid TOML"),
])
def test_bad_config(text, message):
    with pytest.raises(UserError) as err:
        parse_toml(text, "bench.toml")
    assert message in str(err.value) and "\n" not in str(err.value)


def test_cli_overrides_file():
    cfg = parse_toml('[suite]\nmodels = "mobileone_s0"\nthreads = 2\n', "t.toml")
    new = with_cli(cfg, models="repvgg_a0", devices=["cpu,torch"], threads=None, protocol="quick")
    assert (new.models, new.devices, new.threads, new.protocol) == ("repvgg_a0", ("cpu", "torch"), 2, "quick")
    with pytest.raises(UserError, match="unknown device"):
        with_cli(cfg, devices=["cpu,phone"])


def test_missing_config_file():
    with pytest.raises(UserError, match="config file nope.toml not found"):
        load_config("nope.toml")
