"""Deploy-form model -> full-integer int8 TFLite (int8 weights, activations, input and output), calibrated.

The path, chosen on measurements (docs/tflite.md): litert-torch converts the PyTorch model to an fp32 TFLite
with NHWC input, then ai-edge-quantizer's static int8 recipe (min/max calibration over a representative set)
quantizes every op, input and output included. No TensorFlow, nothing downloaded, nothing written outside
the artifact's folder. After conversion every op and its tensor types are listed and the export fails if an
op still computes in float, unless `allow_float_ops` is set. Parity against the fp32 PyTorch model (cosine
of logits, top-1 agreement) goes into the artifact's metadata.
"""
from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from bench import zoo
from bench.core.artifact import ExportArtifact, ExportRequest
from bench.core.errors import UserError
from bench.core.optional import require, versions_of
from bench.core.options import as_bool
from exporters.base import cached_export

FILENAME = "model.tflite"
SETTINGS = {  # key -> (default, help); the tflite and android devices share this exporter
    "calibration": (None, "folder of calibration images (else the synthetic set)"),
    "calibration_count": (64, "number of calibration samples"),
    "allow_float_ops": (False, "accept an artifact in which some ops still compute in float"),
    "parity_count": (16, "inputs on which the int8 model is compared with the fp32 PyTorch model"),
    "bn_reestimate": ("auto", "re-estimate BN statistics on the calibration set before fusing "
                              "(auto: only for random-init weights)"),
    "precision": ("int8", "the only precision this exporter makes"),
}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
CALIBRATION_SEED, PARITY_SEED = 0, 1  # disjoint synthetic sets: parity is measured on unseen inputs
SYNTHETIC_OCTAVES = (7, 14, 28, 56, 112, 224)  # noise grid sizes at 224 px (size/32 .. size)
LARGE_TENSOR_BYTES = 32 * 1024 * 1024  # ai-edge-quantizer's threshold for its (broken) chunked path
BN_IMAGES = 16  # enough for per-channel statistics (16 x H x W positions each); more only costs time
FLOAT_TYPES = frozenset({"FLOAT16", "FLOAT32", "FLOAT64", "BFLOAT16", "COMPLEX64", "COMPLEX128"})
SIGNATURE = "serving_default"


def tool_versions() -> dict[str, str]:
    return versions_of("torch", "litert-torch", "litert-converter", "ai-edge-quantizer", "ai-edge-litert")


# ------------------------------------------------------------------------------------------ settings

@dataclass(frozen=True)
class TFLiteSettings:
    calibration: Path | None
    calibration_count: int
    allow_float_ops: bool
    parity_count: int
    bn_reestimate: str  # auto | yes | no


def _as_bool(key: str, value) -> bool:
    return as_bool(key, value, what="tflite setting")


def _as_count(key: str, value, minimum: int) -> int:
    try:
        n = int(value)
    except (TypeError, ValueError):
        n = None
    if n is None or n < minimum or str(value).strip() != str(n):
        raise UserError(f"tflite setting {key}={value!r} must be a whole number >= {minimum}")
    return n


def parse_settings(settings: dict) -> TFLiteSettings:
    unknown = sorted(set(settings) - set(SETTINGS))
    if unknown:
        raise UserError(f"unknown tflite export setting {unknown[0]!r}; known: {', '.join(SETTINGS)}")
    if str(settings.get("precision", "int8")).lower() != "int8":
        raise UserError(f"tflite exports full-integer int8 only (got precision={settings['precision']!r}); "
                        "drop the precision setting")
    calib = settings.get("calibration")
    if calib not in (None, ""):
        calib = Path(str(calib)).expanduser()
        if not calib.is_dir():
            raise UserError(f"calibration folder {calib} not found; point calibration= at a folder of images, "
                            "or leave it out to use the synthetic set")
    get = (lambda key: settings.get(key, SETTINGS[key][0]))
    bn = get("bn_reestimate")
    bn = "auto" if str(bn).lower() == "auto" else ("yes" if _as_bool("bn_reestimate", bn) else "no")
    return TFLiteSettings(
        calibration=calib or None,
        calibration_count=_as_count("calibration_count", get("calibration_count"), 1),
        allow_float_ops=_as_bool("allow_float_ops", get("allow_float_ops")),
        parity_count=_as_count("parity_count", get("parity_count"), 0),
        bn_reestimate=bn)


