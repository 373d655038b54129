"""`bench ab` refuses bad variants in one line, before measuring anything."""
from gate_helpers import assert_cli_error, cli

TINY = "mobileone_mu0"


def test_bad_variants_are_one_line_errors(tmp_path):
    assert_cli_error(cli("ab", "--base-config", "a.toml", "--head-artifacts", "x"), "one way")
    assert_cli_error(cli("ab", "--base", "HEAD"), "--models")
    assert_cli_error(cli("ab", "--base-artifacts", tmp_path, "--head-artifacts", tmp_path), "no onnx artifacts")
    assert_cli_error(cli("ab", "--base", "no-such-rev-xyz", "--models", TINY, "--threads", "1"),
                     "'no-such-rev-xyz' is not a commit", "fetch-depth")
    assert_cli_error(cli("ab", "--base-config", tmp_path / "missing.toml", "--head-config", tmp_path / "m.toml"),
                     "not found")


def test_bad_options_and_rounds(tmp_path):
    assert_cli_error(cli("ab", "--base", "HEAD", "--models", TINY, "--option", "cpu.turbo=1"),
                     "devices.cpu.turbo is not an option of cpu")
    assert_cli_error(cli("ab", "--base", "HEAD", "--models", TINY, "--option", "trt.precision=fp16"),
                     "is for device trt")
    assert_cli_error(cli("ab", "--base", "HEAD", "--models", TINY, "--device", "torch"), "use --device cpu")
    assert_cli_error(cli("ab", "--base", "HEAD", "--models", TINY, "--rounds", "0"), "--rounds '0'")
    assert_cli_error(cli("ab", "--base", "HEAD", "--models", TINY, "--rounds", "20", "--max-rounds", "10"),
                     "--max-rounds (10)")
    assert_cli_error(cli("ab", "--base", "HEAD", "--models", TINY, "--device", "trt"), "device trt cannot run here")
    assert_cli_error(cli("calibrate", "--pairs", "4"), "--pairs 4 is too few")
