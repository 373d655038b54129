"""The torch CPU runner (devices/torch_cpu.py): runs the model and restores torch's thread count."""
import torch

from bench.core.runner import RunnerOptions
from devices.torch_cpu import TorchCpuRunner

TINY = "mobileone_mu0"  # the smallest real model of the zoo: exports in seconds


def test_torch_runner_restores_threads():
    from bench.zoo import create_model
    before = torch.get_num_threads()
    with TorchCpuRunner(RunnerOptions(threads=1)) as r:
        r.load(create_model(TINY))
        r.infer()
        assert r.output().shape == (1, 1000) and torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
