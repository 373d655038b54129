"""ONNX -> serialized TensorRT engine: fp16 (or fp32), static shape, a persistent timing cache, and the
precision every layer really runs in, read back from the engine inspector.

Written against the TensorRT 10 and 11 Python APIs. fp16 is built two ways, and the artifact records which
(`metadata["build_path"]`): on 10, the fp32 ONNX as a weakly typed network with BuilderFlag.FP16 (TensorRT
picks fp16 kernels where faster); on 11, which removed that flag and types every network strongly, the fp16
ONNX of exporters/onnx_fp16.py (parity-checked against fp32 PyTorch) as a strongly typed network. The
decisions (builder configuration, the cache key's parts, inspector JSON -> precision counts, what to do with
a refused timing cache) are pure functions or take the builder as an argument; `export()` needs a GPU.
"""
from __future__ import annotations

import json
import re
import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

from bench.core.artifact import ExportArtifact, ExportRequest
from bench.core.errors import UserError
from bench.core.io import atomic_write_bytes, atomic_write_json
from bench.core.optional import require
from bench.env.gpu import gpu_identity
from bench.tools.trtexec import STRONGLY_TYPED_FP16, WEAKLY_TYPED_FP16
from exporters.base import cached_export

TARGET = "tensorrt"
ENGINE_FILE = "model.engine"
LAYERS_FILE = "layers.json"  # the engine inspector's JSON, kept beside the engine
PRECISIONS = ("fp16", "fp32")
DEFAULT_PRECISION = "fp16"
OPT_LEVELS = range(0, 6)  # IBuilderConfig.builder_optimization_level: 0..5
DEFAULT_OPT_LEVEL = 3  # TensorRT's own default
OWN_SETTINGS = ("precision", "opt_level", "trtexec")  # ours; the ONNX export never sees them
# Layers that move data between formats rather than compute: counted apart so that "fp16 layers" means
# the network's own layers. TensorRT names these LayerType values in the inspector's JSON.
BOOKKEEPING_LAYER_TYPES = {"Reformat", "NoOp", "Shuffle", "Constant", "Identity"}


@dataclass(frozen=True)
class BuildConfig:
    """What the builder is told, as data: flag names are `tensorrt.BuilderFlag` members."""

    precision: str
    opt_level: int
    set_flags: tuple[str, ...]
    clear_flags: tuple[str, ...]
    profiling_verbosity: str = "DETAILED"  # the inspector reports per-layer formats only at DETAILED
    strongly_typed: bool = False  # the network computes in the types its ONNX states
    source: str = "onnx"  # the exporter of the ONNX built: "onnx" (fp32) or "onnx_fp16"

    @property
    def build_path(self) -> str:
        if self.precision == "fp16":
            return STRONGLY_TYPED_FP16 if self.strongly_typed else WEAKLY_TYPED_FP16
        return "strongly-typed+fp32-onnx" if self.strongly_typed else "weakly-typed+fp32-onnx"


def trt_major(version: str) -> int:
    try:
        return int(version.split(".")[0])
    except ValueError:
        raise UserError(f"cannot read the TensorRT version {version!r}; reinstall with {_TRT_PIN}") from None


_TRT_PIN = "pip install 'tensorrt>=10,<12'"


