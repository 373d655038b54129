"""Deploy-form model -> Core ML ML Program (.mlpackage), fp16 compute, iOS 16+; validated from its spec on any OS."""
from __future__ import annotations

import collections
import contextlib
import io
import logging
import math
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from bench import zoo
from bench.core.artifact import ExportArtifact, ExportRequest
from bench.core.errors import UserError
from bench.core.optional import require, versions_of
from exporters.base import cached_export

INPUT_NAME, OUTPUT_NAME = "input", "logits"
FILENAME = "model.mlpackage"
DEFAULT_TARGET = "iOS16"  # the first target with fp16 tensor I/O (Core ML spec 7, MIL opset CoreML6)
# Core ML spec version each deployment target produces. An ML Program needs spec >= 6 (iOS 15 / macOS 12).
SPEC_VERSIONS = {"iOS15": 6, "macOS12": 6, "iOS16": 7, "macOS13": 7, "iOS17": 8, "macOS14": 8,
                 "iOS18": 9, "macOS15": 9, "iOS26": 10, "macOS26": 10}
FP16_IO_MIN_SPEC = 7
FP16_MAX = 65504.0
IO_PRECISIONS = ("fp16", "fp32")
# The ImageNet normalization the zoo's models expect, folded into the package when the input is an image.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SETTINGS_HELP = ("minimum_deployment_target (iOS15..iOS26, macOS12..macOS26; default iOS16), io_precision "
                 "(fp16|fp32; default fp16), image_input (true|false; default false: a 224x224 RGB image input, "
                 "as the authors' ModelBench app feeds, with the ImageNet normalization inside the model)")
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


class ExportError(RuntimeError):
    """Conversion failed or the package failed a spec check: the cell is recorded as failed."""


@dataclass(frozen=True)
class CoreMLSettings:
    minimum_deployment_target: str = DEFAULT_TARGET
    io_precision: str = "fp16"
    image_input: bool = False

    @property
    def spec_version(self) -> int:
        return SPEC_VERSIONS[self.minimum_deployment_target]


def _as_bool(key: str, value) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise UserError(f"Core ML setting {key}={value!r} is not a boolean; use {key}=true or {key}=false")


def parse_settings(settings: tuple[tuple[str, object], ...] | dict) -> CoreMLSettings:
    """The exporter's settings from a request, checked: every problem names the allowed values."""
    given = dict(settings)
    unknown = sorted(set(given) - set(CoreMLSettings.__dataclass_fields__))
    if unknown:
        raise UserError(f"unknown Core ML setting {', '.join(unknown)}; known settings: {SETTINGS_HELP}")
    target = str(given.get("minimum_deployment_target", DEFAULT_TARGET))
    canonical = {k.lower(): k for k in SPEC_VERSIONS}
    if target.lower() not in canonical:
        raise UserError(f"Core ML minimum_deployment_target {target!r} is not supported; use one of "
                        f"{', '.join(SPEC_VERSIONS)} (an ML Program needs iOS 15 / macOS 12 or later)")
    target = canonical[target.lower()]
    io_precision = str(given.get("io_precision", "fp16")).lower()
    if io_precision not in IO_PRECISIONS:
        raise UserError(f"Core ML io_precision {io_precision!r} is not supported; use fp16 or fp32")
    s = CoreMLSettings(target, io_precision, _as_bool("image_input", given.get("image_input", False)))
    if s.io_precision == "fp16" and s.spec_version < FP16_IO_MIN_SPEC:
        raise UserError(f"fp16 inputs and outputs need iOS 16 / macOS 13 or later, not {target}; "
                        "set io_precision=fp32 or minimum_deployment_target=iOS16")
    return s


