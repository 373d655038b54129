"""The parts of the Core ML exporter (exporters/coreml.py) that need no conversion: settings, spec checks on the
facts a package reports, import hygiene, the deployment targets bench.toml allows. Real conversions:
test_coreml_conversion.py."""
import pytest

from bench.core.errors import UserError
from exporters.coreml import ExpectedPackage, check_facts, parse_settings
from import_probe import imported_after


# ---- exporter settings ----

def test_default_settings_are_ios16_fp16_tensor_io():
    s = parse_settings(())
    assert (s.minimum_deployment_target, s.io_precision, s.image_input, s.spec_version) == ("iOS16", "fp16", False, 7)


def test_settings_accept_strings_from_a_command_line():
    s = parse_settings((("minimum_deployment_target", "ios17"), ("io_precision", "FP32"), ("image_input", "true")))
    assert (s.minimum_deployment_target, s.io_precision, s.image_input, s.spec_version) == ("iOS17", "fp32", True, 8)
    assert parse_settings({"image_input": "no"}).image_input is False


@pytest.mark.parametrize("settings, words", [
    ({"minimum_deployment_target": "iOS14"}, ["iOS14", "iOS16", "iOS 15"]),
    ({"io_precision": "int8"}, ["int8", "fp16 or fp32"]),
    ({"image_input": "maybe"}, ["image_input", "true"]),
    ({"opset": 18}, ["unknown Core ML setting opset", "minimum_deployment_target"]),
    ({"minimum_deployment_target": "iOS15"}, ["fp16 inputs and outputs need iOS 16", "io_precision=fp32"]),
])
def test_bad_settings_name_the_problem_and_the_fix(settings, words):
    with pytest.raises(UserError) as e:
        parse_settings(settings)
    for w in words:
        assert w in str(e.value)


def test_ios15_works_with_fp32_io():
    assert parse_settings({"minimum_deployment_target": "iOS15", "io_precision": "fp32"}).spec_version == 6


# ---- spec checks (on facts as spec_facts reports them) ----

def _facts(in_dtype="FLOAT16", out_shape=(1, 1000), blobs=None, version=7, kind="multiArray"):
    inp = ({"name": "input", "kind": "multiArray", "shape": [1, 3, 224, 224], "dtype": in_dtype}
           if kind == "multiArray" else
           {"name": "input", "kind": "image", "width": 224, "height": 224, "color_space": "RGB"})
    return {"type": "mlProgram", "spec_version": version, "inputs": [inp],
            "outputs": [{"name": "logits", "kind": "multiArray", "shape": list(out_shape), "dtype": in_dtype}],
            "weight_blobs": {"FLOAT16": 54} if blobs is None else blobs}


EXPECTED = ExpectedPackage((1, 3, 224, 224), (1, 1000), "fp16", False, 7)


def test_a_right_package_has_no_problems():
    assert check_facts(_facts(), EXPECTED) == []
    image = ExpectedPackage((1, 3, 224, 224), (1, 1000), "fp16", True, 7)
    assert check_facts(_facts(kind="image"), image) == []


@pytest.mark.parametrize("facts, word", [
    (_facts(in_dtype="FLOAT32"), "input"),
    (_facts(out_shape=(1, 10)), "outputs"),
    (_facts(blobs={"FLOAT16": 3, "FLOAT32": 1}), "weights not in fp16"),
    (_facts(blobs={"FLOAT32": 50}), "no fp16 weights"),
    (_facts(version=6), "spec version 6"),
    ({**_facts(), "type": "neuralNetwork"}, "not mlProgram"),
    (_facts(kind="image"), "input"),
])
def test_every_deviation_is_reported(facts, word):
    problems = check_facts(facts, EXPECTED)
    assert problems and any(word in p for p in problems)


# ---- import hygiene and bench.toml ----

def test_importing_the_exporter_does_not_import_coremltools():
    assert "coremltools" not in imported_after(["exporters.coreml"])


def test_bench_toml_allows_exactly_the_exporters_deployment_targets():
    from bench.config import device_options_help
    from exporters.coreml import SPEC_VERSIONS
    assert set(device_options_help("coreml")["minimum_deployment_target"][1]) == set(SPEC_VERSIONS)
