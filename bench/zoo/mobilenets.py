"""The MobileNet family as data: MobileNetV1/V2/V3, EfficientNet-B0, MNASNet-A1 and MixNet-S.

Every network is a `NetConfig`: a stem, stages of `BlockSpec`s and a head, in the spirit of timm's arch-def
strings (`ir_r2_k3_s2_e6_c24_se0.25` is `ir(24, k=3, s=2, e=6, se=0.25, r=2)` here). One builder,
`MobileNet`, turns any of them into a module. Structure follows timm 1.0 (`efficientnet.py`,
`mobilenetv3.py`, `_efficientnet_builder.py`, `_efficientnet_blocks.py`) wherever it changes the
parameter count or MACs: channel rounding, SE widths, grouped 1x1 convs, head layout. Weight init, dropout
and drop-path are left out: they do not change the inference graph being timed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

BlockKind = Literal["ds", "ir", "mixed_ir", "conv"]
HeadKind = Literal["conv_bn", "pool_conv", "none"]

ACTIVATION_MODES = ("original", "relu")
# MobileOne timed MobileNetV3 with ReLU in place of H-swish. The SE gate's hard-sigmoid is deliberately not
# in this map: it is a gate bounded to [0, 1], not a hidden activation, and ReLU would make it unbounded.
_ACTIVATION_SWAPS: dict[str, dict[str, str]] = {"original": {}, "relu": {"hardswish": "relu"}}
_ACTIVATIONS = {"relu": nn.ReLU, "relu6": nn.ReLU6, "silu": nn.SiLU, "hardswish": nn.Hardswish}
_GATES = {"sigmoid": nn.Sigmoid, "hardsigmoid": nn.Hardsigmoid}


def make_divisible(value: float, divisor: int = 8, round_limit: float = 0.9) -> int:
    """timm's make_divisible: the nearest multiple of `divisor` (at least `divisor`), one step higher if
    rounding to it lost more than `1 - round_limit` of `value`."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < round_limit * value else rounded


# --- the data ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BlockSpec:
    """One row of an arch def: `repeats` identical blocks, only the first of them strided.

    kind: "ds" depthwise-separable (dw kxk -> SE -> pw 1x1), "ir" inverted residual (pw 1x1 expand ->
    dw kxk -> SE -> pw 1x1 project), "mixed_ir" an inverted residual whose convs split their channels into
    groups (MixConv: one depthwise kernel size per group, 1x1 convs split into `exp_splits` /
    `proj_splits` groups), "conv" a plain conv-BN-act (MobileNetV3's last 1x1 before its head).
    """

    kind: BlockKind
    out_chs: int  # before the width multiplier
    kernels: tuple[int, ...] = (3,)
    stride: int = 1
    exp_ratio: float = 1.0
    se_ratio: float = 0.0  # 0: no squeeze-excite
    act: str | None = None  # None: the network's default activation
    exp_splits: int = 1
    proj_splits: int = 1
    repeats: int = 1
    skip: bool = True  # residual add where stride 1 and in == out (timm's `noskip` sets False)
    pw_act: bool = False  # ds only: activation after the pointwise conv too (MobileNetV1)

    def __post_init__(self):
        if self.kind not in ("ds", "ir", "mixed_ir", "conv"):
            raise ValueError(f"unknown block kind {self.kind!r}")
        if self.kind != "mixed_ir" and (len(self.kernels) != 1 or self.exp_splits != 1 or self.proj_splits != 1):
            raise ValueError(f"only mixed_ir blocks split channels; got {self}")


def ds(out_chs: int, k: int = 3, s: int = 1, se: float = 0.0, act: str | None = None, r: int = 1,
       skip: bool = True, pw_act: bool = False) -> BlockSpec:
    return BlockSpec("ds", out_chs, (k,), s, se_ratio=se, act=act, repeats=r, skip=skip, pw_act=pw_act)


