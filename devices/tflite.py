"""Runner `tflite`: the int8 TFLite artifact in LiteRT's interpreter with XNNPACK, explicit threads."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.core.artifact import ExportArtifact
from bench.core.device import DeviceSpec, OptionSpec, RunnerSpec
from bench.core.errors import UserError
from bench.core.runner import RunnerBase, RunnerOptions


def _quantized(x: np.ndarray, detail: dict) -> np.ndarray:
    """A float input in the tensor's own encoding (int8 with its scale and zero point, or as is)."""
    dtype = detail["dtype"]
    scale, zero_point = detail["quantization"]
    if np.issubdtype(dtype, np.integer) and scale:
        info = np.iinfo(dtype)
        return np.clip(np.round(x / scale) + zero_point, info.min, info.max).astype(dtype)
    return x.astype(dtype)


def undelegated_ops(ops: list[dict], graph_outputs: set[int]) -> dict[str, int]:
    """Op types that run outside the delegate, from the interpreter's node list (pure). A delegate keeps the
    nodes it replaced in the list but runs them inside its DELEGATE node, whose outputs are the partition's
    outputs; a node that runs on its own writes a tensor that a DELEGATE node, another such node or the graph's
    output reads, and that no DELEGATE node writes."""
    delegates = [op for op in ops if op["op_name"] == "DELEGATE"]
    delegate_out = {t for op in delegates for t in op["outputs"]}
    others = [op for op in ops if op["op_name"] != "DELEGATE"]
    needed = {t for op in delegates for t in op["inputs"]} | set(graph_outputs)
    outside: dict[int, dict] = {}
    while True:
        found = [op for op in others if op["index"] not in outside and set(op["outputs"]) & needed
                 and not set(op["outputs"]) & delegate_out]
        if not found:
            break
        for op in found:
            outside[op["index"]] = op
            needed |= set(op["inputs"])
    counts: dict[str, int] = {}
    for op in outside.values():
        counts[op["op_name"]] = counts.get(op["op_name"], 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


class TFLiteRunner(RunnerBase):
    """`options.extra["xnnpack"] = False` runs TFLite's builtin kernels instead (an ablation)."""

    supports_output = True

    def __init__(self, options: RunnerOptions):
        super().__init__(options)
        if options.threads < 1:
            raise UserError(f"tflite needs threads >= 1 (got {options.threads}); pass --threads N")
        self._path: str | None = None
        self._interp = None
        self._input: dict | None = None
        self._output: dict | None = None

    def load(self, target: ExportArtifact | str | Path) -> None:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        path = target.path if isinstance(target, ExportArtifact) else str(target)
        if not Path(path).is_file():
            raise UserError(f"TFLite model {path} not found; export it first (bench export --device tflite)")
        self._path = path
        resolver = (OpResolverType.AUTO if self.options.extra.get("xnnpack", True)
                    else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        self._interp = Interpreter(model_path=path, num_threads=self.options.threads,
                                   experimental_op_resolver_type=resolver)
        self._interp.allocate_tensors()
        self._input = self._interp.get_input_details()[0]
        self._output = self._interp.get_output_details()[0]
        # One input, made and set once: infer() only invokes. A fixed seed: the same bytes on every run.
        x = np.random.default_rng(0).standard_normal(tuple(self._input["shape"])).astype(np.float32)
        self._interp.set_tensor(self._input["index"], _quantized(x, self._input))

    def reload(self) -> None:
        if self._path is not None:
            self.load(self._path)

    def infer(self) -> None:
        self._interp.invoke()  # synchronous: the output tensor is written when it returns

    def output(self) -> np.ndarray:
        """The last inference's logits, dequantized to float32."""
        q = self._interp.get_tensor(self._output["index"])
        scale, zero_point = self._output["quantization"]
        return (q.astype(np.float32) - zero_point) * scale if scale else q.astype(np.float32)

    def delegation(self) -> dict:
        """How the graph was partitioned: XNNPACK replaces the nodes it takes with DELEGATE nodes; the op
        types it left to TFLite's builtin kernels are listed (none: the whole graph runs in XNNPACK)."""
        ops = self._interp._get_ops_details()  # the interpreter's public API has no execution-plan view
        for op in ops:
            op["inputs"], op["outputs"] = [int(t) for t in op["inputs"]], [int(t) for t in op["outputs"]]
        delegates = sum(op["op_name"] == "DELEGATE" for op in ops)
        left = undelegated_ops(ops, {int(d["index"]) for d in self._interp.get_output_details()})
        return {"delegate": "XNNPACK" if delegates else "none (builtin kernels)",
                "delegate_partitions": delegates, "whole_graph_delegated": bool(delegates) and not left,
                "ops_not_delegated": left, "model_ops": len(ops) - delegates}

    def info(self) -> dict:
        from importlib import metadata

        scale, zero_point = self._input["quantization"] if self._input else (None, None)
        return {"runtime": "ai-edge-litert", "version": metadata.version("ai-edge-litert"),
                "threads": self.options.threads, **(self.delegation() if self._interp else {}),
                "input": {"dtype": np.dtype(self._input["dtype"]).name if self._input else None,
                          "shape": [int(d) for d in self._input["shape"]] if self._input else None,
                          "scale": scale, "zero_point": zero_point}}

    def close(self) -> None:
        self._interp = None


# The int8 exporter's options: the same for the host (tflite) and the phone (android), which share it.
EXPORT_OPTIONS = (
    OptionSpec("calibration", str, help="folder of calibration images (else a synthetic set)", shapes_artifact=True),
    OptionSpec("calibration_count", int, help="number of calibration samples", shapes_artifact=True),
    OptionSpec("allow_float_ops", bool, help="accept float compute ops left after conversion", shapes_artifact=True),
    OptionSpec("parity_count", int, help="inputs on which the int8 model is compared with fp32 PyTorch",
               shapes_artifact=True),
    OptionSpec("bn_reestimate", str, None, ("auto", "yes", "no"),
               "re-estimate BN statistics on the calibration set (auto: random weights only)", shapes_artifact=True),
)

SPEC = DeviceSpec(
    "tflite", "full-integer int8 TFLite, LiteRT interpreter + XNNPACK", kind="mobile", precision="int8",
    paper_column="pixel6_tpu_ms", contention_probe=True,  # runs on this host's CPUs
    runners=(("runtime", RunnerSpec("litert", TFLiteRunner, exporter="tflite", runtime="ai-edge-litert",
                                     modules=("ai_edge_litert",), extra="tflite",
                                     export_modules=("litert_torch", "ai_edge_quantizer"))),),
    options=(
        *EXPORT_OPTIONS,
        OptionSpec("xnnpack", bool, help="use the XNNPACK delegate (false: TFLite's builtin kernels)"),
    ))
