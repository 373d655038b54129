"""Model surgery for the deploy form: fuse reparameterizable blocks, swap activations."""
from __future__ import annotations

import copy

from torch import nn


def reparameterize(model: nn.Module) -> nn.Module:
    """A new eval-mode model in which every block able to fuse (anything with `reparameterize()`) is fused."""
    fused = copy.deepcopy(model).eval()
    for module in list(fused.modules()):
        if module is not fused and hasattr(module, "reparameterize"):
            module.reparameterize()
    return fused


def is_reparameterizable(model: nn.Module) -> bool:
    return any(hasattr(m, "reparameterize") for m in model.modules() if m is not model)


def count_modules(model: nn.Module, kind: type[nn.Module]) -> int:
    return sum(isinstance(m, kind) for m in model.modules())
