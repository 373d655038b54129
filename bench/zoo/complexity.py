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


def onnx_complexity(path, input_size: tuple[int, ...]) -> Complexity:
    """Params and MACs of an ONNX graph: parameters are the initializers' elements; MACs are counted for
    Conv, ConvTranspose, Gemm and MatMul from the shapes ONNX's shape inference gives at `input_size`."""
    import math

    import onnx
    from onnx import shape_inference

    model = onnx.load(str(path))
    inputs = [i for i in model.graph.input if i.name not in {x.name for x in model.graph.initializer}]
    for inp, size in zip(inputs[:1], [input_size]):
        for dim, value in zip(inp.type.tensor_type.shape.dim, size):
            dim.ClearField("dim_param")
            dim.dim_value = int(value)
    model = shape_inference.infer_shapes(model)
    shapes: dict[str, tuple[int, ...]] = {}
    for vi in [*model.graph.value_info, *model.graph.input, *model.graph.output]:
        dims = vi.type.tensor_type.shape.dim
        if dims and all(d.HasField("dim_value") for d in dims):
            shapes[vi.name] = tuple(d.dim_value for d in dims)
    weights = {w.name: tuple(w.dims) for w in model.graph.initializer}
    params = sum(math.prod(w.dims) for w in model.graph.initializer if len(w.dims) > 0)
    macs = 0
    for node in model.graph.node:
        if node.op_type in ("Conv", "ConvTranspose") and len(node.input) > 1 and node.input[1] in weights:
            w = weights[node.input[1]]  # (out, in / groups, kh, kw)
            out = shapes.get(node.output[0])
            if out:
                macs += math.prod(out) * math.prod(w[1:]) if node.op_type == "Conv" else \
                    math.prod(shapes.get(node.input[0], (0,))) * math.prod(w[1:])
        elif node.op_type in ("Gemm", "MatMul"):
            a = shapes.get(node.input[0]) or weights.get(node.input[0])
            out = shapes.get(node.output[0])
            if a and out:
                macs += math.prod(out) * a[-1] if not (node.op_type == "Gemm" and _attr(node, "transA")) else \
                    math.prod(out) * a[0]
    return Complexity(int(params), int(macs))


def _attr(node, name: str) -> int:
    return next((a.i for a in node.attribute if a.name == name), 0)