def ir(out_chs: int, k: int, s: int, e: float, se: float = 0.0, act: str | None = None, r: int = 1) -> BlockSpec:
    return BlockSpec("ir", out_chs, (k,), s, exp_ratio=e, se_ratio=se, act=act, repeats=r)


def mixed_ir(out_chs: int, k: tuple[int, ...], s: int, e: float, se: float = 0.0, act: str | None = None,
             r: int = 1, exp_splits: int = 1, proj_splits: int = 1) -> BlockSpec:
    return BlockSpec("mixed_ir", out_chs, k, s, exp_ratio=e, se_ratio=se, act=act, repeats=r,
                     exp_splits=exp_splits, proj_splits=proj_splits)


def conv(out_chs: int, k: int = 1) -> BlockSpec:
    return BlockSpec("conv", out_chs, (k,), skip=False)


@dataclass(frozen=True)
class SEStyle:
    """How a family sizes and gates squeeze-excite. timm's EfficientNet/MNASNet/MixNet give `se_ratio`
    relative to the block input (the SE on the expanded channels is `round(in_chs * se_ratio)` wide);
    MobileNetV3 applies it to the expanded channels and rounds to a multiple of 8."""

    gate: str = "sigmoid"
    act: str | None = None  # None: the block's activation
    from_expanded: bool = False
    round_to_divisor: bool = False


@dataclass(frozen=True)
class NetConfig:
    """A whole network. `head`: "conv_bn" is EfficientNet's 1x1 conv-BN-act -> pool -> linear;
    "pool_conv" is MobileNetV3's pool -> 1x1 conv with bias, no BN -> act -> linear; "none" pools the last
    block straight into the linear (MobileNetV1). `head_chs` is final: timm does not scale it uniformly."""

    stages: tuple[tuple[BlockSpec, ...], ...]
    act: str
    stem_chs: int
    head: HeadKind
    head_chs: int = 0
    se: SEStyle = SEStyle()
    width_mult: float = 1.0
    fix_stem: bool = False  # keep the stem width out of the multiplier
    divisor: int = 8
    round_limit: float = 0.9

    def channels(self, chs: float) -> int:
        return make_divisible(chs, self.divisor, self.round_limit)


MOBILENETV3_SE = SEStyle(gate="hardsigmoid", act="relu", from_expanded=True, round_to_divisor=True)


def _mobilenetv1() -> NetConfig:
    def dsa(out_chs: int, s: int, r: int = 1) -> BlockSpec:
        return ds(out_chs, s=s, r=r, skip=False, pw_act=True)

    stages = ((dsa(64, 1),), (dsa(128, 2, r=2),), (dsa(256, 2, r=2),), (dsa(512, 2, r=6),), (dsa(1024, 2, r=2),))
    return NetConfig(stages, act="relu6", stem_chs=32, head="none")


def _mobilenetv2(width_mult: float) -> NetConfig:
    stages = (
        (ds(16),),
        (ir(24, k=3, s=2, e=6, r=2),),
        (ir(32, k=3, s=2, e=6, r=3),),
        (ir(64, k=3, s=2, e=6, r=4),),
        (ir(96, k=3, s=1, e=6, r=3),),
        (ir(160, k=3, s=2, e=6, r=3),),
        (ir(320, k=3, s=1, e=6),),
    )
    # timm widens the head with the multiplier but never narrows it below 1280.
    head_chs = max(1280, make_divisible(1280 * width_mult))
    return NetConfig(stages, act="relu6", stem_chs=32, head="conv_bn", head_chs=head_chs, width_mult=width_mult)


