"""fp32 ONNX -> fp16 ONNX, for engines built strongly typed (TensorRT 11 has no FP16 builder flag: a network
computes in the types its ONNX states). Weights, constants and activations become fp16; the input and the
output stay fp32, with one Cast at each end, so every engine of a model (10's weakly typed fp16, 11's
strongly typed fp16, fp32) is fed and read the same way. Parity: the fp16 graph run by ONNX Runtime on the
CPU against the fp32 PyTorch model, cosine >= 0.999.

`to_fp16` is a pure rewrite of the graph; `export` caches it beside the fp32 ONNX it was made from.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench import zoo
from bench.core.artifact import ExportArtifact, ExportRequest
from bench.core.optional import versions_of
from exporters.base import cached_export

TARGET = "onnx_fp16"  # also its module name (exporters.base keys the cache by the exporter's code)
COSINE_MIN = 0.999  # fp16 vs fp32 PyTorch, on the exporter's seeded input
IO_DTYPE = "float32"  # kept at both ends: the casts run inside the engine
FP16_MAX = float(np.finfo(np.float16).max)
CAST_SUFFIX = "_fp16"


class Fp16ExportError(RuntimeError):
    """The fp16 graph failed a check (checker, parity): the cell is recorded as failed."""


@dataclass(frozen=True)
class Fp16Conversion:
    """What the rewrite did, recorded in the artifact."""

    initializers: int  # float initializers converted
    constants: int  # Constant nodes whose float value was converted
    casts_retargeted: int  # Cast(to=FLOAT) nodes inside the graph now casting to FLOAT16
    clipped: int  # weight values beyond fp16's range, saturated to +-65504
    io_dtype: str = IO_DTYPE

    def as_dict(self) -> dict:
        return {"initializers": self.initializers, "constants": self.constants,
                "casts_retargeted": self.casts_retargeted, "clipped": self.clipped, "io_dtype": self.io_dtype}


def _to_half(tensor) -> tuple[object, int]:
    from onnx import numpy_helper

    values = numpy_helper.to_array(tensor)
    clipped = int(np.count_nonzero(np.abs(values) > FP16_MAX))
    half = np.clip(values, -FP16_MAX, FP16_MAX).astype(np.float16)
    return numpy_helper.from_array(half, tensor.name), clipped


def to_fp16(model):
    """A copy of `model` (onnx.ModelProto) computing in fp16 with fp32 input and output; returns (model, Fp16Conversion)."""
    import onnx
    from onnx import TensorProto, helper

    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    n_init = n_const = n_cast = clipped = 0
    for i, init in enumerate(graph.initializer):
        if init.data_type == TensorProto.FLOAT:
            half, c = _to_half(init)
            graph.initializer[i].CopyFrom(half)
            n_init, clipped = n_init + 1, clipped + c
    for node in graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value" and attr.t.data_type == TensorProto.FLOAT:
                    half, c = _to_half(attr.t)
                    attr.t.CopyFrom(half)
                    n_const, clipped = n_const + 1, clipped + c
                elif attr.name in ("value_float", "value_floats"):
                    raise Fp16ExportError(f"Constant node {node.name!r} uses {attr.name}; not converted")
        elif node.op_type == "Cast":
            for attr in node.attribute:
                if attr.name == "to" and attr.i == TensorProto.FLOAT:
                    attr.i = TensorProto.FLOAT16
                    n_cast += 1

    def rename_uses(old: str, new: str) -> None:
        for node in graph.node:
            for j, name in enumerate(node.input):
                if name == old:
                    node.input[j] = new

    # The input stays fp32 and is cast once; the output is produced in fp16 and cast back once.
    head = []
    for inp in graph.input:
        if inp.type.tensor_type.elem_type == TensorProto.FLOAT:
            rename_uses(inp.name, inp.name + CAST_SUFFIX)
            head.append(helper.make_node("Cast", [inp.name], [inp.name + CAST_SUFFIX], to=TensorProto.FLOAT16,
                                         name=f"cast_{inp.name}_to_fp16"))
    tail = []
    for outp in graph.output:
        if outp.type.tensor_type.elem_type == TensorProto.FLOAT:
            half_name = outp.name + CAST_SUFFIX
            rename_uses(outp.name, half_name)
            for node in graph.node:
                for j, name in enumerate(node.output):
                    if name == outp.name:
                        node.output[j] = half_name
            tail.append(helper.make_node("Cast", [half_name], [outp.name], to=TensorProto.FLOAT,
                                         name=f"cast_{outp.name}_to_fp32"))
    nodes = head + list(graph.node) + tail
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.value_info[:]  # the fp32 types recorded for intermediate tensors no longer hold
    return out, Fp16Conversion(n_init, n_const, n_cast, clipped)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    denom = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b) / denom if denom else 0.0


def parity(path: Path, input_name: str, x: np.ndarray, reference: np.ndarray) -> dict:
    """The fp16 graph on ONNX Runtime's CPU (which computes fp16 nodes it has no fp16 kernel for in fp32
    between casts, so each node's output is still rounded to fp16) against the fp32 reference."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    got = sess.run(None, {input_name: x})[0].astype(np.float32)
    cos = cosine(got, reference)
    finite = bool(np.isfinite(got).all())
    return {"cosine": cos, "min_cosine": COSINE_MIN, "max_abs_error": float(np.abs(got - reference).max()),
            "output_scale": float(np.abs(reference).max()), "finite": finite,
            "top1_agrees": bool(np.argmax(got) == np.argmax(reference)),
            "passed": finite and cos >= COSINE_MIN}


