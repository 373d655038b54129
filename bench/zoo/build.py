"""The PyTorch model an export request names."""
from __future__ import annotations

from bench.core.artifact import ExportRequest
from bench.zoo.registry import create_model


def build_model(request: ExportRequest):
    """The model of `request`, in the form it asks for (deploy or train), with its weights."""
    return create_model(request.model, deploy=request.deploy, weights=request.weights,
                        activation=request.activation, **dict(request.overrides))
