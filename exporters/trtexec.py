"""ONNX -> TensorRT engine built by NVIDIA's trtexec (the `via = "trtexec"` path of the trt device): needs the
trtexec binary and a GPU, not the tensorrt Python package. fp16 is built as this trtexec can: `--fp16` on the
fp32 ONNX (TensorRT 10), or the fp16 ONNX as typed (11, which has no --fp16); the artifact records which. Keyed and cached like every other artifact: the
ONNX's hash, trtexec's version, the GPU model and the build settings."""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from bench.core.artifact import ExportArtifact, ExportRequest
from bench.core.errors import MissingBackendError, UserError
from bench.core.io import read_json
from bench.env.gpu import GpuIdentity, gpu_identity
from bench.tools import trtexec as tool
from exporters.base import cached_export
from exporters.tensorrt import ENGINE_FILE, precision_counts, timing_cache_path

TARGET = "trtexec"
PRECISIONS = ("fp16", "fp32")
OWN_SETTINGS = ("precision", "opt_level", "trtexec")  # ours; the ONNX export never sees them
BUILD_TIMEOUT_S = 1800.0


def onnx_request(request: ExportRequest) -> ExportRequest:
    return replace(request, settings=tuple((k, v) for k, v in request.settings if k not in OWN_SETTINGS))


def _settings(request: ExportRequest) -> tool.TrtexecSettings:
    precision = str(request.setting("precision", "fp16")).lower()
    if precision not in PRECISIONS:
        raise UserError(f"trt precision {precision!r} is not supported by trtexec builds; use fp16 or fp32")
    return tool.TrtexecSettings(precision=precision, opt_level=int(request.setting("opt_level", 3)))


def _gpu() -> GpuIdentity:
    try:  # trtexec builds on CUDA device 0 (after CUDA_VISIBLE_DEVICES), like the other GPU runners by default
        return gpu_identity(0)
    except MissingBackendError:  # trtexec will say what it built on; the key then names no GPU
        return GpuIdentity("unknown-gpu", "unknown")


def export(request: ExportRequest, cache_dir: Path) -> tuple[ExportArtifact, bool]:
    settings = _settings(request)  # bad settings fail before the ONNX export runs
    exe = tool.find_trtexec(request.setting("trtexec"))
    help_proc = tool.run_tool([exe, "--help"], timeout=120)
    help = tool.parse_help(help_proc.stdout + help_proc.stderr)
    tool.check_core_flags(help)
    # Imported here, not at the top: the ONNX exporter pulls in torch, which importing the trt device's
    # modules must not (tests/devices/test_gpu_imports.py).
    from exporters import onnx as onnx_exporter, onnx_fp16

    source, _ = onnx_exporter.export(onnx_request(request), cache_dir)
    build_path = "fp32"
    if settings.precision == "fp16":
        build_path = help.fp16_build
        if build_path == tool.STRONGLY_TYPED_FP16:  # 11: no --fp16; the precision is in the graph
            source, _ = onnx_fp16.export(onnx_request(request), cache_dir, source)
    gpu = _gpu()
    version = help.version or "unknown"
    versions = {"trtexec": version, "gpu": gpu.name, "compute_capability": gpu.compute_capability,
                "onnx_sha256": source.sha256}
    timing_cache = timing_cache_path(Path(cache_dir), gpu.name, gpu.compute_capability, version, tool=TARGET)

    def build(path: Path) -> ExportArtifact:
        layers = path.parent / "layers.json"
        args, notes = tool.build_command(exe, Path(source.path), path, layers, timing_cache, settings, help)
        timing_cache.parent.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        proc = tool.run_tool(args, timeout=BUILD_TIMEOUT_S)
        log = tool.parse_log(proc.stdout + proc.stderr)
        if proc.returncode != 0 or not log["passed"] or not path.exists():
            raise tool.failure("engine build", proc, log)
        (path.parent / "build.log").write_text(proc.stdout + proc.stderr)
        meta = {"onnx_path": source.path, "onnx_sha256": source.sha256, "onnx_target": source.target,
                "onnx_parity": source.metadata.get("parity"), "build_path": build_path, "trtexec": exe, "tensorrt": version,
                "gpu": gpu.name, "compute_capability": gpu.compute_capability, "opt_level": settings.opt_level,
                "build": {"command": args, "notes": notes, "wall_s": time.perf_counter() - t0,
                          "build_s": log.get("build_s"), "device": log.get("device"),
                          "compute_capability": log.get("compute_capability"), "warnings": log["warnings"],
                          "precision_counts": _layer_counts(layers)}}
        return ExportArtifact(
            model=request.model, target=TARGET, precision=settings.precision, path=str(path),
            input_name=source.input_name, input_shape=tuple(source.input_shape), input_dtype=source.input_dtype,
            output_name=source.output_name, sha256="", cache_key="", metadata=meta)

    return cached_export(TARGET, request, cache_dir, versions, ENGINE_FILE, build)


def _layer_counts(layers_json: Path) -> dict | None:
    """Per-precision layer counts of trtexec's engine (its --exportLayerInfo is the engine inspector's
    JSON), for comparison with our own engine's."""
    data = read_json(layers_json)
    if data is None:
        return None
    try:
        return precision_counts(data)
    except ValueError as e:
        return {"error": str(e)}
