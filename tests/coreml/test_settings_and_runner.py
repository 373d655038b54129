"""The parts of the Core ML target that need neither a conversion nor a Mac: settings, spec checks, compute
units, availability, the compute-plan summary, the off-macOS message, parity arithmetic, import hygiene."""
import sys

import numpy as np
import pytest

from bench.core.errors import UserError
from bench.core.runner import RunnerOptions
from devices.coreml import (COMPUTE_UNITS, CoreMLRunner, check, compute_units_name, logits_cosine,
                            not_on_macos_message, summarize_compute_plan)
from bench.core.artifact import ExportArtifact
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


# ---- runner arguments (no macOS needed) ----

@pytest.mark.parametrize("given, name", [
    (None, "ALL"), ("", "ALL"), ("all", "ALL"), ("CPU_AND_NE", "CPU_AND_NE"), ("cpuAndNeuralEngine", "CPU_AND_NE"),
    ("cpu_only", "CPU_ONLY"), ("cpuOnly", "CPU_ONLY"), ("CPU_AND_GPU", "CPU_AND_GPU"), ("cpu-and-gpu", "CPU_AND_GPU"),
])
def test_compute_units_map_to_coremltools_names(given, name):
    assert compute_units_name(given) == name
    assert name in COMPUTE_UNITS


def test_a_bad_compute_unit_lists_the_allowed_ones():
    with pytest.raises(UserError) as e:
        CoreMLRunner(RunnerOptions(threads=1, extra={"compute_units": "NPU"}))
    assert "'NPU'" in str(e.value)
    for name in COMPUTE_UNITS:
        assert name in str(e.value)


def test_runner_takes_its_compute_units_from_the_options():
    assert CoreMLRunner(RunnerOptions(threads=1)).compute_units == "ALL"
    assert CoreMLRunner(RunnerOptions(threads=1, extra={"compute_units": "cpu_and_ne"})).compute_units == "CPU_AND_NE"


def _artifact(target="coreml", path="/nonexistent/model.mlpackage"):
    return ExportArtifact(model="mobileone_s0", target=target, precision="fp16", path=path, input_name="input",
                          input_shape=(1, 3, 224, 224), input_dtype="float16", output_name="logits", sha256="",
                          cache_key="")


def test_runner_refuses_a_non_coreml_artifact_or_a_missing_package():
    runner = CoreMLRunner(RunnerOptions(threads=1))
    with pytest.raises(UserError, match="needs a Core ML artifact"):
        runner.load(_artifact(target="onnx"))
    with pytest.raises(UserError, match="re-export"):
        runner.load(_artifact())


def test_close_without_load_is_harmless():
    with CoreMLRunner(RunnerOptions(threads=1)) as runner:
        runner.reload()  # nothing loaded: nothing to do
    runner.close()


# ---- availability ----

def test_off_macos_the_runner_is_unavailable_with_the_reason():
    for system in ("linux", "win32"):
        avail = check(system=system)
        assert (avail.status, avail.reason) == ("unavailable", "Core ML runs need macOS")


def test_on_macos_the_version_and_the_bindings_are_checked():
    assert check(system="darwin", mac_version="14.5", native=True).can_run
    old = check(system="darwin", mac_version="12.6", native=True)
    assert not old.can_run and "macOS 13.0 or later" in old.reason and "12.6" in old.reason
    nolib = check(system="darwin", mac_version="14.5", native=False)
    assert not nolib.can_run and "libcoremlpython" in nolib.reason and "pip install" in nolib.reason


@pytest.mark.skipif(sys.platform == "darwin", reason="checks the Linux behaviour")
def test_registry_reports_export_only_where_coremltools_converts_but_cannot_run(coremltools_installed):
    from devices.registry import availability

    avail = availability("coreml")
    assert (avail.status, avail.reason) == ("export-only", "Core ML runs need macOS")


def test_the_off_macos_message_names_the_export_folder(tmp_path):
    assert not_on_macos_message(tmp_path) == f"Core ML runs need macOS; exported packages are in {tmp_path}"


# ---- compute plan and parity arithmetic ----

def test_compute_plan_summary_counts_ops_and_flags_fallback():
    ops = [("conv", "neural_engine", ("cpu", "gpu", "neural_engine"), 0.6),
           ("relu", "neural_engine", ("cpu", "gpu", "neural_engine"), 0.1),
           ("reshape", "cpu", ("cpu",), 0.05),
           ("linear", "gpu", ("cpu", "gpu", "neural_engine"), 0.25)]
    s = summarize_compute_plan(ops, "ALL")
    assert s["ops"] == 4 and s["neural_engine_ops"] == 2
    assert s["by_device"] == {"neural_engine": 2, "cpu": 1, "gpu": 1}
    assert s["fallback"] is True
    assert s["fallback_ops"] == {"reshape@cpu (no NE support)": 1, "linear@gpu": 1}
    assert s["fallback_cost_share"] == pytest.approx(0.3)


def test_no_fallback_is_flagged_when_everything_is_on_the_neural_engine_or_it_is_not_allowed():
    on_ne = [("conv", "neural_engine", ("neural_engine",), 1.0)]
    assert summarize_compute_plan(on_ne, "CPU_AND_NE")["fallback"] is False
    cpu = [("conv", "cpu", ("cpu", "neural_engine"), 1.0)]
    assert summarize_compute_plan(cpu, "CPU_ONLY")["fallback"] is False
    assert summarize_compute_plan(cpu, "ALL")["fallback"] is True


def test_logits_cosine():
    a = np.arange(1, 11, dtype=np.float32)
    assert logits_cosine(a, a * 3) == pytest.approx(1.0)
    assert logits_cosine(a, -a) == pytest.approx(-1.0)
    noisy = a + np.float32(0.2) * np.sin(a)
    assert 0.99 < logits_cosine(a, noisy) < 1.0
    with pytest.raises(ValueError):
        logits_cosine(a, a[:5])


# ---- import hygiene: listing devices or importing phone numbers costs no coremltools or torch ----



def test_importing_the_runner_and_the_importers_imports_neither_coremltools_nor_torch():
    loaded = imported_after(["devices.coreml", "bench.importers", "bench.commands.importing"])
    assert not loaded & {"coremltools", "torch"}


def test_importing_the_exporter_does_not_import_coremltools():
    assert "coremltools" not in imported_after(["exporters.coreml"])


def test_the_hygiene_probe_sees_an_import():
    assert "xml" in imported_after(["devices.coreml", "xml.dom.minidom"])


def test_bench_toml_allows_exactly_the_exporters_deployment_targets():
    from bench.config import device_options_help
    from exporters.coreml import SPEC_VERSIONS
    assert set(device_options_help("coreml")["minimum_deployment_target"][1]) == set(SPEC_VERSIONS)
