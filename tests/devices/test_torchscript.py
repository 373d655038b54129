"""The TorchScript runner (devices/torchscript.py): the traced, frozen model gives the eager model's output, runs
at the asked threads, restores torch's thread count, and is a registered, available CPU device."""
import numpy as np
import torch

from bench.core.runner import RunnerOptions
from bench.zoo import create_model
from devices.registry import DEVICES, availability
from devices.torchscript import TorchScriptRunner

TINY = "mobileone_mu0"


def test_frozen_trace_matches_eager_and_restores_threads():
    before = torch.get_num_threads()
    model = create_model(TINY)
    with TorchScriptRunner(RunnerOptions(threads=1)) as r:
        r.load(model)
        assert isinstance(r.module, torch.jit.ScriptModule)
        r.infer()
        assert torch.get_num_threads() == 1
        with torch.no_grad():
            expected = model(r._x).numpy()
        np.testing.assert_allclose(r.output(), expected, rtol=1e-4, atol=1e-4 * float(np.abs(expected).max()))
        assert r.info()["form"] == "deploy" and r.info()["runtime"] == "torchscript"
    assert torch.get_num_threads() == before


def test_train_form_is_recorded_as_such():
    with TorchScriptRunner(RunnerOptions(threads=1)) as r:
        r.load(create_model(TINY, deploy=False))
        r.infer()
        assert r.info()["form"] == "train"


def test_registered_cpu_device():
    spec = DEVICES["torchscript"]
    assert spec.kind == "cpu" and spec.contention_probe and spec.paper_column == "cpu_x86_ms"
    assert availability("torchscript").can_run
