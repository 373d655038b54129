"""The parts of the Core ML runner (devices/coreml.py) that need neither a conversion nor a Mac: compute units,
availability, the compute-plan summary, the off-macOS message, parity arithmetic, import hygiene. The exporter's
settings and spec checks: tests/exporters/test_coreml_exporter.py."""
import sys

import numpy as np
import pytest

from bench.core.errors import UserError
from bench.core.runner import RunnerOptions
from devices.coreml import (COMPUTE_UNITS, CoreMLRunner, check, compute_units_name, logits_cosine,
                            not_on_macos_message, summarize_compute_plan)
from bench.core.artifact import ExportArtifact
from import_probe import imported_after


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


def test_the_hygiene_probe_sees_an_import():
    assert "xml" in imported_after(["devices.coreml", "xml.dom.minidom"])
