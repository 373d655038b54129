"""The baseline backbones match their PyTorch references (timm 1.0; torchvision for ShuffleNetV2) in
parameters and MACs, run, and honour the activation switch."""
from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from torch import nn

from bench.zoo import mobilenets, shufflenet

# name -> (params M, MACs M) of the reference implementation at 1x3x224x224.
REFERENCE = {
    "mobilenetv1_100": (4.232, 568.7),
    "mobilenetv2_100": (3.505, 300.8),
    "mobilenetv2_140": (6.109, 582.2),
    "mobilenetv3_large_100": (5.483, 216.6),
    "mobilenetv3_small_100": (2.543, 56.5),
    "efficientnet_b0": (5.289, 385.8),
    "mnasnet_a1": (3.887, 311.6),
    "shufflenetv2_x1_0": (2.279, 144.9),
    "mixnet_s": (4.135, 239.2),
}
TOLERANCE = 0.01


def build(name: str, **kwargs) -> nn.Module:
    module = shufflenet if name == "shufflenetv2_x1_0" else mobilenets
    return module.build_model(name, **kwargs)


@dataclass(frozen=True)
class Measured:
    params: int
    macs: int
    logits: torch.Tensor


def measure(model: nn.Module) -> Measured:
    """Params (BN affine in, running stats out) and MACs: conv = output numel * in/groups * kh * kw,
    linear = in * out, nothing else; counted with forward hooks during one eval forward."""
    macs = 0

    def conv_hook(m: nn.Conv2d, _inp, out: torch.Tensor) -> None:
        nonlocal macs
        macs += out.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]

    def linear_hook(m: nn.Linear, _inp, _out) -> None:
        nonlocal macs
        macs += m.in_features * m.out_features

    hooks = [m.register_forward_hook(conv_hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    hooks += [m.register_forward_hook(linear_hook) for m in model.modules() if isinstance(m, nn.Linear)]
    with torch.no_grad():
        logits = model.eval()(torch.randn(1, 3, 224, 224))
    for h in hooks:
        h.remove()
    return Measured(sum(p.numel() for p in model.parameters()), macs, logits)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread: these forwards check numbers, not speed, and with OpenMP's two threads a
    forward takes seconds instead of ~50 ms whenever another process is using the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module", params=sorted(REFERENCE))
def measured(request) -> tuple[str, Measured]:
    return request.param, measure(build(request.param))


def test_every_mobilenet_config_is_covered():
    assert set(mobilenets.MODEL_CONFIGS) == set(REFERENCE) - {"shufflenetv2_x1_0"}


def test_forward_gives_finite_logits(measured):
    _, m = measured
    assert m.logits.shape == (1, 1000)
    assert torch.isfinite(m.logits).all()


def test_params_match_reference(measured):
    name, m = measured
    assert m.params / 1e6 == pytest.approx(REFERENCE[name][0], rel=TOLERANCE)


def test_macs_match_reference(measured):
    name, m = measured
    assert m.macs / 1e6 == pytest.approx(REFERENCE[name][1], rel=TOLERANCE)


def _has(model: nn.Module, kind: type[nn.Module]) -> bool:
    return any(isinstance(m, kind) for m in model.modules())


@pytest.mark.parametrize("name", ["mobilenetv3_large_100", "mobilenetv3_small_100"])
def test_relu_mode_replaces_hardswish_but_keeps_se_gate(name):
    original, relu = build(name), build(name, activation="relu")
    assert _has(original, nn.Hardswish)
    assert not _has(relu, nn.Hardswish)
    # The SE gate stays a hard-sigmoid: it must stay bounded to [0, 1].
    assert _has(relu, nn.Hardsigmoid)
    assert sum(p.numel() for p in relu.parameters()) == sum(p.numel() for p in original.parameters())


@pytest.mark.parametrize("name", ["efficientnet_b0", "mixnet_s", "mobilenetv2_100", "shufflenetv2_x1_0"])
def test_relu_mode_leaves_models_without_hardswish_alone(name):
    def layer_types(model: nn.Module) -> list[type]:
        return [type(m) for m in model.modules()]

    assert layer_types(build(name, activation="relu")) == layer_types(build(name))


@pytest.mark.parametrize("name", ["mobilenetv3_large_100", "shufflenetv2_x1_0"])
def test_bad_activation_raises(name):
    with pytest.raises(ValueError, match="original"):
        build(name, activation="gelu")
