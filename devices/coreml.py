"""Runner `coreml`: an exported .mlpackage run through coremltools' Core ML bindings on macOS."""
from __future__ import annotations

import collections
import importlib.util
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench import zoo
from bench.core.device import DeviceSpec, OptionSpec, RunnerSpec
from bench.core.errors import MissingBackendError, UserError
from bench.core.runner import Availability, RunnerBase, RunnerOptions

# MLComputeUnits as coremltools names them. ALL lets Core ML pick the Neural Engine, GPU or CPU per op.
COMPUTE_UNITS = ("ALL", "CPU_AND_NE", "CPU_ONLY", "CPU_AND_GPU")
DEFAULT_COMPUTE_UNITS = "ALL"
_UNIT_ALIASES = {"all": "ALL", "cpuandne": "CPU_AND_NE", "cpuandneuralengine": "CPU_AND_NE",
                 "cpuonly": "CPU_ONLY", "cpuandgpu": "CPU_AND_GPU"}
MIN_MACOS = (13, 0)  # the exporter's default target (iOS 16, spec 7) runs on macOS 13 and later
COMPUTE_PLAN_MACOS = (14, 4)  # MLComputePlan
PARITY_MIN_COSINE = 0.999  # fp16 Core ML against fp32 PyTorch, cosine similarity of the logits
NOT_ON_MACOS = "Core ML runs need macOS"


def compute_units_name(value: object | None) -> str:
    """The coremltools name for a compute-units option (any case; Swift's spellings accepted too)."""
    if value is None or value == "":
        return DEFAULT_COMPUTE_UNITS
    key = "".join(c for c in str(value).lower() if c.isalnum())
    if key not in _UNIT_ALIASES:
        raise UserError(f"compute units {value!r} not known; use one of {', '.join(COMPUTE_UNITS)} "
                        f"(default {DEFAULT_COMPUTE_UNITS})")
    return _UNIT_ALIASES[key]


def not_on_macos_message(export_dir: Path | str) -> str:
    """What `bench run --device coreml` says off macOS, after exporting: where the packages are."""
    return f"{NOT_ON_MACOS}; exported packages are in {export_dir}"


def _mac_version(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in text.split(".") if p)
    except ValueError:
        return ()


def _native_runtime_present() -> bool:
    """coremltools' compiled bindings ship only in its macOS wheels; look for them without importing
    coremltools (its import pulls in torch and takes seconds)."""
    spec = importlib.util.find_spec("coremltools")
    if spec is None or not spec.submodule_search_locations:
        return False
    return any(any(Path(d).glob("libcoremlpython*")) for d in spec.submodule_search_locations)


def check(system: str | None = None, mac_version: str | None = None, native: bool | None = None) -> Availability:
    """Whether Core ML predictions can run here. Arguments default to this host (tests pass others)."""
    system = sys.platform if system is None else system
    if system != "darwin":
        return Availability("unavailable", NOT_ON_MACOS)
    version = _mac_version(platform.mac_ver()[0] if mac_version is None else mac_version)
    if version and version < MIN_MACOS:
        return Availability("unavailable", f"Core ML runs of iOS 16 packages need macOS "
                            f"{'.'.join(map(str, MIN_MACOS))} or later; this is macOS {'.'.join(map(str, version))}")
    if not (_native_runtime_present() if native is None else native):
        return Availability("unavailable", "coremltools has no Core ML bindings (libcoremlpython) here; "
                            "reinstall it from PyPI's macOS wheel: pip install --force-reinstall 'coremltools>=9,<10'")
    return Availability("available")


# ---- the compute plan: where Core ML will run each op ----

_DEVICE_NAMES = {"MLNeuralEngineComputeDevice": "neural_engine", "MLGPUComputeDevice": "gpu",
                 "MLCPUComputeDevice": "cpu"}


def _device_name(device) -> str:
    return _DEVICE_NAMES.get(type(device).__name__, type(device).__name__)


def summarize_compute_plan(ops: list[tuple[str, str | None, tuple[str, ...], float | None]],
                           compute_units: str) -> dict:
    """From (op type, preferred device, supported devices, estimated cost share) per non-const op:
    op counts and cost by device, and the ops that fall back off the Neural Engine. Pure."""
    by_device: collections.Counter = collections.Counter()
    cost: collections.defaultdict = collections.defaultdict(float)
    fallback: collections.Counter = collections.Counter()
    fallback_cost = 0.0
    for op_type, preferred, supported, weight in ops:
        device = preferred or "unknown"
        by_device[device] += 1
        cost[device] += weight or 0.0
        if device != "neural_engine":
            fallback[f"{op_type}@{device}" + ("" if "neural_engine" in supported else " (no NE support)")] += 1
            fallback_cost += weight or 0.0
    uses_ne = compute_units in ("ALL", "CPU_AND_NE")
    return {
        "available": True, "compute_units": compute_units, "ops": len(ops),
        "by_device": dict(by_device), "cost_share_by_device": {k: round(v, 4) for k, v in cost.items()},
        "neural_engine_ops": by_device.get("neural_engine", 0),
        # Off the Neural Engine although the compute units allow it: the ops that cost time on a phone.
        "fallback": bool(uses_ne and fallback),
        "fallback_ops": dict(fallback.most_common()) if uses_ne else {},
        "fallback_cost_share": round(fallback_cost, 4) if uses_ne else 0.0,
    }