def _mobilenetv3_large() -> NetConfig:
    stages = (
        (ds(16, act="relu"),),
        (ir(24, k=3, s=2, e=4, act="relu"), ir(24, k=3, s=1, e=3, act="relu")),
        (ir(40, k=5, s=2, e=3, se=0.25, act="relu", r=3),),
        (ir(80, k=3, s=2, e=6), ir(80, k=3, s=1, e=2.5), ir(80, k=3, s=1, e=2.3, r=2)),
        (ir(112, k=3, s=1, e=6, se=0.25, r=2),),
        (ir(160, k=5, s=2, e=6, se=0.25, r=3),),
        (conv(960),),
    )
    return NetConfig(stages, act="hardswish", stem_chs=16, head="pool_conv", head_chs=1280, se=MOBILENETV3_SE)


def _mobilenetv3_small() -> NetConfig:
    stages = (
        (ds(16, s=2, se=0.25, act="relu"),),
        (ir(24, k=3, s=2, e=4.5, act="relu"), ir(24, k=3, s=1, e=3.67, act="relu")),
        (ir(40, k=5, s=2, e=4, se=0.25), ir(40, k=5, s=1, e=6, se=0.25, r=2)),
        (ir(48, k=5, s=1, e=3, se=0.25, r=2),),
        (ir(96, k=5, s=2, e=6, se=0.25, r=3),),
        (conv(576),),
    )
    return NetConfig(stages, act="hardswish", stem_chs=16, head="pool_conv", head_chs=1024, se=MOBILENETV3_SE)


def _efficientnet_b0() -> NetConfig:
    stages = (
        (ds(16, se=0.25),),
        (ir(24, k=3, s=2, e=6, se=0.25, r=2),),
        (ir(40, k=5, s=2, e=6, se=0.25, r=2),),
        (ir(80, k=3, s=2, e=6, se=0.25, r=3),),
        (ir(112, k=5, s=1, e=6, se=0.25, r=3),),
        (ir(192, k=5, s=2, e=6, se=0.25, r=4),),
        (ir(320, k=3, s=1, e=6, se=0.25),),
    )
    return NetConfig(stages, act="silu", stem_chs=32, head="conv_bn", head_chs=1280)


def _mnasnet_a1() -> NetConfig:
    stages = (
        (ds(16, skip=False),),
        (ir(24, k=3, s=2, e=6, r=2),),
        (ir(40, k=5, s=2, e=3, se=0.25, r=3),),
        (ir(80, k=3, s=2, e=6, r=4),),
        (ir(112, k=3, s=1, e=6, se=0.25, r=2),),
        (ir(160, k=5, s=2, e=6, se=0.25, r=3),),
        (ir(320, k=3, s=1, e=6),),
    )
    return NetConfig(stages, act="relu", stem_chs=32, head="conv_bn", head_chs=1280)


def _mixnet_s() -> NetConfig:
    sw = "silu"
    stages = (
        (ds(16),),
        (mixed_ir(24, k=(3,), s=2, e=6, exp_splits=2, proj_splits=2),
         mixed_ir(24, k=(3,), s=1, e=3, exp_splits=2, proj_splits=2)),
        (mixed_ir(40, k=(3, 5, 7), s=2, e=6, se=0.5, act=sw),
         mixed_ir(40, k=(3, 5), s=1, e=6, se=0.5, act=sw, r=3, exp_splits=2, proj_splits=2)),
        (mixed_ir(80, k=(3, 5, 7), s=2, e=6, se=0.25, act=sw, proj_splits=2),
         mixed_ir(80, k=(3, 5), s=1, e=6, se=0.25, act=sw, r=2, proj_splits=2)),
        (mixed_ir(120, k=(3, 5, 7), s=1, e=6, se=0.5, act=sw, exp_splits=2, proj_splits=2),
         mixed_ir(120, k=(3, 5, 7, 9), s=1, e=3, se=0.5, act=sw, r=2, exp_splits=2, proj_splits=2)),
        (mixed_ir(200, k=(3, 5, 7, 9, 11), s=2, e=6, se=0.5, act=sw),
         mixed_ir(200, k=(3, 5, 7, 9), s=1, e=6, se=0.5, act=sw, r=2, proj_splits=2)),
    )
    return NetConfig(stages, act="relu", stem_chs=16, head="conv_bn", head_chs=1536)


