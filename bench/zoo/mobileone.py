"""MobileOne (Vasu et al., 2022): the reference block and network, state_dict-compatible with apple/ml-mobileone.

Module and parameter names (`stage0`..`stage4`, `rbr_skip`, `rbr_conv.{i}.conv|bn`, `rbr_scale.conv|bn`,
`se.reduce|expand`, `reparam_conv`, `linear`) are the authors' own, so their released checkpoints, unfused
and fused, load with `strict=True`. RepVGG reuses the same block (see repvgg.py).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


class SEBlock(nn.Module):
    """Squeeze-excite as in the authors' release: reduce 1x1 -> ReLU -> expand 1x1 -> sigmoid gate."""

    def __init__(self, channels: int, rd_ratio: float = 0.0625):
        super().__init__()
        reduced = int(channels * rd_ratio)
        self.reduce = nn.Conv2d(channels, reduced, kernel_size=1, bias=True)
        self.expand = nn.Conv2d(reduced, channels, kernel_size=1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The release pools with avg_pool2d(kernel=[h, w]); a global mean is the same at any static shape.
        s = x.mean(dim=(2, 3), keepdim=True)
        s = torch.sigmoid(self.expand(torch.relu(self.reduce(s))))
        return x * s


def _conv_bn(in_ch: int, out_ch: int, kernel: int, stride: int, padding: int, groups: int) -> nn.Sequential:
    seq = nn.Sequential()
    seq.add_module("conv", nn.Conv2d(in_ch, out_ch, kernel, stride, padding, groups=groups, bias=False))
    seq.add_module("bn", nn.BatchNorm2d(out_ch))
    return seq


class MobileOneBlock(nn.Module):
    """k parallel conv-BN branches + a 1x1 conv-BN scale branch (kernel > 1) + a BN skip (shapes allow),
    summed, then SE (optional) and ReLU. `reparameterize()` folds it all into one conv with bias."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        groups: int = 1,
        num_conv_branches: int = 1,
        use_se: bool = False,
        inference_mode: bool = False,
    ):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.groups = kernel_size, stride, groups
        self.padding = kernel_size // 2
        self.num_conv_branches = num_conv_branches
        self.inference_mode = inference_mode
        self.se = SEBlock(out_channels) if use_se else nn.Identity()
        self.activation = nn.ReLU()
        if inference_mode:
            self.reparam_conv = nn.Conv2d(
                in_channels, out_channels, kernel_size, stride, self.padding, groups=groups, bias=True
            )
            return
        self.rbr_skip = nn.BatchNorm2d(in_channels) if in_channels == out_channels and stride == 1 else None
        self.rbr_conv = nn.ModuleList(
            _conv_bn(in_channels, out_channels, kernel_size, stride, self.padding, groups)
            for _ in range(num_conv_branches)
        )
        self.rbr_scale = _conv_bn(in_channels, out_channels, 1, stride, 0, groups) if kernel_size > 1 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.inference_mode:
            return self.activation(self.se(self.reparam_conv(x)))
        out = 0
        if self.rbr_skip is not None:
            out = self.rbr_skip(x)
        if self.rbr_scale is not None:
            out = out + self.rbr_scale(x)
        for branch in self.rbr_conv:
            out = out + branch(x)
        return self.activation(self.se(out))

    @torch.no_grad()
    def fused_kernel_bias(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The single conv's (weight, bias) equal to the sum of all branches in eval mode."""
        kernel = torch.zeros_like(self.rbr_conv[0].conv.weight)
        bias = torch.zeros(self.out_channels, dtype=kernel.dtype, device=kernel.device)
        branches: list[tuple[torch.Tensor, nn.BatchNorm2d]] = [(b.conv.weight, b.bn) for b in self.rbr_conv]
        if self.rbr_scale is not None:
            # A 1x1 kernel is a kxk kernel that is zero but at its centre.
            pad = self.kernel_size // 2
            w1 = nn.functional.pad(self.rbr_scale.conv.weight, [pad, pad, pad, pad])
            branches.append((w1, self.rbr_scale.bn))
        if self.rbr_skip is not None:
            branches.append((self._identity_kernel(kernel), self.rbr_skip))
        for weight, bn in branches:
            k, b = fold_bn(weight, bn)
            kernel += k
            bias += b
        return kernel, bias

    def _identity_kernel(self, like: torch.Tensor) -> torch.Tensor:
        # Identity as a grouped conv: a 1 at the centre, at each output channel's own input channel in its group.
        per_group = self.in_channels // self.groups
        ident = torch.zeros_like(like)
        centre = self.kernel_size // 2
        channels = torch.arange(self.in_channels, device=like.device)
        ident[channels, channels % per_group, centre, centre] = 1.0
        return ident

    def reparameterize(self) -> None:
        if self.inference_mode:
            return
        kernel, bias = self.fused_kernel_bias()
        self.reparam_conv = nn.Conv2d(
            self.in_channels, self.out_channels, self.kernel_size, self.stride, self.padding,
            groups=self.groups, bias=True,
        ).to(kernel.device)
        self.reparam_conv.weight.data.copy_(kernel)
        self.reparam_conv.bias.data.copy_(bias)
        for name in ("rbr_conv", "rbr_scale", "rbr_skip"):
            delattr(self, name)
        self.inference_mode = True


def fold_bn(weight: torch.Tensor, bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """conv(weight, no bias) followed by eval-mode BN == conv(weight * g, bias b)."""
    std = (bn.running_var + bn.eps).sqrt()
    gain = bn.weight / std
    return weight * gain.reshape(-1, 1, 1, 1), bn.bias - bn.running_mean * gain


@dataclass(frozen=True)
class MobileOneConfig:
    """A MobileOne network as data. Stage 0 is the stem (one full 3x3 block); stages 1.. are each a
    sequence of (3x3 depthwise block, 1x1 pointwise block) pairs, the first pair with the stage's stride."""

    stem_width: int
    widths: tuple[int, ...]
    blocks: tuple[int, ...]
    strides: tuple[int, ...]
    k: tuple[int, ...]  # parallel conv branches, per stage after the stem
    se_blocks: tuple[int, ...]  # how many of the last blocks of each stage use SE
    stem_k: int = 1
    num_classes: int = 1000

    def __post_init__(self):
        n = len(self.widths)
        for name in ("blocks", "strides", "k", "se_blocks"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"MobileOne {name} has {len(getattr(self, name))} stages, widths has {n}")
        for se, b in zip(self.se_blocks, self.blocks):
            if not 0 <= se <= b:
                raise ValueError(f"MobileOne se_blocks {self.se_blocks} must be within 0..blocks {self.blocks}")


class MobileOne(nn.Module):
    def __init__(self, cfg: MobileOneConfig, inference_mode: bool = False):
        super().__init__()
        self.cfg = cfg
        self.stage0 = MobileOneBlock(3, cfg.stem_width, 3, stride=2, num_conv_branches=cfg.stem_k,
                                     inference_mode=inference_mode)
        in_ch = cfg.stem_width
        for i, (width, n, stride, k, n_se) in enumerate(
            zip(cfg.widths, cfg.blocks, cfg.strides, cfg.k, cfg.se_blocks), start=1
        ):
            blocks: list[nn.Module] = []
            for j in range(n):
                use_se = j >= n - n_se
                s = stride if j == 0 else 1
                blocks.append(MobileOneBlock(in_ch, in_ch, 3, stride=s, groups=in_ch, num_conv_branches=k,
                                             use_se=use_se, inference_mode=inference_mode))
                blocks.append(MobileOneBlock(in_ch, width, 1, stride=1, num_conv_branches=k,
                                             use_se=use_se, inference_mode=inference_mode))
                in_ch = width
            self.add_module(f"stage{i}", nn.Sequential(*blocks))
        self.num_stages = len(cfg.widths)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(in_ch, cfg.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(self.num_stages + 1):
            x = getattr(self, f"stage{i}")(x)
        return self.linear(torch.flatten(self.gap(x), 1))


# --- variants ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SVariant:
    """One row of the authors' PARAMS (see bench/data/reference/mobileone_variants.csv)."""

    alphas: tuple[float, float, float, float]
    k: int
    use_se: bool
    blocks: tuple[int, int, int, int] = (2, 8, 10, 1)


S_VARIANTS: dict[str, SVariant] = {
    "s0": SVariant((0.75, 1.0, 1.0, 2.0), k=4, use_se=False),
    "s1": SVariant((1.5, 1.5, 2.0, 2.5), k=1, use_se=False),
    "s2": SVariant((1.5, 2.0, 2.5, 4.0), k=1, use_se=False),
    "s3": SVariant((2.0, 2.5, 3.0, 4.0), k=1, use_se=False),
    "s4": SVariant((3.0, 3.5, 3.5, 4.0), k=1, use_se=True),
}


def s_config(variant: str) -> MobileOneConfig:
    v = S_VARIANTS[variant]
    widths = tuple(int(base * a) for base, a in zip((64, 128, 256, 512), v.alphas))
    # The release puts SE in the last half of stage 3 and all of stage 4 (S4 only).
    se = (0, 0, v.blocks[2] // 2, v.blocks[3]) if v.use_se else (0, 0, 0, 0)
    return MobileOneConfig(
        stem_width=min(64, int(64 * v.alphas[0])), widths=widths, blocks=v.blocks, strides=(2, 2, 2, 2),
        k=(v.k,) * 4, se_blocks=se, stem_k=1,
    )


@dataclass(frozen=True)
class MicroVariant:
    """Supplementary Table 4: the stem is stage 1; stages 2..6 follow. Channels = base * alpha."""

    blocks: tuple[int, ...]
    alphas: tuple[float, ...]
    k: int


MICRO_BASE_CHANNELS = (64, 64, 128, 256, 256, 512)
MICRO_STRIDES = (2, 2, 2, 2, 1, 2)
MICRO_VARIANTS: dict[str, MicroVariant] = {
    "mu0": MicroVariant((1, 2, 4, 3, 3, 1), (0.75, 0.75, 0.5, 0.5, 0.5, 0.75), k=3),
    "mu1": MicroVariant((1, 2, 6, 4, 4, 1), (0.75, 0.75, 0.75, 0.75, 0.75, 1.0), k=2),
    "mu2": MicroVariant((1, 2, 6, 4, 4, 1), (0.75, 0.75, 1.0, 1.0, 1.0, 1.0), k=2),
}


def micro_config(variant: str) -> MobileOneConfig:
    v = MICRO_VARIANTS[variant]
    chans = tuple(int(b * a) for b, a in zip(MICRO_BASE_CHANNELS, v.alphas))
    n = len(chans) - 1
    return MobileOneConfig(
        stem_width=chans[0], widths=chans[1:], blocks=v.blocks[1:], strides=MICRO_STRIDES[1:],
        k=(v.k,) * n, se_blocks=(0,) * n, stem_k=v.k,
    )


def with_overrides(cfg: MobileOneConfig, overrides: dict) -> MobileOneConfig:
    """Apply user overrides: widths, blocks, strides, k (int or per stage), se_blocks, stem_width, stem_k."""
    allowed = {"widths", "blocks", "strides", "k", "se_blocks", "stem_width", "stem_k", "num_classes"}
    unknown = set(overrides) - allowed
    if unknown:
        raise ValueError(f"unknown MobileOne override(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
    values = dict(cfg.__dict__)
    values.update(overrides)
    n = len(values["widths"])
    # Changing the number of stages resizes what the user left alone, so one override is enough.
    for name, default in (("strides", 2), ("k", cfg.k[0]), ("se_blocks", 0)):
        v = values[name]
        if isinstance(v, int):
            values[name] = (v,) * n
        elif len(v) != n and name not in overrides:
            values[name] = (tuple(v) + (default,) * n)[:n]
    if len(values["blocks"]) != n and "blocks" not in overrides:
        raise ValueError(f"MobileOne override widths has {n} stages: give blocks for each stage too")
    return MobileOneConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})
