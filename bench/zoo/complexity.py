"""Parameters and multiply-accumulates (conv + linear) of a model: the paper's "FLOPs" are these MACs."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Complexity:
    params: int
    macs: int

    @property
    def params_m(self) -> float:
        return self.params / 1e6

    @property
    def macs_m(self) -> float:
        return self.macs / 1e6


def complexity(model: nn.Module, input_size: tuple[int, ...] = (1, 3, 224, 224)) -> Complexity:
    """Count trainable parameters (BN affine included, running statistics not) and conv/linear MACs.

    Works on models on the meta device too (no arithmetic is done), which keeps the big RepVGGs cheap.
    """
    macs = 0

    def conv_hook(m: nn.Conv2d, _inp, out: torch.Tensor) -> None:
        nonlocal macs
        kh, kw = m.kernel_size
        macs += out.numel() * (m.in_channels // m.groups) * kh * kw

    def linear_hook(m: nn.Linear, inp, _out) -> None:
        nonlocal macs
        rows = inp[0].numel() // m.in_features
        macs += rows * m.in_features * m.out_features

    hooks = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(linear_hook))
    device = next(model.parameters()).device
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(input_size, device=device))
    finally:
        for h in hooks:
            h.remove()
    params = sum(p.numel() for p in model.parameters())
    return Complexity(params=params, macs=macs)
