"""The paper's Section 3 ablation networks as data: one 30-conv-layer CNN, its activation swapped or its blocks
changed (squeeze-excite, skip connections), and the dynamic activations it needs.

The MobileOne paper times "a 30-layer convolutional neural network" with seven activations and with
architectural blocks, but does not give the network. Ours (docs/ablations.md) is a MobileNetV1-style stack of
depthwise-separable units, every conv followed by BN and the activation under test:

    stem 3x3/2 (32) -> 14 units of [dw 3x3 -> pw 1x1] in four stages (64 x2, 128 x3, 256 x6, 512 x3, each
    stage's first unit stride 2) -> 1x1 conv (1024) -> global pool -> linear (1000)

which is 1 + 28 + 1 = 30 conv layers on the main path (the SE and hyper-function layers are what the
ablations add, so they are not counted). At 224x224 the stages run at 56, 28, 14 and 7.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

import torch
from torch import nn

from bench.zoo.mobilenets import SqueezeExcite, make_divisible

ActivationName = Literal["relu", "gelu", "se_relu", "silu", "dyshiftmax", "dyrelu_a", "dyrelu_b"]


# --- the dynamic activations -------------------------------------------------------------------------------

def _hyper_function(channels: int, outputs: int, reduction: int) -> nn.Sequential:
    """The hyper-function shared by DY-ReLU and Dynamic Shift-Max after the global average pool: FC -> ReLU
    -> FC. The FCs are 1x1 convs on the pooled N x C x 1 x 1 tensor, as in our squeeze-excite: the
    coefficients then stay 4-D and are split along channels, which every converter keeps in its own layout
    (as Linear layers on a flattened vector, litert-torch wrapped every activation in reshapes and NCHW/NHWC
    transposes that have nothing to do with the activation's own cost). Their MACs count like any conv's."""
    hidden = max(4, channels // reduction)
    return nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, outputs, 1))


def _per_piece(values: list[float], width: int) -> torch.Tensor:
    """(1, len(values) * width, 1, 1): each value repeated over its piece's `width` coefficient channels."""
    return torch.tensor(values).repeat_interleave(width).view(1, -1, 1, 1)


class _DyReLU(nn.Module):
    """Dynamic ReLU (Chen et al., ECCV 2020): y_c = max_k (a_c^k(x) x_c + b_c^k(x)), k = 1..K.

    The coefficients are residuals normalised by 2*sigmoid - 1 into [-1, 1] and added to the paper's init:
    a^k = alpha^k + lambda_a * da^k, b^k = beta^k + lambda_b * db^k with alpha^1 = 1, alpha^2 = beta^1 =
    beta^2 = 0, lambda_a = 1.0, lambda_b = 0.5 (so at zero residual DY-ReLU is ReLU). K = 2; the reduction
    of the hyper-function is R = 4 as in the public implementations. `per_channel` picks the variant."""

    per_channel: bool = False
    K = 2
    LAMBDA_A, LAMBDA_B = 1.0, 0.5

    def __init__(self, channels: int, reduction: int = 4):
        super().__init__()
        self.channels = channels
        self.width = channels if self.per_channel else 1  # coefficients per piece: one per channel, or one
        self.fc = _hyper_function(channels, 2 * self.K * self.width, reduction)
        alpha, beta = [1.0] + [0.0] * (self.K - 1), [0.0] * self.K
        # Laid out [a^1..a^K, b^1..b^K], each `width` channels; buffers, so they follow .to() and meta.
        self.register_buffer("init", _per_piece(alpha + beta, self.width), persistent=False)
        self.register_buffer("scale", _per_piece([self.LAMBDA_A] * self.K + [self.LAMBDA_B] * self.K, self.width),
                             persistent=False)

    def coefficients(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """a^1..a^K, b^1..b^K, each N x width x 1 x 1 (width 1 broadcasts over the channels: variant A)."""
        theta = 2 * torch.sigmoid(self.fc(x.mean(dim=(2, 3), keepdim=True))) - 1
        return torch.split(theta * self.scale + self.init, self.width, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.coefficients(x)
        out = x * c[0] + c[self.K]
        for k in range(1, self.K):
            out = torch.maximum(out, x * c[k] + c[self.K + k])
        return out


class DyReLUA(_DyReLU):
    """DY-ReLU-A: one piecewise-linear function for the whole tensor (spatial- and channel-shared)."""

    per_channel = False


class DyReLUB(_DyReLU):
    """DY-ReLU-B: one piecewise-linear function per channel (spatial-shared, channel-wise)."""

    per_channel = True


class DynamicShiftMax(nn.Module):
    """Dynamic Shift-Max (MicroNet, Li et al., ICCV 2021): y_i = max_k sum_j a_{i,j}^k(x) x_{(i + j*C/G) mod C}.

    Each output channel mixes itself (j = 0) with the channel one group over (j = 1): J = 2 channels from
    circularly shifted groups, K = 2 linear pieces, the max taken over them. The J*K coefficients per
    channel come from the same kind of hyper-function as DY-ReLU, normalised as in the authors' code
    (hard-sigmoid, centred, times 2 * act_max with act_max = 2, reduction 4) around their init
    a^1 = (1, 0), a^2 = (0, 0): at zero residual the function is max(x, 0). G = 4 groups here (MicroNet
    ties G to its group convolutions; this network has none). The shift is the paper's group shift, a
    static channel rotation by C/G (the authors' code also rotates by one channel inside each group, a
    permutation of the same cost)."""

    J, K = 2, 2
    ACT_MAX = 2.0

    def __init__(self, channels: int, groups: int = 4, reduction: int = 4):
        super().__init__()
        if channels % groups:
            raise ValueError(f"Dynamic Shift-Max needs channels ({channels}) divisible by its groups ({groups})")
        self.channels, self.shift = channels, channels // groups
        self.fc = _hyper_function(channels, channels * self.J * self.K, reduction)
        self.gate = nn.Hardsigmoid()
        # Laid out [a^1_0, a^1_1, a^2_0, a^2_1], C channels each: piece 1 starts as identity, piece 2 as zero.
        self.register_buffer("init", _per_piece([1.0, 0.0, 0.0, 0.0], channels), persistent=False)

    def coefficients(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """a^k_j for k = 1..K, j = 0..J-1 (k-major), each N x C x 1 x 1, in [-ACT_MAX, ACT_MAX] + init."""
        y = (self.gate(self.fc(x.mean(dim=(2, 3), keepdim=True))) - 0.5) * (2 * self.ACT_MAX)
        return torch.split(y + self.init, self.channels, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.coefficients(x)
        # The group shift: channel i reads channel (i + C/G) mod C. Slices and a concat, which every target
        # expresses (a gather with a constant index would do the same).
        shifted = torch.cat([x[:, self.shift:], x[:, :self.shift]], dim=1)
        out = x * a[0] + shifted * a[1]
        for k in range(1, self.K):
            out = torch.maximum(out, x * a[self.J * k] + shifted * a[self.J * k + 1])
        return out


class SEReLU(nn.Module):
    """The paper's "SE-ReLU": ReLU followed by squeeze-excite (reduction 4, sigmoid gate)."""

    def __init__(self, channels: int):
        super().__init__()
        self.relu = nn.ReLU(inplace=True)
        self.se = _squeeze_excite(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.se(self.relu(x))


def _squeeze_excite(channels: int) -> SqueezeExcite:
    return SqueezeExcite(channels, make_divisible(channels * 0.25), nn.ReLU(inplace=True), nn.Sigmoid())


# name -> (channels -> module): what sits after every BN of the network.
ACTIVATIONS: dict[str, Callable[[int], nn.Module]] = {
    "relu": lambda c: nn.ReLU(inplace=True),
    "gelu": lambda c: nn.GELU(),
    "se_relu": SEReLU,
    "silu": lambda c: nn.SiLU(inplace=True),
    "dyshiftmax": DynamicShiftMax,
    "dyrelu_a": DyReLUA,
    "dyrelu_b": DyReLUB,
}
# name -> the class a built network's activations are (a test checks the network holds these and only these).
ACTIVATION_CLASSES: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU, "gelu": nn.GELU, "se_relu": SEReLU, "silu": nn.SiLU, "dyshiftmax": DynamicShiftMax,
    "dyrelu_a": DyReLUA, "dyrelu_b": DyReLUB,
}


# --- the data ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AblationConfig:
    """The 30-layer network. `stages`: (width, units, stride of the first unit); each unit is a dw 3x3 and a
    pw 1x1 conv. `se`: a squeeze-excite in every unit after its depthwise conv (where MobileNetV3, MNASNet
    and MobileOne put theirs). `skip`: a residual add around every unit whose input and output shapes agree."""

    activation: ActivationName = "relu"
    se: bool = False
    skip: bool = False
    stem_chs: int = 32
    stages: tuple[tuple[int, int, int], ...] = ((64, 2, 2), (128, 3, 2), (256, 6, 2), (512, 3, 2))
    head_chs: int = 1024
    num_classes: int = 1000

    def __post_init__(self):
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {self.activation!r}; known: {', '.join(ACTIVATIONS)}")

    @property
    def conv_layers(self) -> int:
        return 1 + 2 * sum(units for _, units, _ in self.stages) + 1


@dataclass(frozen=True)
class AblationModel:
    """One registered ablation network: its registry name, paper name, family and config."""

    name: str
    paper_name: str
    family: str
    config: AblationConfig


_PAPER_ACTIVATION_NAMES = {
    "relu": "ReLU", "gelu": "GELU", "se_relu": "SE-ReLU", "silu": "SiLU", "dyshiftmax": "Dynamic Shift-Max",
    "dyrelu_a": "DynamicReLU-A", "dyrelu_b": "DynamicReLU-B",
}

# The paper's Table 3 (activations, in its order) then Table 2 (blocks); the block variants share the base
# network, so ablation_block_plain is the same network as ablation_act_relu under the blocks' family.
ABLATION_MODELS: tuple[AblationModel, ...] = (
    *(AblationModel(f"ablation_act_{act}", f"30-layer CNN ({label})", "ablation-activation", AblationConfig(act))
      for act, label in _PAPER_ACTIVATION_NAMES.items()),
    AblationModel("ablation_block_plain", "30-layer CNN (plain)", "ablation-block", AblationConfig()),
    AblationModel("ablation_block_se", "30-layer CNN (+ squeeze-excite)", "ablation-block", AblationConfig(se=True)),
    AblationModel("ablation_block_skip", "30-layer CNN (+ skip connections)", "ablation-block",
                  AblationConfig(skip=True)),
)
MODELS: dict[str, AblationModel] = {m.name: m for m in ABLATION_MODELS}


# --- the builder -------------------------------------------------------------------------------------------

class ConvBNAct(nn.Sequential):
    def __init__(self, in_chs: int, out_chs: int, kernel: int, stride: int, activation: str, depthwise: bool = False):
        super().__init__(
            nn.Conv2d(in_chs, out_chs, kernel, stride, kernel // 2, groups=in_chs if depthwise else 1, bias=False),
            nn.BatchNorm2d(out_chs),
            ACTIVATIONS[activation](out_chs),
        )


class SeparableUnit(nn.Module):
    """dw 3x3 conv-BN-act -> [SE] -> pw 1x1 conv-BN-act, plus the input where `skip` (a second branch that
    keeps the input alive until the add: the memory traffic the paper's skip ablation is about)."""

    def __init__(self, in_chs: int, out_chs: int, stride: int, cfg: AblationConfig):
        super().__init__()
        self.dw = ConvBNAct(in_chs, in_chs, 3, stride, cfg.activation, depthwise=True)
        self.se = _squeeze_excite(in_chs) if cfg.se else nn.Identity()
        self.pw = ConvBNAct(in_chs, out_chs, 1, 1, cfg.activation)
        self.has_skip = cfg.skip and stride == 1 and in_chs == out_chs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.pw(self.se(self.dw(x)))
        return out + x if self.has_skip else out


class AblationNet(nn.Module):
    def __init__(self, cfg: AblationConfig):
        super().__init__()
        self.cfg = cfg
        self.stem = ConvBNAct(3, cfg.stem_chs, 3, 2, cfg.activation)
        units, chs = [], cfg.stem_chs
        for width, count, stride in cfg.stages:
            for i in range(count):
                units.append(SeparableUnit(chs, width, stride if i == 0 else 1, cfg))
                chs = width
        self.units = nn.Sequential(*units)
        self.head = ConvBNAct(chs, cfg.head_chs, 1, 1, cfg.activation)
        self.classifier = nn.Linear(cfg.head_chs, cfg.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(self.units(self.stem(x)))
        return self.classifier(x.mean(dim=(2, 3)))


def build_model(name: str) -> AblationNet:
    """A freshly initialised ablation network (BN left as modules: the exporters fold it, like the baselines')."""
    if name not in MODELS:
        raise ValueError(f"unknown ablation model {name!r}; known: {', '.join(MODELS)}")
    return AblationNet(MODELS[name].config)
