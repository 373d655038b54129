"""On an NVIDIA GPU: the cuda runner on mobileone_s0, the tensorrt build + trt runner, the trtexec
cross-check. Skipped, with the reason our availability checks give, where the host cannot run them."""
import numpy as np
import pytest
import torch

from bench.measure import get_protocol, measure
from bench.zoo import create_model
from devices.base import RunnerOptions

pytestmark = [pytest.mark.gpu, pytest.mark.slow]
MODEL = "mobileone_s0"


def reference_logits() -> np.ndarray:
    torch.manual_seed(0)
    model = create_model(MODEL, deploy=True).eval()
    x = torch.randn((1, 3, 224, 224), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return model(x).numpy()


def close_in_fp16(out: np.ndarray, ref: np.ndarray) -> None:
    out, ref = out.reshape(-1).astype(np.float64), ref.reshape(-1).astype(np.float64)
    cosine = out @ ref / np.linalg.norm(out) / np.linalg.norm(ref)
    assert cosine > 0.999, cosine
    assert np.argmax(out) == np.argmax(ref)


@pytest.mark.parametrize("cuda_graph", [False, True])
def test_cuda_runner_mobileone_s0(cuda_device, cuda_graph):
    from devices.cuda import CudaRunner

    ref = reference_logits()
    torch.manual_seed(0)
    model = create_model(MODEL, deploy=True)
    with CudaRunner(RunnerOptions(threads=1, extra={"cuda_graph": cuda_graph})) as r:
        r.load(model)
        times = [r.infer() for _ in range(20)]
        assert all(t > 0 for t in times)
        close_in_fp16(r.output(), ref)
        m = measure(r.infer, get_protocol("quick"))
        assert len(m.device_samples_ms) == len(m.samples_ms) == 3
        # the device time is inside the host time around the synchronized call
        assert np.median(np.concatenate(m.device_samples_ms)) <= np.median(np.concatenate(m.samples_ms))
        info = r.info()
    assert info["cuda_graph"] is cuda_graph and info["gpu"]["nvml"] == "ok"
    assert info["gpu_before"]["sm_clock_mhz"] and info["gpu_after"]["temperature_c"] is not None


@pytest.fixture
def engine(trt_device, tmp_path_factory):
    pytest.importorskip("exporters.onnx", reason="the ONNX exporter (the lead's) is not in this checkout yet")
    from exporters.base import ExportRequest
    from exporters.tensorrt import export

    cache = tmp_path_factory.mktemp("cache")
    artifact, hit = export(ExportRequest(MODEL), cache)
    assert not hit
    return artifact, cache


def test_tensorrt_engine_is_fp16_and_cached(engine):
    from exporters.base import ExportRequest
    from exporters.tensorrt import export

    artifact, cache = engine
    counts = artifact.metadata["precision_counts"]
    assert artifact.precision == "fp16" and counts["compute"].get("fp16", 0) > 0 and counts["fp16_share"] > 0.5
    assert artifact.metadata["timing_cache_bytes_after"] > 0
    again, hit = export(ExportRequest(MODEL), cache)
    assert hit and again.sha256 == artifact.sha256


@pytest.mark.parametrize("extra", [{}, {"copies": True}, {"cuda_graph": True}, {"copies": True, "cuda_graph": True}])
def test_trt_runner(engine, extra):
    from devices.trt import TrtRunner

    artifact, _ = engine
    with TrtRunner(RunnerOptions(threads=1, extra=extra)) as r:
        r.load(artifact)
        times = [r.infer() for _ in range(20)]
        assert all(t > 0 for t in times)
        close_in_fp16(r.output(), reference_logits())
        r.reload()
        assert r.infer() > 0
        assert r.info()["copies"] is bool(extra.get("copies")) and r.info()["gpu"]["nvml"] == "ok"


def test_trtexec_cross_check(engine, trtexec_device):
    from devices.trt import TrtRunner
    from devices.trtexec import TrtexecRunner

    artifact, cache = engine
    p = get_protocol("quick")
    tx = TrtexecRunner(RunnerOptions(threads=1, extra={"cache_dir": str(cache)}))
    tx.load(artifact)
    ext = tx.measure_external(p)
    assert len(ext.device_samples_ms) == 3 and ext.info["build"]["precision_counts"]["compute"].get("fp16")
    with TrtRunner(RunnerOptions(threads=1)) as r:
        r.load(artifact)
        ours = measure(r.infer, p)
    theirs = np.median(np.concatenate(ext.device_samples_ms))
    mine = np.median(np.concatenate(ours.device_samples_ms))
    assert 0.5 < mine / theirs < 2.0, (mine, theirs)  # same engine recipe, same GPU: same order of magnitude
