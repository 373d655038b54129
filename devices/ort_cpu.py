"""Runner `cpu`: ONNX Runtime's CPU execution provider, all graph optimizations, explicit threads."""
from __future__ import annotations

import numpy as np

from bench.core.artifact import ExportArtifact
from bench.core.device import DeviceSpec, OptionSpec, RunnerSpec
from bench.core.runner import RunnerBase, RunnerOptions


class OrtCpuRunner(RunnerBase):
    def __init__(self, options: RunnerOptions):
        super().__init__(options)
        self.session = None
        self._feed: dict[str, np.ndarray] = {}
        self._out = None
        self._artifact: ExportArtifact | None = None

    def load(self, artifact: ExportArtifact) -> None:
        import onnxruntime as ort

        self._artifact = artifact
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Explicit threads: ORT's default counts the host's cores and ignores affinity and cgroup quotas.
        opts.intra_op_num_threads = self.options.threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        if self.options.extra.get("disable_optimizations"):  # a known slowdown, for the regression gate's tests
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        self.session = ort.InferenceSession(artifact.path, opts, providers=["CPUExecutionProvider"])
        rng = np.random.default_rng(0)
        # The input is made once; infer() only runs the session.
        self._feed = {artifact.input_name: rng.standard_normal(artifact.input_shape, dtype=np.float32)}
        self._outputs = [artifact.output_name]

    def reload(self) -> None:
        if self._artifact is not None:
            self.load(self._artifact)

    def infer(self) -> None:
        self._out = self.session.run(self._outputs, self._feed)[0]

    supports_output = True

    def output(self) -> np.ndarray:
        return self._out

    def info(self) -> dict:
        import onnxruntime as ort

        return {"runtime": "onnxruntime", "version": ort.__version__, "providers": self.session.get_providers(),
                "intra_op_threads": self.options.threads,
                "graph_optimization": "disabled" if self.options.extra.get("disable_optimizations") else "all"}

    def close(self) -> None:
        self.session = None


SPEC = DeviceSpec(
    "cpu", "ONNX Runtime, CPU execution provider, fp32", kind="cpu", precision="fp32", paper_column="cpu_x86_ms",
    contention_probe=True,
    runners=(("runtime", RunnerSpec("onnxruntime", OrtCpuRunner, exporter="onnx", runtime="onnxruntime",
                                     modules=("onnxruntime",))),),
    options=(OptionSpec("disable_optimizations", bool, help="turn ONNX Runtime's graph optimizations off"),))
