"""RepVGG (Ding et al., 2021), plain A/B variants, built from the MobileOne block.

A RepVGG block (3x3 conv-BN + 1x1 conv-BN + BN identity, ReLU) is exactly a MobileOne block with one full
3x3 branch, so one block class and one fuse walk serve both. The state_dict therefore uses MobileOne's names
(`rbr_conv.0`, `rbr_scale`, `rbr_skip`), not RepVGG's (`rbr_dense`, `rbr_1x1`, `rbr_identity`).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from bench.zoo.mobileone import MobileOneBlock


@dataclass(frozen=True)
class RepVGGConfig:
    a: float  # width multiplier of stages 1-3
    b: float  # width multiplier of the last stage
    blocks: tuple[int, int, int, int]
    num_classes: int = 1000


REPVGG_A_BLOCKS = (2, 4, 14, 1)
REPVGG_B_BLOCKS = (4, 6, 16, 1)
REPVGG_VARIANTS: dict[str, RepVGGConfig] = {
    "a0": RepVGGConfig(0.75, 2.5, REPVGG_A_BLOCKS),
    "a1": RepVGGConfig(1.0, 2.5, REPVGG_A_BLOCKS),
    "a2": RepVGGConfig(1.5, 2.75, REPVGG_A_BLOCKS),
    "b0": RepVGGConfig(1.0, 2.5, REPVGG_B_BLOCKS),
    "b1": RepVGGConfig(2.0, 4.0, REPVGG_B_BLOCKS),
    "b2": RepVGGConfig(2.5, 5.0, REPVGG_B_BLOCKS),
}


class RepVGG(nn.Module):
    def __init__(self, cfg: RepVGGConfig, inference_mode: bool = False):
        super().__init__()
        widths = (int(64 * cfg.a), int(128 * cfg.a), int(256 * cfg.a), int(512 * cfg.b))
        in_ch = min(64, int(64 * cfg.a))
        self.stage0 = MobileOneBlock(3, in_ch, 3, stride=2, inference_mode=inference_mode)
        for i, (width, n) in enumerate(zip(widths, cfg.blocks), start=1):
            blocks = []
            for j in range(n):
                blocks.append(MobileOneBlock(in_ch, width, 3, stride=2 if j == 0 else 1,
                                             inference_mode=inference_mode))
                in_ch = width
            self.add_module(f"stage{i}", nn.Sequential(*blocks))
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(in_ch, cfg.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for stage in (self.stage0, self.stage1, self.stage2, self.stage3, self.stage4):
            x = stage(x)
        return self.linear(torch.flatten(self.gap(x), 1))