class ImageNormalized(torch.nn.Module):
    """The model behind an image input: Core ML's image preprocessing has one scale for all channels
    (y = scale * pixel + bias[c]), so it does x/255 - mean[c] and this wrapper divides by std[c]."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model
        self.register_buffer("inv_std", 1.0 / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, x):
        return self.model(x * self.inv_std)


def tool_versions() -> dict[str, str]:
    return versions_of("coremltools", "torch", "numpy")


# ---- validation of a saved package, from its spec alone (no compilation: works on Linux) ----

@dataclass(frozen=True)
class ExpectedPackage:
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    io_precision: str  # fp16 | fp32
    image_input: bool
    spec_version: int


def _feature(f) -> dict:
    from coremltools.proto import FeatureTypes_pb2 as ft

    kind = f.type.WhichOneof("Type")
    if kind == "multiArrayType":
        arr = f.type.multiArrayType
        return {"name": f.name, "kind": "multiArray", "shape": [int(d) for d in arr.shape],
                "dtype": ft.ArrayFeatureType.ArrayDataType.Name(arr.dataType)}
    if kind == "imageType":
        img = f.type.imageType
        return {"name": f.name, "kind": "image", "width": int(img.width), "height": int(img.height),
                "color_space": ft.ImageFeatureType.ColorSpace.Name(img.colorSpace)}
    return {"name": f.name, "kind": kind}


def spec_facts(spec) -> dict:
    """What a package's protobuf says: model type, spec version, I/O, MIL op counts, weight dtypes."""
    import_coremltools()
    from coremltools.proto import MIL_pb2

    facts: dict = {"type": spec.WhichOneof("Type"), "spec_version": int(spec.specificationVersion),
                   "inputs": [_feature(f) for f in spec.description.input],
                   "outputs": [_feature(f) for f in spec.description.output]}
    if facts["type"] != "mlProgram":
        return facts
    main = spec.mlProgram.functions["main"]
    block = main.block_specializations[main.opset]
    ops = collections.Counter(op.type for op in block.operations)
    blobs: collections.Counter = collections.Counter()
    blob_values: collections.Counter = collections.Counter()
    inline_float: collections.Counter = collections.Counter()
    for op in block.operations:
        if op.type != "const":
            continue
        value = op.attributes["val"]
        dtype = MIL_pb2.DataType.Name(value.type.tensorType.dataType)
        if value.WhichOneof("value") == "blobFileValue":
            blobs[dtype] += 1
            blob_values[dtype] += math.prod(int(d.constant.size) for d in value.type.tensorType.dimensions)
        elif dtype.startswith("FLOAT"):
            inline_float[dtype] += 1
    facts.update({"opset": main.opset, "mil_ops": dict(sorted(ops.items())), "weight_blobs": dict(blobs),
                  "weight_values": dict(blob_values), "inline_float_consts": dict(inline_float)})
    return facts


def check_facts(facts: dict, expected: ExpectedPackage) -> list[str]:
    """Every way the package differs from what was asked for (empty when it is right). Pure."""
    problems = []
    if facts["type"] != "mlProgram":
        return [f"model type is {facts['type']}, not mlProgram"]
    if facts["spec_version"] != expected.spec_version:
        problems.append(f"spec version {facts['spec_version']}, expected {expected.spec_version}")
    array_dtype = "FLOAT16" if expected.io_precision == "fp16" else "FLOAT32"
    ins, outs = facts["inputs"], facts["outputs"]
    if [f["name"] for f in ins] != [INPUT_NAME]:
        problems.append(f"inputs {[f['name'] for f in ins]}, expected ['{INPUT_NAME}']")
    elif expected.image_input:
        want = {"name": INPUT_NAME, "kind": "image", "width": expected.input_shape[3],
                "height": expected.input_shape[2], "color_space": "RGB"}
        if ins[0] != want:
            problems.append(f"input {ins[0]}, expected {want}")
    else:
        want = {"name": INPUT_NAME, "kind": "multiArray", "shape": list(expected.input_shape), "dtype": array_dtype}
        if ins[0] != want:
            problems.append(f"input {ins[0]}, expected {want}")
    want_out = {"name": OUTPUT_NAME, "kind": "multiArray", "shape": list(expected.output_shape), "dtype": array_dtype}
    if len(outs) != 1 or outs[0] != want_out:
        problems.append(f"outputs {outs}, expected [{want_out}]")
    blobs = facts.get("weight_blobs", {})
    if not blobs.get("FLOAT16"):
        problems.append("no fp16 weights")
    wide = {k: v for k, v in blobs.items() if k != "FLOAT16"}
    if wide:
        problems.append(f"weights not in fp16: {wide} blobs")
    return problems


