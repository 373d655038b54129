"""Runner `openvino`: OpenVINO's CPU plugin on the ONNX artifact, fp32, explicit threads, latency hint.

The same ONNX file as device `cpu` (ONNX Runtime), so the two runtimes are compared on one graph.
"""
from __future__ import annotations

import numpy as np

from bench.core.artifact import ExportArtifact
from bench.core.device import DeviceSpec, RunnerSpec
from bench.core.runner import RunnerBase, RunnerOptions

# The compiled model's properties that say how it runs; read back after compiling, as info() records them.
_REPORTED = ("INFERENCE_NUM_THREADS", "NUM_STREAMS", "PERFORMANCE_HINT", "INFERENCE_PRECISION_HINT",
             "EXECUTION_MODE_HINT", "ENABLE_CPU_PINNING", "ENABLE_HYPER_THREADING")


def _plain(value) -> str | int | bool:
    """A property value as JSON takes it: an element type by its short name (f32), an enum by its name."""
    if isinstance(value, (bool, int)):
        return value
    if hasattr(value, "get_type_name"):  # openvino.Type
        return value.get_type_name()
    return getattr(value, "name", None) or str(value)


class OpenVinoRunner(RunnerBase):
    def __init__(self, options: RunnerOptions):
        import openvino  # when a runner is made, not with the module (the registry imports every device module)

        super().__init__(options)
        self.ov = openvino
        self.compiled = None
        self.request = None
        self._x: np.ndarray | None = None
        self._out = None
        self._artifact: ExportArtifact | None = None

    def load(self, artifact: ExportArtifact) -> None:
        ov = self.ov
        self._artifact = artifact
        config = {
            # Explicit threads, like ONNX Runtime's runner: the default counts the host's cores.
            "INFERENCE_NUM_THREADS": self.options.threads,
            # One stream and the latency hint: a single inference gets all the threads.
            "PERFORMANCE_HINT": "LATENCY",
            "NUM_STREAMS": 1,
            # fp32 as the device declares: otherwise CPUs with bf16/AMX would silently run bf16.
            "INFERENCE_PRECISION_HINT": "f32",
        }
        self.compiled = ov.Core().compile_model(artifact.path, "CPU", config)
        self.request = self.compiled.create_infer_request()
        rng = np.random.default_rng(0)
        # The input is made once and bound to the request; infer() only runs it.
        self._x = rng.standard_normal(artifact.input_shape, dtype=np.float32)
        self.request.set_tensor(self.compiled.input(0), ov.Tensor(self._x, shared_memory=True))

    def reload(self) -> None:
        if self._artifact is not None:
            self.load(self._artifact)

    def infer(self) -> None:
        self.request.infer()

    supports_output = True

    def output(self) -> np.ndarray:
        # A copy: the request's output buffer is overwritten by the next inference.
        return np.array(self.request.get_output_tensor(0).data, copy=True)

    def properties(self) -> dict:
        """The properties in effect, as the compiled model reports them."""
        out = {}
        for name in _REPORTED:
            try:
                value = self.compiled.get_property(name)
            except RuntimeError:  # a property this release's CPU plugin does not report
                continue
            out[name] = _plain(value)
        return out

    def info(self) -> dict:
        return {"runtime": "openvino", "version": self.ov.__version__, "device": "CPU",
                "threads": self.options.threads, "properties": self.properties()}

    def close(self) -> None:
        self.request = None
        self.compiled = None


SPEC = DeviceSpec(
    "openvino", "OpenVINO, CPU plugin, fp32 (ONNX artifact)", kind="cpu", precision="fp32",
    paper_column="cpu_x86_ms", contention_probe=True,
    runners=(("runtime", RunnerSpec("openvino", OpenVinoRunner, exporter="onnx", runtime="openvino",
                                     modules=("openvino",), extra="openvino")),))
