"""The OpenVINO CPU runner (devices/openvino.py) on the real ONNX export: a suite through the CLI records the
threads and the properties in effect, its output agrees with ONNX Runtime's on the same file, and without the
package the device says what is missing."""
import json
import sys

import numpy as np
import pytest

from bench.cli import main
from bench.core.artifact import ExportRequest
from bench.core.runner import RunnerOptions
from devices import registry
from exporters.onnx import export

TINY = "mobileone_mu0"  # the smallest real model of the zoo: exports in seconds

pytest.importorskip("openvino")


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def test_a_suite_runs_and_records_the_threads_and_properties(tmp_path, capsys):
    rc = main(["run", "--device", "openvino", "--models", TINY, "--protocol", "quick", "--threads", "1",
               "--out", str(tmp_path / "runs"), "--cache-dir", str(tmp_path / "cache")])
    assert rc == 0, capsys.readouterr().err
    (cell,) = json.loads(next((tmp_path / "runs").glob("*.json")).read_text())["cells"]
    assert cell["status"] == "ok", cell["error"]
    assert cell["device"] == "openvino" and cell["runner"] == "openvino" and cell["precision"] == "fp32"
    assert cell["artifact"]["target"] == "onnx"
    assert cell["summary"]["median_ms"] > 0
    info = cell["runner_info"]
    assert info["runtime"] == "openvino" and info["threads"] == 1
    # read back from the compiled model, not echoed from our config
    props = info["properties"]
    assert props["INFERENCE_NUM_THREADS"] == 1
    assert props["INFERENCE_PRECISION_HINT"] == "f32"
    assert props["PERFORMANCE_HINT"] == "LATENCY"
    assert cell["env_key"]["runtime_version"].startswith("openvino 20")


def test_output_agrees_with_onnx_runtime_on_the_same_artifact(cache_dir):
    from devices.openvino import OpenVinoRunner
    from devices.ort_cpu import OrtCpuRunner

    artifact, _ = export(ExportRequest(TINY), cache_dir)
    with OpenVinoRunner(RunnerOptions(threads=2)) as ov_runner, OrtCpuRunner(RunnerOptions(threads=1)) as ort_runner:
        ov_runner.load(artifact)
        ort_runner.load(artifact)
        # both runners draw their input from the same seed
        np.testing.assert_array_equal(ov_runner._x, ort_runner._feed[artifact.input_name])
        ov_runner.infer()
        ort_runner.infer()
        a, b = ov_runner.output().ravel(), ort_runner.output().ravel()
        assert a.shape == (1000,) and np.isfinite(a).all()
        cosine = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
        assert cosine > 0.9999, cosine
        assert ov_runner.properties()["INFERENCE_NUM_THREADS"] == 2


def test_without_openvino_the_device_names_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)  # an import of it now fails, as on a host without it
    avail = registry.availability("openvino")
    assert avail.status == "unavailable"
    assert "openvino" in avail.reason and "mobileone-bench[openvino]" in avail.reason


def test_registered_as_a_cpu_device_compared_with_the_paper_s_x86_column():
    spec = registry.get_device("openvino")
    assert spec.kind == "cpu" and spec.precision == "fp32" and spec.contention_probe
    assert registry.paper_column("openvino") == "cpu_x86_ms"
    assert "openvino" in registry.host_cpu_devices()
    assert registry.runtime_of("openvino", "openvino") == "openvino"
