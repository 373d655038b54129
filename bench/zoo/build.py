"""The PyTorch model an export request names."""
from __future__ import annotations

from bench.core.artifact import ExportRequest
from bench.zoo.registry import create_model, resolve


def input_shape(request: ExportRequest) -> tuple[int, ...]:
    """The NCHW input a request is exported and timed at: the suite's --input-size/--batch, else the model's
    declared size (224x224 for the zoo) at batch 1."""
    return tuple(request.input_shape) if request.input_shape else tuple(resolve(request.model).input_size)


def build_model(request: ExportRequest):
    """The model of `request`, in the form it asks for (deploy or train), with its weights; `input_shape` on
    it says what input the runners feed it."""
    model = create_model(request.model, deploy=request.deploy, weights=request.weights,
                         activation=request.activation, **dict(request.overrides))
    model.input_shape = input_shape(request)
    return model


def model_input_shape(model) -> tuple[int, ...]:
    """The NCHW input a built model is fed: what the suite asked (`build_model` sets `input_shape`), else the
    size the registry declares for it (224x224 for the zoo), else 1x3x224x224."""
    if getattr(model, "input_shape", None):
        return tuple(model.input_shape)
    info = getattr(model, "build_info", None)
    return tuple(resolve(info.name).input_size) if info is not None else (1, 3, 224, 224)
