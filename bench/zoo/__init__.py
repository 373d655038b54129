"""The model zoo: the 20 models of the MobileOne latency study (and MobileOne's micro variants)."""
from bench.zoo.complexity import Complexity, complexity
from bench.zoo.registry import BuildInfo, ModelSpec, create_model, list_models, registry, resolve
from bench.zoo.surgery import reparameterize
from bench.zoo.spec_complexity import spec_complexity

__all__ = ["BuildInfo", "Complexity", "ModelSpec", "complexity", "create_model", "list_models", "registry",
           "reparameterize", "resolve", "spec_complexity"]