def compute_plan(compiled_path: str, compute_units: str) -> dict:
    """The compute plan of a compiled model (macOS 14.4+); a reason instead where it cannot be had."""
    import coremltools as ct

    try:
        from coremltools.models.compute_plan import MLComputePlan
        plan = MLComputePlan.load_from_path(path=compiled_path, compute_units=ct.ComputeUnit[compute_units])
    except Exception as e:  # older macOS or coremltools: the plan is a nice-to-have, never a failure
        return {"available": False, "reason": f"MLComputePlan needs macOS "
                f"{'.'.join(map(str, COMPUTE_PLAN_MACOS))}+ ({type(e).__name__}: {str(e)[:200]})"}
    program = plan.model_structure.program
    if program is None:
        return {"available": False, "reason": "not an ML Program"}
    ops = []
    for op in program.functions["main"].block.operations:
        if op.operator_name == "const":
            continue
        usage = plan.get_compute_device_usage_for_mlprogram_operation(op)
        cost = plan.get_estimated_cost_for_mlprogram_operation(op)
        ops.append((op.operator_name,
                    _device_name(usage.preferred_compute_device) if usage else None,
                    tuple(_device_name(d) for d in usage.supported_compute_devices) if usage else (),
                    cost.weight if cost else None))
    return summarize_compute_plan(ops, compute_units)


# ---- inputs and parity ----

def make_input(artifact, seed: int = 0):
    """One input for the package, made once: a tensor of its dtype, or an RGB image for image inputs."""
    rng = np.random.default_rng(seed)
    if artifact.input_dtype.startswith("image"):
        try:
            from PIL import Image
        except ImportError:
            raise MissingBackendError("Core ML packages with an image input need Pillow to make the input: "
                                      "pip install pillow") from None
        _, _, h, w = artifact.input_shape
        return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB")
    x = rng.standard_normal(artifact.input_shape, dtype=np.float32)
    # coremltools hands every numpy input to Core ML as a float32 MLMultiArray (it converts fp16 arrays on
    # each call) and Core ML casts it to an fp16 input: feed float32 values that fp16 holds exactly.
    return x.astype(np.float16).astype(np.float32) if artifact.input_dtype == "float16" else x


def torch_input(value, artifact) -> np.ndarray:
    """What the fp32 PyTorch model sees for the same input (the image normalized as the package does)."""
    if artifact.input_dtype.startswith("image"):
        norm = artifact.metadata["normalization"]
        x = np.asarray(value, dtype=np.float32).transpose(2, 0, 1)[None] / 255.0
        mean = np.asarray(norm["mean"], dtype=np.float32).reshape(1, 3, 1, 1)
        std = np.asarray(norm["std"], dtype=np.float32).reshape(1, 3, 1, 1)
        return (x - mean) / std
    return np.asarray(value, dtype=np.float32)


def logits_cosine(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"logits of different shapes: {a.shape} vs {b.shape}")
    denom = np.linalg.norm(a) * np.linalg.norm(b)
    return float(a @ b / denom) if denom else float("nan")


def parity(artifact, compute_units: str = DEFAULT_COMPUTE_UNITS, seed: int = 0) -> dict:
    """fp16 Core ML against the fp32 PyTorch deploy form on one input (macOS only)."""
    import torch

    build = artifact.metadata["build"]
    model = zoo.create_model(build["name"], deploy=True, weights=build.get("weights"),
                         activation=build.get("activation", "relu"), **build.get("overrides", {}))
    runner = CoreMLRunner(RunnerOptions(threads=1, extra={"compute_units": compute_units}))
    with runner:
        runner.load(artifact, seed=seed)
        runner.infer()
        got = runner.output()
        with torch.no_grad():
            ref = model(torch.from_numpy(torch_input(runner.input_value, artifact))).numpy()
    cos = logits_cosine(got, ref)
    return {"cosine": cos, "threshold": PARITY_MIN_COSINE, "passed": bool(cos >= PARITY_MIN_COSINE),
            "max_abs_error": float(np.abs(got.astype(np.float64) - ref).max()),
            "top1_agrees": bool(int(np.argmax(got)) == int(np.argmax(ref))), "compute_units": compute_units,
            # untrained fused weights can overflow fp16 (the exporter measured it): then no parity is possible
            "fp16_overflow_expected": not artifact.metadata.get("fp16_range", {}).get("fits", True)}