# -------------------------------------------------------------------------------- representative data

def synthetic_images(count: int, seed: int, size: int = 224) -> np.ndarray:
    """`count` NCHW float32 images, ImageNet-normalized. Per image and channel: uniform noise at six scales
    (size/32 to size px, bilinearly upsampled) summed with amplitude proportional to the scale (a 1/f
    spectrum, as natural images have), then stretched to [0, 1]. I.i.d. pixel noise has no low-frequency
    energy and would calibrate activations to the wrong ranges. Seeded: the same set on every machine."""
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(seed)
    out = torch.zeros(count, 3, size, size)
    for k in range(len(SYNTHETIC_OCTAVES)):
        cells = max(1, size >> (len(SYNTHETIC_OCTAVES) - 1 - k))
        noise = torch.rand(count, 3, cells, cells, generator=g)
        out += F.interpolate(noise, size=(size, size), mode="bilinear", align_corners=False) * (size / cells)
    lo = out.amin(dim=(2, 3), keepdim=True)
    hi = out.amax(dim=(2, 3), keepdim=True)
    pixels = ((out - lo) / (hi - lo).clamp_min(1e-6)).numpy()
    return ((pixels - IMAGENET_MEAN[:, None, None]) / IMAGENET_STD[:, None, None]).astype(np.float32)


def image_files(folder: Path) -> list[Path]:
    files = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise UserError(f"calibration folder {folder} has no images ({', '.join(IMAGE_SUFFIXES)}); add some, "
                        "or leave calibration out to use the synthetic set")
    return files


def load_images(files: list[Path], size: int = 224) -> np.ndarray:
    """The usual ImageNet evaluation transform: shorter side to size * 256/224, centre crop, normalize."""
    from PIL import Image  # pillow comes with litert-torch

    out = np.empty((len(files), 3, size, size), dtype=np.float32)
    short = round(size * 256 / 224)
    for i, path in enumerate(files):
        try:
            with Image.open(path) as im:
                im = im.convert("RGB")
                w, h = im.size
                scale = short / min(w, h)
                im = im.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BILINEAR)
                w, h = im.size
                left, top = (w - size) // 2, (h - size) // 2
                pixels = np.asarray(im.crop((left, top, left + size, top + size)), dtype=np.float32) / 255.0
        except OSError as e:
            raise UserError(f"calibration image {path} cannot be read ({e}); remove it from the folder") from None
        out[i] = ((pixels - IMAGENET_MEAN) / IMAGENET_STD).transpose(2, 0, 1)
    return out


@dataclass(frozen=True)
class Representative:
    calibration: np.ndarray  # NCHW float32, normalized
    parity: np.ndarray
    description: dict


def representative_data(s: TFLiteSettings, size: int = 224) -> Representative:
    """Calibration images from the folder when given (the first `calibration_count` in name order; parity on
    the next `parity_count`, or on the calibration images when the folder has no more), else synthetic."""
    if s.calibration is None:
        return Representative(
            synthetic_images(s.calibration_count, CALIBRATION_SEED, size),
            synthetic_images(s.parity_count, PARITY_SEED, size),
            {"source": "synthetic", "count": s.calibration_count, "seed": CALIBRATION_SEED,
             "generator": f"uniform noise on {list(SYNTHETIC_OCTAVES)}-cell grids (at 224 px) upsampled, "
                          "amplitude proportional to cell size (1/f), stretched to [0,1] per image and channel, "
                          "ImageNet-normalized",
             "parity_inputs": f"synthetic, seed {PARITY_SEED}, disjoint from calibration"})
    files = image_files(s.calibration)
    calib = files[:s.calibration_count]
    held_out = files[len(calib):len(calib) + s.parity_count]
    parity_files = held_out or calib[:s.parity_count]
    return Representative(
        load_images(calib, size), load_images(parity_files, size),
        {"source": "folder", "path": str(s.calibration), "count": len(calib), "images_in_folder": len(files),
         "preprocess": "shorter side 256, centre crop 224, ImageNet mean/std",
         "parity_inputs": ("held-out images of the folder" if held_out
                           else "the calibration images (the folder has no others)")})


