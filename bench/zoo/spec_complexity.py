"""Complexity of a registered model's deploy form, cached on disk by the model's config and the zoo's code."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from bench.core.io import atomic_write_json, default_cache_dir, read_json
from bench.zoo.code_hash import zoo_code_hash
from bench.zoo.complexity import Complexity, complexity, onnx_complexity
from bench.zoo.registry import create_model, resolve


def spec_complexity(name: str, *, activation: str = "relu", cache_dir: Path | None = None,
                    input_size: tuple[int, ...] | None = None, **overrides) -> Complexity:
    """Params and MACs of a model's deploy form at `input_size` (NCHW; default: the model's own)."""
    spec = resolve(name)
    size = tuple(input_size or spec.input_size)
    key_src = json.dumps([spec.name, activation, sorted(overrides.items()), size, zoo_code_hash(),
                          spec.source_digest], default=str)
    key = hashlib.sha256(key_src.encode()).hexdigest()[:24]
    path = (cache_dir or default_cache_dir()) / "complexity.json"
    cache = read_json(path, default={}) or {}
    if key in cache:
        return Complexity(**cache[key])
    if spec.onnx_path:
        result = onnx_complexity(Path(spec.onnx_path), size)
    elif spec.is_user:  # a user's deploy step may do real arithmetic: count a real (CPU) build
        result = complexity(create_model(spec.name, deploy=True, activation=activation, **overrides), size)
    else:
        # On the meta device nothing is computed, so even RepVGG-B2 is counted in milliseconds.
        with torch.device("meta"):
            model = create_model(spec.name, deploy=True, activation=activation, **overrides)
        result = complexity(model, size)
    cache = read_json(path, default={}) or {}
    cache[key] = {"params": result.params, "macs": result.macs}
    try:
        atomic_write_json(path, cache)
    except OSError:
        pass  # an unwritable cache only costs a recount next time
    return result