# ---- the runner ----

class CoreMLRunner(RunnerBase):
    """load() compiles the package (.mlpackage -> .mlmodelc) then loads it, timed apart; reload() loads the
    compiled model again, as ModelBench re-creates its model each round; infer() is one synchronous predict."""

    supports_output = True

    def __init__(self, options: RunnerOptions):
        super().__init__(options)
        self.compute_units = compute_units_name(options.extra.get("compute_units"))  # bad value: fail early
        self.artifact = None
        self.input_value = None
        self._model = None
        self._compiled: str | None = None
        self._scratch: str | None = None
        self._feed: dict = {}
        self._out = None
        self.compile_ms: float | None = None
        self.load_ms: float | None = None
        self.reload_ms: list[float] = []
        self._plan: dict | None = None

    def load(self, artifact, seed: int = 0) -> None:
        if getattr(artifact, "target", None) != "coreml":
            got = getattr(artifact, "target", artifact)
            raise UserError(f"the coreml runner needs a Core ML artifact, got {got!r}; export with --device coreml")
        if not Path(artifact.path).exists():
            raise UserError(f"Core ML package {artifact.path} is missing; re-export it (bench export --device coreml)")
        import coremltools as ct
        from coremltools.models.utils import compile_model

        self.close()
        self.artifact = artifact
        self._scratch = tempfile.mkdtemp(prefix="bench-coreml-")
        t0 = time.perf_counter()
        self._compiled = compile_model(artifact.path, str(Path(self._scratch) / "model.mlmodelc"))
        t1 = time.perf_counter()
        self._model = ct.models.CompiledMLModel(self._compiled, compute_units=ct.ComputeUnit[self.compute_units])
        t2 = time.perf_counter()
        self.compile_ms, self.load_ms = (t1 - t0) * 1e3, (t2 - t1) * 1e3
        self.input_value = make_input(artifact, seed)
        self._feed = {artifact.input_name: self.input_value}

    def reload(self) -> None:
        if self._compiled is None:
            return
        import coremltools as ct

        t0 = time.perf_counter()
        self._model = None
        self._model = ct.models.CompiledMLModel(self._compiled, compute_units=ct.ComputeUnit[self.compute_units])
        self.reload_ms.append((time.perf_counter() - t0) * 1e3)

    def infer(self) -> None:
        self._out = self._model.predict(self._feed)

    def output(self) -> np.ndarray:
        return np.asarray(self._out[self.artifact.output_name], dtype=np.float32)

    def info(self) -> dict:
        import coremltools as ct

        if self._plan is None and self._compiled is not None:
            self._plan = compute_plan(self._compiled, self.compute_units)
        return {"runtime": "coreml", "coremltools": ct.__version__, "macos": platform.mac_ver()[0],
                "machine": platform.machine(), "compute_units": self.compute_units,
                "compile_ms": self.compile_ms, "model_load_ms": self.load_ms,
                "reload_ms_median": float(np.median(self.reload_ms)) if self.reload_ms else None,
                "threads": "not settable (Core ML schedules its own)",
                "input": (self.artifact.input_dtype if self.artifact else None),
                "input_feed": "PIL image" if self.artifact and self.artifact.input_dtype.startswith("image")
                else "float32 MLMultiArray (coremltools' bindings); Core ML casts to the package's input type",
                "compute_plan": self._plan}

    def close(self) -> None:
        self._model = None
        if self._scratch:
            shutil.rmtree(self._scratch, ignore_errors=True)
        self._scratch = self._compiled = None


SPEC = DeviceSpec(
    "coreml", "Core ML fp16 (ML Program) on macOS", kind="mobile", precision="fp16", paper_column="iphone12_ane_ms",
    imported_as=("iphone",),
    runners=(("runtime", RunnerSpec("coreml", CoreMLRunner, exporter="coreml", runtime="coremltools",
                                     modules=("coremltools",), extra="coreml", check=check,
                                     export_modules=("coremltools",))),),
    options=(
        OptionSpec("compute_units", str, None, COMPUTE_UNITS, "Core ML compute units"),
        OptionSpec("minimum_deployment_target", str, None, ("iOS15", "iOS16", "iOS17", "iOS18", "iOS26", "macOS12",
                                                           "macOS13", "macOS14", "macOS15", "macOS26"),
                   "deployment target", shapes_artifact=True),
        OptionSpec("io_precision", str, None, ("fp16", "fp32"), "tensor input/output precision", shapes_artifact=True),
        OptionSpec("image_input", bool, help="224x224 BGRA image input with normalization folded in",
                   shapes_artifact=True),
    ))
