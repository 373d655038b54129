"""The `trt` runner: a serialized TensorRT engine executed with `execute_async_v3` on a dedicated CUDA stream,
each inference timed with CUDA events on that stream.

Device memory, the stream, the events and the optional CUDA graph all come from PyTorch's CUDA API (see
docs/gpu.md for why torch.cuda rather than cuda-python). tensorrt and torch.cuda are used only inside methods.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.core.device import DeviceSpec, OptionSpec, RunnerSpec, via_option
from bench.core.errors import UserError
from bench.core.optional import require
from bench.core.options import non_negative, option_flag
from bench.core.runner import RunnerBase, RunnerOptions
from bench.env.gpu import check_trt, env_info, gpu_snapshot, require_cuda_device
from devices.trtexec import TrtexecRunner, check_trtexec

# tensorrt.DataType member names -> torch dtype names
TRT_TO_TORCH = {"FLOAT": "float32", "HALF": "float16", "BF16": "bfloat16", "INT8": "int8", "UINT8": "uint8",
                "INT32": "int32", "INT64": "int64", "BOOL": "bool", "FP8": "float8_e4m3fn"}


def torch_dtype_name(trt_dtype_name: str) -> str:
    try:
        return TRT_TO_TORCH[trt_dtype_name]
    except KeyError:
        raise UserError(f"engine tensor type {trt_dtype_name} has no PyTorch buffer type here; "
                        f"rebuild the engine with fp32/fp16 inputs and outputs") from None


@dataclass(frozen=True)
class IoTensor:
    name: str
    is_input: bool
    shape: tuple[int, ...]
    dtype: str  # torch dtype name


def engine_io(engine, trt) -> list[IoTensor]:
    """The engine's inputs and outputs by name (TensorRT 10 addresses tensors by name, not binding index)."""
    out = []
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        shape = tuple(int(d) for d in engine.get_tensor_shape(name))
        if any(d < 0 for d in shape):
            raise UserError(f"engine tensor {name} has a dynamic shape {shape}; the trt runner runs static-shape "
                            "engines (build them with the tensorrt exporter)")
        out.append(IoTensor(name, engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT, shape,
                            torch_dtype_name(engine.get_tensor_dtype(name).name)))
    return out


