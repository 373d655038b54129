"""The model zoo: the 20 models of the MobileOne latency study (and MobileOne's micro variants).

The names below are loaded on first use (PEP 562): `bench.zoo.code_hash`, which the exporters' cache keys
need, must not pay for importing torch, and neither must the GPU modules that import it.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "BuildInfo": "registry", "ModelSpec": "registry", "create_model": "registry", "list_models": "registry",
    "model_specs": "registry", "resolve": "registry", "Complexity": "complexity", "complexity": "complexity",
    "reparameterize": "surgery", "spec_complexity": "spec_complexity", "build_model": "build", "input_shape": "build", "model_input_shape": "build",
    "zoo_code_hash": "code_hash", "register_user_models": "registry", "register_recorded": "registry",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'bench.zoo' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"bench.zoo.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value