def build_config(request: ExportRequest, trt_version: str) -> BuildConfig:
    """Builder settings from the request's `precision` (fp16 | fp32) and `opt_level` (0..5).

    fp16 on TensorRT 10 is the weakly typed mode: the FP16 flag lets the builder pick fp16 kernels where they
    are faster, and the inspector then says which layers took them. TensorRT 11 has no FP16 flag (every
    network is strongly typed), so fp16 there is the fp16 ONNX built as typed. fp32 clears TF32 so that it
    is IEEE fp32, not TensorFloat-32 (on by default in TensorRT)."""
    precision = str(request.setting("precision", DEFAULT_PRECISION)).lower()
    if precision not in PRECISIONS:
        raise UserError(f"tensorrt precision {precision!r} is not supported; use one of {', '.join(PRECISIONS)}")
    raw_level = request.setting("opt_level", DEFAULT_OPT_LEVEL)
    try:
        level = int(raw_level)
    except (TypeError, ValueError):
        level = None
    if level is None or level not in OPT_LEVELS or str(raw_level).strip() != str(level):
        raise UserError(f"tensorrt opt_level {raw_level!r} is not an integer 0..5; use 0..5 "
                        f"(TensorRT's default is {DEFAULT_OPT_LEVEL}; higher builds longer for faster engines)")
    major = trt_major(trt_version)
    if major < 10:
        raise UserError(f"TensorRT {trt_version} is too old: this exporter uses the TensorRT 10 API; {_TRT_PIN}")
    if major > 11:
        raise UserError(f"TensorRT {trt_version} is newer than this exporter knows (10 and 11); {_TRT_PIN}")
    strong = major >= 11
    if precision == "fp16":
        if strong:
            return BuildConfig("fp16", level, (), (), strongly_typed=True, source="onnx_fp16")
        return BuildConfig("fp16", level, ("FP16",), ())
    return BuildConfig("fp32", level, (), ("TF32",), strongly_typed=strong)


def engine_tool_versions(trt_version: str, gpu_name: str, compute_capability: str, onnx_sha256: str) -> dict:
    """What the engine is specific to, passed to `cached_export` as tool versions so the cache key covers
    them: an engine is only valid on the GPU model and TensorRT version it was built with."""
    return {"tensorrt": trt_version, "gpu": gpu_name, "compute_capability": compute_capability,
            "onnx_sha256": onnx_sha256}


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()


def timing_cache_path(cache_dir: Path, gpu_name: str, compute_capability: str, trt_version: str,
                      tool: str = TARGET) -> Path:
    """One timing cache per GPU model and TensorRT version, shared by every model built there: a cache is
    only valid for the device and version that measured it. trtexec keeps its own (`tool="trtexec"`)."""
    return (Path(cache_dir) / tool / "timing-caches" /
            f"{_slug(gpu_name)}-sm{compute_capability.replace('.', '')}-trt{trt_version}.cache")


def normalize_datatype(text: str) -> str:
    """A tensor's "Format/Datatype" string from the inspector (e.g. "Row major linear FP16 format",
    "Channel major FP16 format where channel % 8 is padded", "Half", "Float", "Int8") -> fp16 | fp32 | ..."""
    t = str(text).lower()
    for token, name in (("bf16", "bf16"), ("bfloat16", "bf16"), ("fp8", "fp8"), ("int8", "int8"),
                        ("int32", "int32"), ("int64", "int64"), ("fp16", "fp16"), ("half", "fp16"),
                        ("fp32", "fp32"), ("float", "fp32"), ("bool", "bool")):
        if token in t:
            return name
    return "unknown"


def layer_precision(layer: dict) -> str:
    """The precision a layer computes in: that of its outputs (a layer's inputs may arrive in another
    format, which is what the reformat layers TensorRT inserts are for); "mixed" if its outputs differ."""
    tensors = layer.get("Outputs") or layer.get("Inputs") or []
    kinds = {normalize_datatype(t.get("Format/Datatype", "")) for t in tensors if isinstance(t, dict)}
    kinds.discard("unknown")
    if not kinds:
        return "unknown"
    return kinds.pop() if len(kinds) == 1 else "mixed"


def parse_inspector(info: str | dict) -> list[dict]:
    """The layers of `IEngineInspector.get_engine_information(LayerInformationFormat.JSON)`."""
    data = json.loads(info) if isinstance(info, str) else info
    layers = data.get("Layers") if isinstance(data, dict) else None
    if not isinstance(layers, list):
        raise ValueError("not engine inspector JSON: no 'Layers' list")
    if layers and not all(isinstance(x, dict) for x in layers):
        raise ValueError("the engine inspector gave layer names only: build with "
                         "ProfilingVerbosity.DETAILED to see each layer's precision")
    return layers