# ------------------------------------------------------------------------------------------ model

def reestimate_batchnorm(model, images: np.ndarray, batch: int = 8) -> int:
    """Recompute every BatchNorm's running statistics as the plain average over `images` (train mode,
    momentum=None). With random weights the stored statistics (mean 0, var 1) are not those of the
    activations, which then explode or vanish with depth; re-estimated, each BN normalizes what it sees, so
    activation ranges, and so int8 error, look like those of a trained network. Returns how many BNs."""
    import torch
    from torch import nn

    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    with torch.no_grad():
        for i in range(0, len(images), batch):
            model(torch.from_numpy(images[i:i + batch]))
    for m, momentum in zip(bns, momenta):
        m.momentum = momentum
    model.eval()
    return len(bns)


def build_model(request: ExportRequest, s: TFLiteSettings, images: np.ndarray):
    """(model, bn_note): the deploy-form model to convert. When BN statistics are re-estimated, the train
    form is built, re-estimated, then fused with bench.zoo.reparameterize (the deploy form of those weights)."""

    reestimate = s.bn_reestimate == "yes" or (s.bn_reestimate == "auto" and request.weights is None)
    if not reestimate:
        return build_model(request), "stored statistics kept (weights given, or bn_reestimate=no)"
    model = zoo.create_model(request.model, deploy=False, weights=request.weights, activation=request.activation,
                         **dict(request.overrides))
    images = images[:BN_IMAGES]
    count = reestimate_batchnorm(model, images)
    if request.deploy and zoo.resolve(request.model).reparameterizable:
        model = zoo.reparameterize(model)
    model.build_info = replace(model.build_info, deploy=request.deploy)
    return model.eval(), f"{count} BatchNorm layers re-estimated on the {len(images)} calibration samples"


@contextlib.contextmanager
def _captured_native_output():
    """The converters print progress bars, absl banners and op counts from C++ straight to file descriptors
    1 and 2; hold them in an anonymous temporary file while we convert (a live display above us stays
    readable) and attach their tail to the exception when the conversion fails."""
    import sys
    import tempfile
    import warnings

    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                yield
        except BaseException as e:
            sys.stdout.flush()
            sys.stderr.flush()
            sink.seek(0)
            tail = sink.read().decode(errors="replace").strip().splitlines()[-15:]
            if tail:
                e.add_note("converter output (last lines):\n" + "\n".join(tail))
            raise
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def convert_fp32(model, input_shape: tuple[int, ...]) -> bytes:
    """fp32 TFLite with an NHWC input (the layout TFLite kernels and phone delegates run natively), as bytes."""
    import litert_torch
    import torch

    n, c, h, w = input_shape
    wrapped = litert_torch.to_channel_last_io(model.eval(), args=[0]).eval()
    with torch.no_grad():
        edge = litert_torch.convert(wrapped, (torch.zeros(n, h, w, c),))
    return bytes(edge.model_content())


