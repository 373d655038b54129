"""On an NVIDIA GPU: the cuda runner on mobileone_s0, the tensorrt build + trt runner, the trtexec
cross-check. Skipped, with the reason our availability checks give, where the host cannot run them."""
import numpy as np
import pytest
import torch

from bench.core.protocol import get_protocol
from bench.measure import measure
from bench.zoo import create_model
from bench.core.runner import RunnerOptions

pytestmark = [pytest.mark.gpu, pytest.mark.slow]
MODEL = "mobileone_s0"


def tame(model: torch.nn.Module, x: torch.Tensor) -> torch.nn.Module:
    """Scale each conv/linear so its output has unit std on x (LSUV-style): at random init MobileOne's logits
    reach ~1e5, past fp16's range (65504), and fp16 outputs would be inf/NaN whatever the runtime."""
    for layer in [m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]:
        seen = []
        hook = layer.register_forward_hook(lambda m, i, o: seen.append(o.std().item()))
        with torch.no_grad():
            model(x)
        hook.remove()
        layer.weight.data /= seen[0]
        if layer.bias is not None:
            layer.bias.data /= seen[0]
    return model


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """(fused weights file, fp32 reference logits) of a tamed mobileone_s0, for the runners' input (their
    inputs are torch.randn with a generator seeded 0, as here)."""
    x = torch.randn((1, 3, 224, 224), generator=torch.Generator().manual_seed(0))
    model = tame(create_model(MODEL, deploy=True), x)
    path = tmp_path_factory.mktemp("weights") / f"{MODEL}-tamed.pt"
    torch.save(model.state_dict(), path)
    with torch.no_grad():
        return str(path), model(x).numpy()


def close_in_fp16(out: np.ndarray, ref: np.ndarray) -> None:
    out, ref = out.reshape(-1).astype(np.float64), ref.reshape(-1).astype(np.float64)
    cosine = out @ ref / np.linalg.norm(out) / np.linalg.norm(ref)
    assert cosine > 0.999, cosine
    assert np.argmax(out) == np.argmax(ref)


@pytest.mark.parametrize("cuda_graph", [False, True])
def test_cuda_runner_mobileone_s0(cuda_device, weights, cuda_graph):
    from devices.cuda import CudaRunner

    path, ref = weights
    model = create_model(MODEL, deploy=True, weights=path)
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


@pytest.fixture(scope="module")
def engine(weights, tmp_path_factory):
    pytest.importorskip("exporters.onnx", reason="the ONNX exporter (the lead's) is not in this checkout yet")
    from bench.core.artifact import ExportRequest
    from exporters.tensorrt import export

    cache = tmp_path_factory.mktemp("cache")
    artifact, hit = export(ExportRequest(MODEL, weights=weights[0]), cache)
    assert not hit
    return artifact, cache


def test_tensorrt_engine_is_fp16_and_cached(trt_device, weights, engine):
    from bench.core.artifact import ExportRequest
    from exporters.tensorrt import export

    artifact, cache = engine
    counts = artifact.metadata["precision_counts"]
    assert artifact.precision == "fp16" and counts["compute"].get("fp16", 0) > 0 and counts["fp16_share"] > 0.5
    assert artifact.metadata["timing_cache_bytes_after"] > 0
    again, hit = export(ExportRequest(MODEL, weights=weights[0]), cache)
    assert hit and again.sha256 == artifact.sha256


@pytest.mark.parametrize("extra", [{}, {"copies": True}, {"cuda_graph": True}, {"copies": True, "cuda_graph": True}])
def test_trt_runner(trt_device, weights, engine, extra):
    from devices.trt import TrtRunner

    artifact, _ = engine
    with TrtRunner(RunnerOptions(threads=1, extra=extra)) as r:
        r.load(artifact)
        times = [r.infer() for _ in range(20)]
        assert all(t > 0 for t in times)
        close_in_fp16(r.output(), weights[1])
        r.reload()
        assert r.infer() > 0
        assert r.info()["copies"] is bool(extra.get("copies")) and r.info()["gpu"]["nvml"] == "ok"


def test_trtexec_cross_check(trt_device, trtexec_device, engine):
    from devices.trt import TrtRunner
    from devices.trtexec import TrtexecRunner
    from bench.core.artifact import ExportRequest
    from exporters.trtexec import export as trtexec_export

    artifact, cache = engine
    p = get_protocol("quick")
    built, _ = trtexec_export(ExportRequest(artifact.model), cache)
    with TrtexecRunner(RunnerOptions(threads=1)) as tx:
        tx.load(built)
        ext = measure(tx, p)
    assert len(ext.device_samples_ms) == 3 and built.metadata["build"]["precision_counts"]["compute"].get("fp16")
    with TrtRunner(RunnerOptions(threads=1)) as r:
        r.load(artifact)
        ours = measure(r.infer, p)
    theirs = np.median(np.concatenate(ext.device_samples_ms))
    mine = np.median(np.concatenate(ours.device_samples_ms))
    assert 0.5 < mine / theirs < 2.0, (mine, theirs)  # same engine recipe, same GPU: same order of magnitude