def precision_counts(info: str | dict) -> dict:
    """Counts of layers per precision, compute layers apart from format conversions, so a result shows
    whether fp16 was really used: {"compute": {"fp16": 31, "fp32": 1}, "reformat": {"fp16": 1, ...},
    "layers": 34, "fp16_share": 0.97}."""
    layers = parse_inspector(info)
    compute: Counter = Counter()
    bookkeeping: Counter = Counter()
    for layer in layers:
        target = bookkeeping if layer.get("LayerType") in BOOKKEEPING_LAYER_TYPES else compute
        target[layer_precision(layer)] += 1
    n_compute = sum(compute.values())
    return {"compute": dict(sorted(compute.items())), "reformat": dict(sorted(bookkeeping.items())),
            "layers": len(layers), "fp16_share": compute["fp16"] / n_compute if n_compute else 0.0}


def check_static(name: str, shape: tuple[int, ...]) -> None:
    if any(int(d) < 0 for d in shape):
        raise UserError(f"input {name} has a dynamic shape {tuple(shape)}: the tensorrt exporter builds "
                        "static-shape engines; export the ONNX with a fixed input size")


def onnx_request(request: ExportRequest) -> ExportRequest:
    """The ONNX export under the engine: same model, without our own settings (they do not change the ONNX
    and would only split its cache)."""
    return replace(request, settings=tuple((k, v) for k, v in request.settings if k not in OWN_SETTINGS))


def export(request: ExportRequest, cache_dir: Path) -> tuple[ExportArtifact, bool]:
    require("tensorrt", "trt", "the tensorrt exporter")
    import tensorrt as trt


    cfg = build_config(request, trt.__version__)  # bad settings fail before the ONNX export runs
    # Imported here, not at the top: the ONNX exporter pulls in torch, which a host that only inspects or
    # loads engines never needs (tests/devices/test_gpu_imports.py).
    from exporters import onnx as onnx_exporter, onnx_fp16

    source, _ = onnx_exporter.export(onnx_request(request), cache_dir)
    if cfg.source == "onnx_fp16":  # 11: the precision is in the graph
        source, _ = onnx_fp16.export(onnx_request(request), cache_dir, source)
    gpu = gpu_identity(0)
    versions = engine_tool_versions(trt.__version__, gpu.name, gpu.compute_capability, source.sha256)
    cache_file = timing_cache_path(cache_dir, gpu.name, gpu.compute_capability, trt.__version__)

    def build(path: Path) -> ExportArtifact:
        meta = build_engine(Path(source.path), path, cfg, cache_file)
        meta.update({"onnx_path": source.path, "onnx_sha256": source.sha256, "onnx_target": source.target,
                     "onnx_parity": source.metadata.get("parity"), "gpu": gpu.name,
                     "compute_capability": gpu.compute_capability})
        return ExportArtifact(
            model=request.model, target=TARGET, precision=cfg.precision, path=str(path),
            input_name=source.input_name, input_shape=tuple(source.input_shape), input_dtype=source.input_dtype,
            output_name=source.output_name, sha256="", cache_key="", metadata=meta)

    return cached_export(TARGET, request, cache_dir, versions, ENGINE_FILE, build)


def _apply(trt, config, cfg: BuildConfig) -> None:
    for name in cfg.set_flags + cfg.clear_flags:
        if not hasattr(trt.BuilderFlag, name):
            raise UserError(f"TensorRT {trt.__version__} has no BuilderFlag.{name}; {_TRT_PIN}")
    for name in cfg.set_flags:
        config.set_flag(getattr(trt.BuilderFlag, name))
    for name in cfg.clear_flags:
        config.clear_flag(getattr(trt.BuilderFlag, name))
    config.builder_optimization_level = cfg.opt_level
    config.profiling_verbosity = getattr(trt.ProfilingVerbosity, cfg.profiling_verbosity)