@contextlib.contextmanager
def _per_channel_large_tensor_fix():
    """ai-edge-quantizer 0.10 quantizes tensors over 32 MiB in a chunked path that cannot broadcast
    per-channel scales and fails (google-ai-edge/ai-edge-quantizer#512, fix proposed in #513): RepVGG-B1/B2's
    last conv weights are 36 MiB. For our call only, such a tensor is quantized in slices along its channel
    axis, each under the limit; quantization is elementwise, so the result is the same as in one piece."""
    from ai_edge_quantizer.algorithms.uniform_quantize import uniform_quantize_tensor as uqt

    original = uqt.uniform_quantize

    def sliced(tensor_data, params, *args, **kwargs):
        scale, zero_point = np.asarray(params.scale), np.asarray(params.zero_point)
        n = tensor_data.shape[0] if tensor_data.ndim > 1 else 0
        if (tensor_data.nbytes <= LARGE_TENSOR_BYTES or n < 2 or params.quantized_dimension != 0
                or scale.ndim == 0 or scale.shape[0] != n or scale.size != n):
            return original(tensor_data, params, *args, **kwargs)
        rows = max(1, LARGE_TENSOR_BYTES // (tensor_data.nbytes // n))
        return np.concatenate([
            original(tensor_data[i:i + rows], replace(params, scale=scale[i:i + rows],
                                                      zero_point=zero_point[i:i + rows]), *args, **kwargs)
            for i in range(0, n, rows)])

    uqt.uniform_quantize = sliced
    try:
        yield
    finally:
        uqt.uniform_quantize = original


def quantize_int8(fp32: bytes, calibration_nhwc: np.ndarray, input_name: str) -> bytes:
    """ai-edge-quantizer's static int8 recipe: per-channel symmetric int8 weights, per-tensor asymmetric int8
    activations from min/max over the calibration set; the graph's input and output become int8 too."""
    from ai_edge_quantizer import quantizer, recipe

    q = quantizer.Quantizer(bytearray(fp32))
    q.load_quantization_recipe(recipe.static_wi8_ai8())
    data = {SIGNATURE: [{input_name: x[None]} for x in calibration_nhwc]}
    result = q.calibrate(data, num_threads=1)
    with _per_channel_large_tensor_fix():
        out = q.quantize(result, enable_progress_bar=False, enable_progress_report=False)
    return bytes(out.quantized_model)


# --------------------------------------------------------------------------------- op inventory

@dataclass(frozen=True)
class OpRecord:
    index: int
    op: str
    input_types: tuple[str, ...]
    output_types: tuple[str, ...]

    @property
    def is_float(self) -> bool:
        return any(t in FLOAT_TYPES for t in self.input_types + self.output_types)


@dataclass(frozen=True)
class TensorIO:
    name: str
    shape: tuple[int, ...]
    dtype: str
    scale: float | None
    zero_point: int | None

    def to_dict(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype, "scale": self.scale,
                "zero_point": self.zero_point}


@dataclass(frozen=True)
class Inventory:
    ops: tuple[OpRecord, ...]
    tensor_types: dict[str, int]
    inputs: tuple[TensorIO, ...]
    outputs: tuple[TensorIO, ...]


def inventory(model_bytes: bytes) -> Inventory:
    """Every op of the main subgraph with its input and output tensor types, read from the flatbuffer."""
    from ai_edge_litert import schema_py_generated as fb
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(model_bytes))
    op_names = {v: k for k, v in vars(fb.BuiltinOperator).items() if not k.startswith("_")}
    type_names = {v: k for k, v in vars(fb.TensorType).items() if not k.startswith("_")}
    graph = model.subgraphs[0]

    def ttype(i: int) -> str:
        return type_names.get(graph.tensors[i].type, str(graph.tensors[i].type))

    ops = []
    for k, op in enumerate(graph.operators):
        code = model.operatorCodes[op.opcodeIndex]
        builtin = max(code.builtinCode, code.deprecatedBuiltinCode)  # the schema keeps two fields (< 127)
        name = op_names.get(builtin, str(builtin))
        if name == "CUSTOM":
            name = f"CUSTOM:{code.customCode.decode() if code.customCode else '?'}"
        ops.append(OpRecord(k, name, tuple(ttype(i) for i in op.inputs if i >= 0),
                            tuple(ttype(i) for i in op.outputs if i >= 0)))
    counts: dict[str, int] = {}
    for t in graph.tensors:
        name = type_names.get(t.type, str(t.type))
        counts[name] = counts.get(name, 0) + 1

    def io(i: int) -> TensorIO:
        t = graph.tensors[i]
        q = t.quantization
        scale = float(q.scale[0]) if q is not None and q.scale is not None and len(q.scale) else None
        zp = int(q.zeroPoint[0]) if q is not None and q.zeroPoint is not None and len(q.zeroPoint) else None
        return TensorIO(t.name.decode() if isinstance(t.name, bytes) else str(t.name),
                        tuple(int(d) for d in t.shape), ttype(i), scale, zp)

    return Inventory(tuple(ops), dict(sorted(counts.items())), tuple(io(i) for i in graph.inputs),
                     tuple(io(i) for i in graph.outputs))


