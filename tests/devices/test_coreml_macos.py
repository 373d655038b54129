"""Core ML predictions on macOS: the runner's load/infer/reload/info through the measurement engine, and
parity of the fp16 package with the fp32 PyTorch model. Skipped, with the reason, anywhere else."""
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from bench.core.protocol import PRESETS
from bench.measure import measure
from bench.zoo import create_model
from bench.core.runner import RunnerOptions
from devices.coreml import COMPUTE_UNITS, PARITY_MIN_COSINE, CoreMLRunner, check, parity
from bench.core.artifact import ExportRequest
from exporters.coreml import export

# A module-level skip, so the module-scoped conversion below never runs where predictions cannot.
_AVAILABLE = check()
pytestmark = [pytest.mark.macos, pytest.mark.coreml, pytest.mark.slow,
              pytest.mark.skipif(not _AVAILABLE.can_run,
                                 reason=f"Core ML predictions unavailable here: {_AVAILABLE.reason}"),
              pytest.mark.usefixtures("coremltools_installed")]


def trained_like_weights(name: str, path: Path) -> str:
    """A train-form state_dict whose BN statistics are re-estimated on random data: activations of order one,
    as with trained weights (at init, fused MobileOne reaches ~1e5 and overflows fp16)."""
    model = create_model(name, deploy=False)
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(4, 3, 224, 224, generator=g))
    torch.save(model.eval().state_dict(), path)
    return str(path)


@pytest.fixture(scope="module")
def s0_package(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("coreml")
    weights = trained_like_weights("mobileone_s0", tmp / "s0.pt")
    artifact, _ = export(ExportRequest("mobileone_s0", weights=weights), tmp / "cache")
    assert artifact.metadata["fp16_range"]["fits"], artifact.metadata["fp16_range"]
    return artifact


@pytest.mark.parametrize("units", COMPUTE_UNITS)
def test_runner_loads_infers_reloads_and_reports(s0_package, units):
    runner = CoreMLRunner(RunnerOptions(threads=1, extra={"compute_units": units}))
    with runner:
        runner.load(s0_package)
        assert runner.compile_ms > 0 and runner.load_ms > 0
        assert runner.infer() is None
        out = runner.output()
        assert out.shape == (1, 1000) and out.dtype == np.float32 and np.isfinite(out).all()
        m = measure(runner.infer, PRESETS["quick"], reload=runner.reload)
        assert len(m.samples_ms) == 3 and all(t > 0 for r in m.samples_ms for t in r)
        runner.reload()
        assert runner.reload_ms
        info = runner.info()
        assert info["compute_units"] == units and info["compile_ms"] == runner.compile_ms
        plan = info["compute_plan"]
        assert plan["available"] in (True, False)
        if plan["available"]:
            assert plan["ops"] > 0 and sum(plan["by_device"].values()) == plan["ops"]
            if units == "CPU_ONLY":
                assert plan["by_device"] == {"cpu": plan["ops"]}
        else:
            assert "MLComputePlan" in plan["reason"]


@pytest.mark.parametrize("units", ["ALL", "CPU_ONLY"])
def test_fp16_package_matches_fp32_pytorch(s0_package, units):
    result = parity(s0_package, compute_units=units)
    assert result["cosine"] >= PARITY_MIN_COSINE, result
    assert result["passed"] and not result["fp16_overflow_expected"]


def test_parity_of_a_baseline_at_its_own_init(tmp_path):
    artifact, _ = export(ExportRequest("mobilenetv3_large_100"), tmp_path)
    assert parity(artifact)["passed"]


def test_image_input_package_matches_the_normalized_pytorch_input(tmp_path):
    weights = trained_like_weights("mobileone_s0", tmp_path / "s0.pt")
    artifact, _ = export(ExportRequest("mobileone_s0", weights=weights, settings=(("image_input", True),)),
                         tmp_path / "cache")
    result = parity(artifact, compute_units="CPU_ONLY")
    assert result["cosine"] >= PARITY_MIN_COSINE, result