def load_timing_cache(config, cache_file: Path) -> dict:
    """Give the builder the persisted timing cache, or a fresh one where there is none, it cannot be read,
    or TensorRT refuses it. Returns what happened, for the artifact.

    `set_timing_cache(cache, ignore_mismatch=False)` returns False when the cache was made on another device
    or version: TensorRT then builds without one, `get_timing_cache()` gives None after the build, and the
    stale file would never be replaced, so every later build would fail the same way. A fresh cache is set
    instead, and written back after the build."""
    data = cache_file.read_bytes() if cache_file.exists() else b""
    status = "loaded" if data else "new"
    try:
        cache = config.create_timing_cache(data)
    except Exception:  # unreadable (truncated, foreign): start over rather than fail the build
        cache = None
    if cache is None:
        data, status = b"", "unreadable: replaced by a fresh cache"
        cache = config.create_timing_cache(b"")
    # ignore_mismatch=False: a cache from another device or version is refused, never silently mixed in
    if config.set_timing_cache(cache, False) is False:
        data, status = b"", "refused by TensorRT (device or version mismatch): replaced by a fresh cache"
        if config.set_timing_cache(config.create_timing_cache(b""), False) is False:
            status = "refused by TensorRT, and a fresh cache too: built without a timing cache"
    return {"status": status, "bytes_before": len(data)}


def save_timing_cache(config, cache_file: Path) -> int | None:
    """Write the builder's timing cache back (atomically); None where the builder has none to give."""
    cache = config.get_timing_cache()
    if cache is None:
        return None
    out = bytes(memoryview(cache.serialize()))
    atomic_write_bytes(cache_file, out)
    return len(out)


def create_network(trt, builder, cfg: BuildConfig):
    """Explicit batch is the only mode from 10 on (flag 0). A strongly typed network is asked for with
    NetworkDefinitionCreationFlag.STRONGLY_TYPED where the enum has it (10; on 11 it is always on and the
    member is kept, deprecated)."""
    flags = 0
    member = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    if cfg.strongly_typed and member is not None:
        flags |= 1 << int(member)
    return builder.create_network(flags)


def build_engine(onnx_path: Path, engine_path: Path, cfg: BuildConfig, cache_file: Path) -> dict:
    """Parse the ONNX, build and write the engine, persist the timing cache, record each layer's precision.
    Returns the build's metadata."""
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = create_network(trt, builder, cfg)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT could not parse {onnx_path}: {errors}")
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        check_static(tensor.name, tuple(tensor.shape))
    config = builder.create_builder_config()
    _apply(trt, config, cfg)
    cache_state = load_timing_cache(config, cache_file)

    t0 = time.perf_counter()
    serialized = builder.build_serialized_network(network, config)
    build_s = time.perf_counter() - t0
    if serialized is None:
        raise RuntimeError(f"TensorRT built no engine from {onnx_path} (see the builder's errors above)")
    engine_bytes = bytes(memoryview(serialized))
    Path(engine_path).write_bytes(engine_bytes)
    cache_after = save_timing_cache(config, cache_file)

    runtime = trt.Runtime(logger)
    engine = runtime.deserialize_cuda_engine(engine_bytes)
    info = engine.create_engine_inspector().get_engine_information(trt.LayerInformationFormat.JSON)
    atomic_write_json(Path(engine_path).parent / LAYERS_FILE, json.loads(info))
    return {
        "precision_counts": precision_counts(info), "build_s": build_s, "engine_bytes": len(engine_bytes),
        "opt_level": cfg.opt_level, "builder_flags_set": list(cfg.set_flags),
        "builder_flags_cleared": list(cfg.clear_flags), "profiling_verbosity": cfg.profiling_verbosity,
        "timing_cache": str(cache_file), "timing_cache_status": cache_state["status"],
        "timing_cache_bytes_before": cache_state["bytes_before"], "timing_cache_bytes_after": cache_after,
        "layers_file": LAYERS_FILE, "tensorrt": trt.__version__, "build_path": cfg.build_path,
        "strongly_typed": cfg.strongly_typed,
    }