def float_ops(ops: tuple[OpRecord, ...] | list[OpRecord]) -> list[OpRecord]:
    """Ops that touch a float tensor: float compute, or a (de)quantize at the border of a float island."""
    return [op for op in ops if op.is_float]


def op_counts(ops) -> dict[str, int]:
    counts: dict[str, int] = {}
    for op in ops:
        counts[op.op] = counts.get(op.op, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def describe_float_ops(ops) -> str:
    kinds: dict[str, int] = {}
    for op in ops:
        key = f"{op.op}({','.join(op.input_types)}->{','.join(op.output_types)})"
        kinds[key] = kinds.get(key, 0) + 1
    return ", ".join(f"{n}x {k}" for k, n in sorted(kinds.items(), key=lambda kv: -kv[1]))


def check_integer_only(model: str, inv: Inventory, allow_float_ops: bool) -> list[OpRecord]:
    """The float ops left; raises a one-line UserError when there are any and they are not allowed, or when
    the input or output is not int8."""
    floats = float_ops(inv.ops)
    io_types = [t.dtype for t in inv.inputs + inv.outputs]
    if allow_float_ops:
        return floats
    if floats:
        raise UserError(f"tflite export of {model} is not fully integer: {len(floats)} of {len(inv.ops)} ops "
                        f"touch float tensors ({describe_float_ops(floats)}); set allow_float_ops=true to "
                        "accept it, or replace those layers")
    if any(t != "INT8" for t in io_types):
        raise UserError(f"tflite export of {model} has {'/'.join(io_types)} input/output, not int8; "
                        "set allow_float_ops=true to accept it")
    return floats


# ------------------------------------------------------------------------------------------- parity

def _quantize(x: np.ndarray, io: TensorIO) -> np.ndarray:
    if io.dtype != "INT8":
        return x.astype(np.float32)
    return np.clip(np.round(x / io.scale) + io.zero_point, -128, 127).astype(np.int8)


def _dequantize(y: np.ndarray, io: TensorIO) -> np.ndarray:
    if io.scale is None or io.dtype in FLOAT_TYPES:
        return y.astype(np.float32)
    return (y.astype(np.float32) - io.zero_point) * io.scale


def run_tflite(model_bytes: bytes, inputs_nhwc: np.ndarray, inv: Inventory) -> np.ndarray:
    """Float logits of a TFLite model on float NHWC inputs, (de)quantizing at its int8 borders."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=model_bytes, num_threads=1)
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    rows = []
    for x in inputs_nhwc:
        interp.set_tensor(inp["index"], _quantize(x[None], inv.inputs[0]))
        interp.invoke()
        rows.append(_dequantize(interp.get_tensor(out["index"]), inv.outputs[0]).reshape(-1))
    return np.stack(rows)


def parity_figures(got: np.ndarray, ref: np.ndarray) -> dict:
    """Per-sample cosine similarity of logits and top-1 agreement (pure)."""
    got = got.reshape(len(got), -1).astype(np.float64)
    ref = ref.reshape(len(ref), -1).astype(np.float64)
    cos = (got * ref).sum(1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(ref, axis=1) + 1e-30)
    return {"n": int(len(got)), "cosine_mean": float(cos.mean()), "cosine_min": float(cos.min()),
            "top1_agreement": float((got.argmax(1) == ref.argmax(1)).mean())}


def parity(model, int8: bytes, fp32: bytes, inputs_nchw: np.ndarray, inv: Inventory, fp32_inv: Inventory) -> dict:
    import torch

    if len(inputs_nchw) == 0:
        return {"n": 0}
    with torch.no_grad():
        ref = model(torch.from_numpy(inputs_nchw)).numpy()
    nhwc = inputs_nchw.transpose(0, 2, 3, 1)
    figures = parity_figures(run_tflite(int8, nhwc, inv), ref)
    # The fp32 TFLite against PyTorch separates conversion error (should be ~1.0) from int8 error.
    figures["fp32_tflite_cosine_min"] = parity_figures(run_tflite(fp32, nhwc, fp32_inv), ref)["cosine_min"]
    return figures


# ------------------------------------------------------------------------------------------- export

def convert_module(model, name: str, input_shape: tuple[int, ...], s: TFLiteSettings, data: Representative,
                   path: Path) -> dict:
    """Convert, quantize, check and measure parity; write the int8 model at `path`; return its metadata."""
    timings = {}
    with _captured_native_output():
        t0 = time.perf_counter()
        fp32 = convert_fp32(model, input_shape)
        timings["fp32_convert_s"] = time.perf_counter() - t0
        fp32_inv = inventory(fp32)
        t1 = time.perf_counter()
        signature = _signature(fp32)
        int8 = quantize_int8(fp32, data.calibration.transpose(0, 2, 3, 1), signature["inputs"][0])
        timings["quantize_s"] = time.perf_counter() - t1
    inv = inventory(int8)
    floats = check_integer_only(name, inv, s.allow_float_ops)
    t2 = time.perf_counter()
    with _captured_native_output():
        figures = parity(model, int8, fp32, data.parity, inv, fp32_inv)
    timings["parity_s"] = time.perf_counter() - t2
    Path(path).write_bytes(int8)
    return {
        "ops": op_counts(inv.ops), "tensor_types": inv.tensor_types, "all_int8": not floats,
        "float_ops": [{"index": o.index, "op": o.op, "inputs": list(o.input_types),
                       "outputs": list(o.output_types)} for o in floats],
        "input": {**inv.inputs[0].to_dict(), "layout": "NHWC",
                  "encoding": "ImageNet-normalized RGB x, then q = clip(round(x / scale) + zero_point, -128, 127)"},
        "output": {**inv.outputs[0].to_dict(), "encoding": "logits = (q - zero_point) * scale"},
        "signature": {"name": SIGNATURE, **signature}, "parity": figures, "timings_s": timings,
    }


def _signature(model_bytes: bytes) -> dict:
    from ai_edge_litert.interpreter import Interpreter

    sig = Interpreter(model_content=model_bytes).get_signature_list()[SIGNATURE]
    return {"inputs": list(sig["inputs"]), "outputs": list(sig["outputs"])}


def calibration_digest(s: TFLiteSettings) -> str:
    """The content of the images a folder calibration uses: the cache key must change when they do."""
    import hashlib

    h = hashlib.sha256()
    root = Path(s.calibration)
    for path in image_files(root)[:s.calibration_count + s.parity_count]:
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def export(request: ExportRequest, cache_dir: Path) -> tuple[ExportArtifact, bool]:
    require("litert_torch", "tflite", "the tflite exporter")
    require("ai_edge_quantizer", "tflite", "the tflite exporter")
    require("ai_edge_litert", "tflite", "the tflite exporter")
    s = parse_settings(dict(request.settings))
    if s.calibration is not None:  # keyed by the images' content, not only the folder's name
        request = replace(request, settings=tuple(sorted(
            (*request.settings, ("calibration_images_sha256", calibration_digest(s))))))

    def build(path: Path) -> ExportArtifact:

        start = time.perf_counter()
        input_shape = zoo.input_shape(request)
        data = representative_data(s, input_shape[-1])
        t0 = time.perf_counter()
        model, bn_note = build_model(request, s, data.calibration)
        bn_s = time.perf_counter() - t0
        meta = convert_module(model, request.model, input_shape, s, data, path)
        meta["timings_s"] = {"bn_s": bn_s, **meta["timings_s"], "total_s": time.perf_counter() - start}
        n, c, h, w = input_shape
        return ExportArtifact(
            model=request.model, target="tflite", precision="int8", path=str(path),
            input_name=meta["signature"]["inputs"][0], input_shape=(n, h, w, c),
            input_dtype=meta["input"]["dtype"].lower(), output_name=meta["signature"]["outputs"][0],
            sha256="", cache_key="",
            metadata={"converter": "litert-torch fp32 (NHWC input) -> ai-edge-quantizer static_wi8_ai8 "
                                   "(min/max calibration, per-channel int8 weights)",
                      "calibration": data.description, "batchnorm": bn_note,
                      "allow_float_ops": s.allow_float_ops, **meta, "build": model.build_info.as_dict()})

    return cached_export("tflite", request, cache_dir, tool_versions(), FILENAME, build)