def validate_package(path: Path, expected: ExpectedPackage) -> dict:
    ct = import_coremltools()
    facts = spec_facts(ct.utils.load_spec(str(path)))
    problems = check_facts(facts, expected)
    if problems:
        raise ExportError(f"Core ML package {path} failed its spec check: {'; '.join(problems)}")
    return facts


# ---- conversion ----

class _LogRecords(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@contextlib.contextmanager
def _captured(notes: list[str]):
    """Keep the converter's warnings (Python warnings and the coremltools logger) as notes for the artifact;
    its progress bars and log lines go nowhere, so `bench export --models all` prints one line per model."""
    handler = _LogRecords()
    logger = logging.getLogger("coremltools")
    saved = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("always")
            yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = saved
        seen = collections.Counter(
            [f"{w.category.__name__}: {w.message}" for w in caught if w.category is not ResourceWarning]
            + [f"coremltools: {m}" for m in handler.messages])
        notes.extend(f"{text} (x{n})" if n > 1 else text for text, n in seen.items())


def import_coremltools():
    """coremltools, imported quietly: on import it logs that this torch is untested (recorded instead by
    `untested_torch_note`) and, off macOS, that its runtime proxies are absent (expected: no prediction)."""
    import sys

    if "coremltools" in sys.modules:
        return sys.modules["coremltools"]
    saved = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            import coremltools
    finally:
        logging.disable(saved)
    return coremltools


def untested_torch_note() -> str | None:
    """coremltools says which torch it was tested with; a newer one converts here but is worth recording."""
    import_coremltools()
    from coremltools import _deps
    from packaging.version import Version

    tested = getattr(_deps, "_TORCH_MAX_VERSION", None)
    have = torch.__version__.split("+")[0]
    if tested and Version(have) > Version(tested):
        return f"torch {have} is newer than {tested}, the last version coremltools {_version()} was tested with"
    return None


def _version() -> str:
    return versions_of("coremltools")["coremltools"]


def convert(model: torch.nn.Module, x: torch.Tensor, settings: CoreMLSettings, path: Path, notes: list[str],
            description: str = "") -> dict:
    """torch.export -> decomposed ATen graph -> ML Program saved at `path`. Returns timings in seconds."""
    import numpy as np

    ct = import_coremltools()
    net = ImageNormalized(model).eval() if settings.image_input else model
    io_type = np.float16 if settings.io_precision == "fp16" else np.float32
    if settings.image_input:
        # Core ML turns the app's 32BGRA pixel buffer into RGB planes, then scale * pixel + bias per channel.
        inp = ct.ImageType(name=INPUT_NAME, shape=tuple(x.shape), scale=1 / 255.0,
                           bias=[-m for m in IMAGENET_MEAN], color_layout=ct.colorlayout.RGB)
    else:
        inp = ct.TensorType(name=INPUT_NAME, shape=tuple(x.shape), dtype=io_type)
    t0 = time.perf_counter()
    with _captured(notes):
        try:
            # coremltools refuses torch.export's TRAINING dialect: it converts the decomposed ATen graph.
            program = torch.export.export(net, (x,)).run_decompositions({})
        except Exception as e:
            raise ExportError(f"torch.export failed: {type(e).__name__}: {_first_line(e)}") from e
        t1 = time.perf_counter()
        try:
            mlmodel = ct.convert(program, convert_to="mlprogram", compute_precision=ct.precision.FLOAT16,
                                 minimum_deployment_target=ct.target[settings.minimum_deployment_target],
                                 inputs=[inp], outputs=[ct.TensorType(name=OUTPUT_NAME, dtype=io_type)])
        except Exception as e:
            raise ExportError(f"coremltools.convert failed: {type(e).__name__}: {_first_line(e)}") from e
    t2 = time.perf_counter()
    mlmodel.short_description = description
    mlmodel.input_description[INPUT_NAME] = (
        "224x224 RGB image; ImageNet normalization is inside the model" if settings.image_input
        else f"{settings.io_precision} tensor 1x3x224x224, ImageNet-normalized RGB")
    mlmodel.output_description[OUTPUT_NAME] = "class logits (1x1000)"
    mlmodel.save(str(path))
    return {"torch_export_s": round(t1 - t0, 3), "convert_s": round(t2 - t1, 3),
            "save_s": round(time.perf_counter() - t2, 3)}


def activation_peak(model: torch.nn.Module, x: torch.Tensor) -> tuple[tuple[int, ...], float]:
    """Output shape, and the largest |value| any module outputs on `x` (fp16 overflows above 65504)."""
    peak = [0.0]

    def hook(_module, _inputs, out):
        if isinstance(out, torch.Tensor) and out.is_floating_point():
            peak[0] = max(peak[0], float(out.detach().abs().max()))

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    try:
        with torch.no_grad():
            y = model(x)
    finally:
        for h in handles:
            h.remove()
    return tuple(y.shape), peak[0]


def fp16_range_note(peak: float) -> str | None:
    # Untrained fused models can overflow fp16 (MobileOne-S0 at init: 8.1e5). Latency does not depend on the
    # values, but the package's outputs are then inf/NaN, so a parity check on them means nothing.
    if peak > FP16_MAX:
        return (f"activations reach {peak:.3g} on a standard-normal input with these weights, above fp16's "
                f"{FP16_MAX:g}: the package's outputs overflow (timing is still meaningful: the work does not "
                "depend on the values); export trained weights for meaningful outputs")
    return None


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:300] if text else "(no message)"