class TrtRunner(RunnerBase):
    """Options (RunnerOptions.extra): `copies` (default false: the input stays resident on the device, no
    H2D/D2H inside the timed inference), `cuda_graph` (default false), `gpu` (CUDA device index, default 0)."""

    supports_output = True

    def __init__(self, options: RunnerOptions):
        super().__init__(options)
        self.copies = option_flag(options.extra, "copies", False)
        self.cuda_graph = option_flag(options.extra, "cuda_graph", False)
        self.index = int(options.extra.get("gpu", 0))
        self._path: Path | None = None
        self._context = None
        self._graph = None
        self._before: dict | None = None

    def load(self, target) -> None:

        require("tensorrt", "trt", "the trt runner")
        require_cuda_device()
        import tensorrt as trt
        import torch

        self._path = Path(getattr(target, "path", target))
        self._before = gpu_snapshot(self.index)
        torch.cuda.set_device(self.index)
        self._trt_version = trt.__version__
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        self._engine = self._runtime.deserialize_cuda_engine(self._path.read_bytes())
        if self._engine is None:
            raise RuntimeError(f"TensorRT {trt.__version__} could not load {self._path}: an engine runs only on "
                               "the TensorRT version and GPU model that built it; delete it from the cache to rebuild")
        self._context = self._engine.create_execution_context()
        self.stream = torch.cuda.Stream(device=self.index)
        self.io = engine_io(self._engine, trt)
        self._dev, self._host_in, self._host_out = {}, {}, {}
        gen = torch.Generator().manual_seed(0)
        for t in self.io:
            dtype = getattr(torch, t.dtype)
            dev = torch.empty(t.shape, dtype=dtype, device=f"cuda:{self.index}")
            if t.is_input:
                host = torch.randn(t.shape, generator=gen).to(dtype) if dtype.is_floating_point else \
                    torch.zeros(t.shape, dtype=dtype)
                dev.copy_(host)
                if self.copies:
                    self._host_in[t.name] = host.pin_memory()
            elif self.copies:
                self._host_out[t.name] = torch.empty(t.shape, dtype=dtype).pin_memory()
            self._dev[t.name] = dev
            self._context.set_tensor_address(t.name, dev.data_ptr())
        self._start = torch.cuda.Event(enable_timing=True)
        self._end = torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize(self.index)
        if self.cuda_graph:
            self._capture(torch)

    def _enqueue(self) -> None:
        import torch

        with torch.cuda.stream(self.stream):
            for name, host in self._host_in.items():
                self._dev[name].copy_(host, non_blocking=True)
            if not self._context.execute_async_v3(self.stream.cuda_stream):
                raise RuntimeError(f"TensorRT execute_async_v3 failed on {self._path}")
            for name, host in self._host_out.items():
                host.copy_(self._dev[name], non_blocking=True)

    def _capture(self, torch) -> None:
        # TensorRT defers some work (allocations, shape updates) to the first enqueue, which must not happen
        # inside a capture: run once, then capture the same enqueue (and copies) on the same stream.
        self._enqueue()
        self.stream.synchronize()
        self._graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self._graph, stream=self.stream):
            self._enqueue()
        self.stream.synchronize()

    def infer(self) -> float:
        """One inference; returns its device time (ms) from CUDA events recorded on the runner's stream.
        The stream is synchronized before returning, so the engine's host timer covers the whole inference."""
        import torch

        with torch.cuda.stream(self.stream):
            self._start.record(self.stream)
            if self._graph is not None:
                self._graph.replay()
            else:
                self._enqueue()
            self._end.record(self.stream)
        self.stream.synchronize()
        return self._start.elapsed_time(self._end)

    def output(self):
        name = next(t.name for t in self.io if not t.is_input)
        if self.copies:
            return self._host_out[name].float().numpy()
        return self._dev[name].float().cpu().numpy()

    def reload(self) -> None:
        """Presets that reload each round get a freshly deserialized engine and context."""
        path = self._path
        self.close()
        self.load(path)

    def close(self) -> None:
        if self._context is None:
            return
        self.stream.synchronize()
        # release in reverse order of creation: graph and buffers, context, engine, runtime
        self._graph = None
        self._dev = self._host_in = self._host_out = {}
        self._context = None
        self._engine = None
        self._runtime = None

    def info(self) -> dict:
        return {"runner": "tensorrt", "tensorrt": getattr(self, "_trt_version", None), "library": "torch.cuda",
                "engine": str(self._path), "copies": self.copies, "cuda_graph": self.cuda_graph,
                "timing": "CUDA events on the runner's stream around each enqueue; stream synchronized in infer()",
                **env_info(self.index, self._before)}


SPEC = DeviceSpec(
    "trt", "TensorRT engine, fp16, on an NVIDIA GPU", kind="gpu", precision="fp16", paper_column="trt_2080ti_ms",
    runners=(
        ("runtime", RunnerSpec("tensorrt", TrtRunner, exporter="tensorrt", runtime="tensorrt",
                               modules=("tensorrt", "torch"), extra="trt", check=check_trt)),
        # trtexec needs neither the tensorrt Python package nor a CUDA build of torch: its own check.
        ("trtexec", RunnerSpec("trtexec", TrtexecRunner, exporter="trtexec", runtime=None, check=check_trtexec)),
    ),
    options=(
        OptionSpec("precision", str, None, ("fp16", "fp32"), "engine precision", shapes_artifact=True),
        OptionSpec("opt_level", int, None, (0, 1, 2, 3, 4, 5), "builder optimization level", shapes_artifact=True),
        OptionSpec("cuda_graph", bool, help="capture the inference in a CUDA graph"),
        OptionSpec("copies", bool, help="include host<->device copies in each inference"),
        via_option(("runtime", "trtexec")),
        OptionSpec("trtexec", str, help="path of the trtexec binary", shapes_artifact=True),
        OptionSpec("spin_wait", bool, help="trtexec: actively spin-wait on GPU events (default true)"),
        OptionSpec("gpu", int, help="CUDA device index (after CUDA_VISIBLE_DEVICES); trtexec: --device",
                   parse=non_negative),
    ))
