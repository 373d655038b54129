"""ShuffleNetV2 x1.0, layer for layer torchvision's `shufflenet_v2_x1_0` (same module names: conv1, maxpool,
stage2..4, conv5, fc; branch1 / branch2 inside each unit)."""
from __future__ import annotations

import torch
from torch import nn

ACTIVATION_MODES = ("original", "relu")
STAGE_REPEATS = (4, 8, 4)
STAGE_CHANNELS = (24, 116, 232, 464, 1024)  # stem, stage2, stage3, stage4, conv5


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Interleave the channels of `groups` groups so the next unit's split mixes both branches."""
    b, c, h, w = x.shape
    return x.view(b, groups, c // groups, h, w).transpose(1, 2).reshape(b, c, h, w)


def _depthwise_bn(chs: int, stride: int) -> list[nn.Module]:
    return [nn.Conv2d(chs, chs, 3, stride, 1, groups=chs, bias=False), nn.BatchNorm2d(chs)]


def _pointwise_bn_relu(in_chs: int, out_chs: int) -> list[nn.Module]:
    return [nn.Conv2d(in_chs, out_chs, 1, bias=False), nn.BatchNorm2d(out_chs), nn.ReLU(inplace=True)]


class ShuffleUnit(nn.Module):
    """torchvision's ShuffleNetV2 InvertedResidual. Stride 1: half the channels pass through untouched and
    the other half go through branch2. Stride 2: both branches see the whole input and each yields half."""

    def __init__(self, in_chs: int, out_chs: int, stride: int):
        super().__init__()
        self.stride = stride
        half = out_chs // 2
        if stride == 1 and in_chs != out_chs:
            raise ValueError(f"a stride-1 unit keeps its width, got {in_chs} -> {out_chs}")
        if stride > 1:
            self.branch1 = nn.Sequential(*_depthwise_bn(in_chs, stride), *_pointwise_bn_relu(in_chs, half))
        else:
            self.branch1 = nn.Sequential()
        self.branch2 = nn.Sequential(
            *_pointwise_bn_relu(in_chs if stride > 1 else half, half),
            *_depthwise_bn(half, stride),
            *_pointwise_bn_relu(half, half),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.branch2(x2)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return channel_shuffle(out, 2)


class ShuffleNetV2(nn.Module):
    def __init__(self, repeats: tuple[int, ...] = STAGE_REPEATS, channels: tuple[int, ...] = STAGE_CHANNELS,
                 num_classes: int = 1000):
        super().__init__()
        self.conv1 = nn.Sequential(
            nn.Conv2d(3, channels[0], 3, 2, 1, bias=False), nn.BatchNorm2d(channels[0]), nn.ReLU(inplace=True)
        )
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        in_chs = channels[0]
        for i, (n, out_chs) in enumerate(zip(repeats, channels[1:-1]), start=2):
            units = [ShuffleUnit(in_chs, out_chs, 2)] + [ShuffleUnit(out_chs, out_chs, 1) for _ in range(n - 1)]
            self.add_module(f"stage{i}", nn.Sequential(*units))
            in_chs = out_chs
        self.conv5 = nn.Sequential(*_pointwise_bn_relu(in_chs, channels[-1]))
        self.fc = nn.Linear(channels[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.conv1(x))
        x = self.stage4(self.stage3(self.stage2(x)))
        return self.fc(self.conv5(x).mean(dim=(2, 3)))


def build_model(name: str = "shufflenetv2_x1_0", *, activation: str = "original",
                num_classes: int = 1000) -> nn.Module:
    """activation="relu" is accepted for symmetry with the other baselines and changes nothing: ShuffleNetV2
    uses ReLU throughout already."""
    if activation not in ACTIVATION_MODES:
        raise ValueError(f"activation must be one of {ACTIVATION_MODES}, got {activation!r}")
    if name != "shufflenetv2_x1_0":
        raise ValueError(f"unknown model {name!r}; known: ['shufflenetv2_x1_0']")
    return ShuffleNetV2(num_classes=num_classes)