def export(request: ExportRequest, cache_dir: Path) -> tuple[ExportArtifact, bool]:
    require("coremltools", "coreml", "Core ML export")
    settings = parse_settings(request.settings)

    def build(path: Path) -> ExportArtifact:

        model = zoo.build_model(request)
        shape = zoo.input_shape(request)
        x = torch.randn(shape, generator=torch.Generator().manual_seed(0))
        out_shape, peak = activation_peak(model, x)
        notes: list[str] = []
        for note in (untested_torch_note(), fp16_range_note(peak)):
            if note:
                notes.append(note)
        try:
            timings = convert(model, x, settings, path, notes,
                              description=f"{request.model} (mobileone-bench, deploy form, fp16)")
        except ExportError as e:
            raise ExportError(f"Core ML conversion of {request.model}: {e}") from e.__cause__
        expected = ExpectedPackage(shape, out_shape, settings.io_precision, settings.image_input,
                                   settings.spec_version)
        facts = validate_package(path, expected)
        return ExportArtifact(
            model=request.model, target="coreml", precision="fp16", path=str(path), input_name=INPUT_NAME,
            input_shape=shape, input_dtype="image-rgb8" if settings.image_input else
            ("float16" if settings.io_precision == "fp16" else "float32"),
            output_name=OUTPUT_NAME, sha256="", cache_key="",
            metadata={"settings": asdict(settings), "compute_precision": "fp16", "output_shape": list(out_shape),
                      "spec": facts, "warnings": notes, "timings_s": timings,
                      "fp16_range": {"max_abs_activation": peak, "fp16_max": FP16_MAX, "fits": peak <= FP16_MAX,
                                     "input": "standard normal, seed 0"},
                      "normalization": {"mean": IMAGENET_MEAN, "std": IMAGENET_STD, "scale": 1 / 255.0,
                                        "where": "image preprocessing (scale, bias) + a mul by 1/std"}
                      if settings.image_input else None,
                      "build": model.build_info.as_dict()})

    return cached_export("coreml", request, cache_dir, tool_versions(), FILENAME, build)