def _reference(request: ExportRequest, source: ExportArtifact, x: np.ndarray) -> tuple[np.ndarray, str]:
    """fp32 PyTorch for a model we can build; fp32 ONNX Runtime for a model that exists only as ONNX."""
    spec = zoo.resolve(request.model)
    if spec.onnx_path:
        import onnxruntime as ort

        sess = ort.InferenceSession(source.path, providers=["CPUExecutionProvider"])
        return sess.run(None, {source.input_name: x})[0], "fp32 ONNX (onnxruntime)"
    import torch

    model = zoo.build_model(request)
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy(), "fp32 PyTorch"


def export(request: ExportRequest, cache_dir: Path, source: ExportArtifact | None = None
           ) -> tuple[ExportArtifact, bool]:
    """The fp16 ONNX of a model, from its fp32 ONNX (exported here unless given); cached, keyed by the
    source's hash."""
    import onnx

    if source is None:
        from exporters import onnx as onnx_exporter

        source, _ = onnx_exporter.export(request, cache_dir)
    versions = {**versions_of("onnx", "onnxruntime"), "source_sha256": source.sha256}

    def build(path: Path) -> ExportArtifact:
        model, conv = to_fp16(onnx.load(source.path))
        try:
            onnx.checker.check_model(model, full_check=True)
        except onnx.checker.ValidationError as e:
            raise Fp16ExportError(f"onnx.checker rejected the fp16 graph of {request.model}: "
                                  f"{str(e).splitlines()[0]}") from None
        onnx.save(model, str(path))
        x = np.random.default_rng(0).standard_normal(source.input_shape).astype(np.float32)
        ref, against = _reference(request, source, x)
        check = {**parity(path, source.input_name, x, ref), "reference": against}
        if not check["passed"]:
            raise Fp16ExportError(f"fp16 ONNX of {request.model} differs from {against}: cosine "
                                  f"{check['cosine']:.6f} < {COSINE_MIN}")
        return ExportArtifact(
            model=request.model, target=TARGET, precision="fp16", path=str(path), input_name=source.input_name,
            input_shape=tuple(source.input_shape), input_dtype=IO_DTYPE, output_name=source.output_name,
            sha256="", cache_key="",
            metadata={"source_onnx": source.path, "source_sha256": source.sha256, "conversion": conv.as_dict(),
                      "parity": check})

    return cached_export(TARGET, request, cache_dir, versions, "model.onnx", build)
