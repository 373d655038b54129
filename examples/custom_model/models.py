"""A small ResNet-style network, written for this example: what a user brings to mobileone-bench.

`build_tiny_resnet(width=...)` returns the train form (conv + BatchNorm); `TinyResNet.fuse()` folds every
BatchNorm into its convolution, the inference form `deploy = "fuse"` asks the harness to time.
"""
from __future__ import annotations

import torch
from torch import nn


class ConvBN(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1, relu: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.act = nn.ReLU(inplace=True) if relu else nn.Identity()

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))

    @torch.no_grad()
    def fuse(self) -> None:
        """Fold the BatchNorm into the convolution (eval statistics), in place."""
        if isinstance(self.bn, nn.Identity):
            return
        scale = self.bn.weight / torch.sqrt(self.bn.running_var + self.bn.eps)
        fused = nn.Conv2d(self.conv.in_channels, self.conv.out_channels, 3, self.conv.stride, 1, bias=True)
        fused.weight.copy_(self.conv.weight * scale[:, None, None, None])
        fused.bias.copy_(self.bn.bias - self.bn.running_mean * scale)
        self.conv, self.bn = fused, nn.Identity()


class Block(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.a = ConvBN(channels, channels)
        self.b = ConvBN(channels, channels, relu=False)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.act(x + self.b(self.a(x)))


class TinyResNet(nn.Module):
    def __init__(self, width: float = 1.0, blocks: int = 2, num_classes: int = 1000):
        super().__init__()
        c = [max(8, int(w * width)) for w in (32, 64, 128)]
        layers: list[nn.Module] = [ConvBN(3, c[0], stride=2)]
        for i, ch in enumerate(c):
            if i:
                layers.append(ConvBN(c[i - 1], ch, stride=2))
            layers += [Block(ch) for _ in range(blocks)]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c[-1], num_classes)

    def forward(self, x):
        return self.head(self.features(x).mean((2, 3)))

    def fuse(self) -> "TinyResNet":
        for m in self.modules():
            if isinstance(m, ConvBN):
                m.fuse()
        return self


def build_tiny_resnet(width: float = 1.0, blocks: int = 2) -> TinyResNet:
    return TinyResNet(width=width, blocks=blocks)