MODEL_CONFIGS: dict[str, NetConfig] = {
    "mobilenetv1_100": _mobilenetv1(),
    "mobilenetv2_100": _mobilenetv2(1.0),
    "mobilenetv2_140": _mobilenetv2(1.4),
    "mobilenetv3_large_100": _mobilenetv3_large(),
    "mobilenetv3_small_100": _mobilenetv3_small(),
    "efficientnet_b0": _efficientnet_b0(),
    "mnasnet_a1": _mnasnet_a1(),  # timm's semnasnet_100: MNASNet-A1 with squeeze-excite
    "mixnet_s": _mixnet_s(),
}


# --- the layers --------------------------------------------------------------------------------------------

def split_channels(channels: int, groups: int) -> list[int]:
    """timm's _split_channels: equal parts, the remainder going to the first."""
    parts = [channels // groups] * groups
    parts[0] += channels - sum(parts)
    return parts


class MixedConv2d(nn.Module):
    """timm's MixedConv2d: the channels split into groups, each with its own conv (and kernel size)."""

    def __init__(self, in_chs: int, out_chs: int, kernels: tuple[int, ...], stride: int, depthwise: bool):
        super().__init__()
        self.splits = split_channels(in_chs, len(kernels))
        self.convs = nn.ModuleList(
            nn.Conv2d(i, o, k, stride, k // 2, groups=i if depthwise else 1, bias=False)
            for k, i, o in zip(kernels, self.splits, split_channels(out_chs, len(kernels)))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([conv(part) for conv, part in zip(self.convs, x.split(self.splits, dim=1))], dim=1)


def _conv(in_chs: int, out_chs: int, kernels: tuple[int, ...], stride: int = 1, depthwise: bool = False) -> nn.Module:
    if len(kernels) > 1:
        return MixedConv2d(in_chs, out_chs, kernels, stride, depthwise)
    k = kernels[0]
    return nn.Conv2d(in_chs, out_chs, k, stride, k // 2, groups=in_chs if depthwise else 1, bias=False)


def _conv_bn(in_chs: int, out_chs: int, kernels: tuple[int, ...], act: nn.Module | None, stride: int = 1,
             depthwise: bool = False) -> nn.Sequential:
    layers = [_conv(in_chs, out_chs, kernels, stride, depthwise), nn.BatchNorm2d(out_chs)]
    return nn.Sequential(*layers, act) if act is not None else nn.Sequential(*layers)


class SqueezeExcite(nn.Module):
    def __init__(self, chs: int, reduced_chs: int, act: nn.Module, gate: nn.Module):
        super().__init__()
        self.reduce = nn.Conv2d(chs, reduced_chs, 1, bias=True)
        self.act = act
        self.expand = nn.Conv2d(reduced_chs, chs, 1, bias=True)
        self.gate = gate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean(dim=(2, 3), keepdim=True)
        return x * self.gate(self.expand(self.act(self.reduce(s))))


class Block(nn.Module):
    """Any block of the family: a sequence of layers, plus the input where it has a residual."""

    def __init__(self, layers: list[nn.Module], has_skip: bool):
        super().__init__()
        self.layers = nn.Sequential(*layers)
        self.has_skip = has_skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x) + x if self.has_skip else self.layers(x)


# --- the builder -------------------------------------------------------------------------------------------

class MobileNet(nn.Module):
    """Builds any `NetConfig`: stem (3x3 stride-2 conv-BN-act) -> stages of blocks -> head."""

    def __init__(self, cfg: NetConfig, num_classes: int = 1000, activation: str = "original"):
        super().__init__()
        self.cfg = cfg
        self._swaps = _ACTIVATION_SWAPS[activation]
        stem_chs = cfg.stem_chs if cfg.fix_stem else cfg.channels(cfg.stem_chs * cfg.width_mult)
        self.stem = _conv_bn(3, stem_chs, (3,), self._act(cfg.act), stride=2)
        stages, chs = [], stem_chs
        for stage in cfg.stages:
            blocks = []
            for spec in stage:
                for i in range(spec.repeats):
                    block, chs = self._block(spec, chs, spec.stride if i == 0 else 1)
                    blocks.append(block)
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.head = self._head(chs, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)))

    def _act(self, name: str) -> nn.Module:
        name = self._swaps.get(name, name)
        return _ACTIVATIONS[name](inplace=True)

    def _block(self, spec: BlockSpec, in_chs: int, stride: int) -> tuple[Block, int]:
        cfg = self.cfg
        out_chs = cfg.channels(spec.out_chs * cfg.width_mult)
        act = spec.act or cfg.act
        if spec.kind == "conv":
            layers = [_conv_bn(in_chs, out_chs, spec.kernels, self._act(act), stride)]
        elif spec.kind == "ds":
            layers = [
                _conv_bn(in_chs, in_chs, spec.kernels, self._act(act), stride, depthwise=True),
                self._se(spec, in_chs, act),
                _conv_bn(in_chs, out_chs, (1,), self._act(act) if spec.pw_act else None),
            ]
        else:
            # timm rounds the expanded width with make_divisible(in * e) whatever the width multiplier.
            mid_chs = cfg.channels(in_chs * spec.exp_ratio)
            layers = [
                _conv_bn(in_chs, mid_chs, (1,) * spec.exp_splits, self._act(act)),
                _conv_bn(mid_chs, mid_chs, spec.kernels, self._act(act), stride, depthwise=True),
                self._se(spec, mid_chs, act),
                _conv_bn(mid_chs, out_chs, (1,) * spec.proj_splits, None),
            ]
        has_skip = spec.skip and stride == 1 and in_chs == out_chs
        return Block([m for m in layers if m is not None], has_skip), out_chs

    def _se(self, spec: BlockSpec, chs: int, block_act: str) -> SqueezeExcite | None:
        if not spec.se_ratio:
            return None
        style = self.cfg.se
        # Computed exactly as timm does (ratio divided by the expansion, then times the SE's own input
        # width) so that float rounding lands on the same integer.
        ratio = spec.se_ratio if style.from_expanded else spec.se_ratio / spec.exp_ratio
        reduced = self.cfg.channels(chs * ratio) if style.round_to_divisor else round(chs * ratio)
        return SqueezeExcite(chs, reduced, self._act(style.act or block_act), _GATES[style.gate]())

    def _head(self, in_chs: int, num_classes: int) -> nn.Sequential:
        cfg = self.cfg
        pool = [nn.AdaptiveAvgPool2d(1), nn.Flatten(1)]
        if cfg.head == "conv_bn":
            return nn.Sequential(_conv_bn(in_chs, cfg.head_chs, (1,), self._act(cfg.act)), *pool,
                                 nn.Linear(cfg.head_chs, num_classes))
        if cfg.head == "pool_conv":
            return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(in_chs, cfg.head_chs, 1, bias=True),
                                 self._act(cfg.act), nn.Flatten(1), nn.Linear(cfg.head_chs, num_classes))
        return nn.Sequential(*pool, nn.Linear(in_chs, num_classes))


def build_model(name: str, *, activation: str = "original", num_classes: int = 1000) -> nn.Module:
    """A freshly initialised network. activation="relu" swaps every H-swish for ReLU (MobileOne's timing of
    MobileNetV3); SE gates stay as they are. Models without H-swish are unchanged by it."""
    if activation not in ACTIVATION_MODES:
        raise ValueError(f"activation must be one of {ACTIVATION_MODES}, got {activation!r}")
    if name not in MODEL_CONFIGS:
        raise ValueError(f"unknown model {name!r}; known: {sorted(MODEL_CONFIGS)}")
    return MobileNet(MODEL_CONFIGS[name], num_classes=num_classes, activation=activation)
