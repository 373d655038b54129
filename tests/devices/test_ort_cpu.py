"""The ORT CPU runner (devices/ort_cpu.py) on a real ONNX export: its output matches PyTorch's."""
import numpy as np
import pytest
import torch

from bench.core.runner import RunnerOptions
from devices.ort_cpu import OrtCpuRunner
from bench.core.artifact import ExportRequest
from exporters.onnx import export

TINY = "mobileone_mu0"  # the smallest real model of the zoo: exports in seconds


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def test_ort_runner_matches_pytorch(cache_dir):
    artifact, _ = export(ExportRequest(TINY), cache_dir)
    with OrtCpuRunner(RunnerOptions(threads=1)) as r:
        r.load(artifact)
        r.infer()
        out = r.output()
        assert out.shape == (1, 1000)
        assert r.info()["intra_op_threads"] == 1
        from bench.zoo import create_model
        with torch.no_grad():
            ref = create_model(TINY)(torch.from_numpy(r._feed["input"])).numpy()
        assert np.abs(out - ref).max() <= 1e-4 * np.abs(ref).max()
