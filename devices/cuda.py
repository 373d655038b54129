"""The `cuda` runner: the PyTorch model itself on an NVIDIA GPU, fp16 and channels-last, under
torch.inference_mode, optionally replayed as a CUDA graph; each inference timed with CUDA events on its own
stream, which is synchronized before infer() returns. torch.cuda is touched only inside methods."""
from __future__ import annotations

from bench import zoo
from bench.core.device import DeviceSpec, OptionSpec, RunnerSpec
from bench.core.errors import UserError
from bench.core.options import non_negative, option_flag, parse_shape
from bench.core.runner import RunnerBase, RunnerOptions
from bench.env.gpu import check_cuda, env_info, gpu_snapshot, require_cuda_device

PRECISIONS = {"fp16": "float16", "fp32": "float32"}


class CudaRunner(RunnerBase):
    """Options (RunnerOptions.extra): `cuda_graph` (default false), `precision` (fp16 | fp32, default fp16),
    `cudnn_benchmark` (default true: cuDNN times its convolution algorithms once per shape and keeps the
    fastest, as TensorRT's tactic selection does), `input_shape` (default: the zoo's input size for the model), `gpu` (default 0)."""

    supports_output = True

    def __init__(self, options: RunnerOptions):
        super().__init__(options)
        extra = options.extra
        self.cuda_graph = option_flag(extra, "cuda_graph", False)
        self.cudnn_benchmark = option_flag(extra, "cudnn_benchmark", True)
        self.precision = str(extra.get("precision", "fp16")).lower()
        if self.precision not in PRECISIONS:
            raise UserError(f"cuda precision {self.precision!r} is not supported; use fp16 or fp32")
        self.input_shape = parse_shape("input_shape", extra["input_shape"]) if extra.get("input_shape") else None
        self.index = int(extra.get("gpu", 0))
        self.model = None
        self._graph = None
        self._before: dict | None = None

    def load(self, model) -> None:
        require_cuda_device()
        import torch

        self._before = gpu_snapshot(self.index)
        torch.backends.cudnn.benchmark = self.cudnn_benchmark
        device = torch.device("cuda", self.index)
        dtype = getattr(torch, PRECISIONS[self.precision])
        self.model = model.eval().to(device=device, dtype=dtype, memory_format=torch.channels_last)
        shape = self.input_shape or zoo.model_input_shape(model)
        gen = torch.Generator().manual_seed(0)
        self.x = torch.randn(shape, generator=gen).to(device=device, dtype=dtype) \
            .contiguous(memory_format=torch.channels_last)
        self.stream = torch.cuda.Stream(device=device)
        self._start = torch.cuda.Event(enable_timing=True)
        self._end = torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize(device)
        if self.cuda_graph:
            self._capture(torch)

    def _capture(self, torch) -> None:
        # Warm up on the side stream before capturing (cuDNN's algorithm search and lazy allocations must not
        # run inside the capture), as the PyTorch CUDA graphs notes prescribe.
        with torch.inference_mode(), torch.cuda.stream(self.stream):
            for _ in range(3):
                self.y = self.model(self.x)
        self.stream.synchronize()
        self._graph = torch.cuda.CUDAGraph()
        with torch.inference_mode(), torch.cuda.graph(self._graph, stream=self.stream):
            self.y = self.model(self.x)
        self.stream.synchronize()

    def infer(self) -> float:
        """One inference; returns its device time (ms) from CUDA events on the runner's stream, synchronized
        before returning so the engine's host timer covers the whole inference."""
        import torch

        with torch.inference_mode(), torch.cuda.stream(self.stream):
            self._start.record(self.stream)
            if self._graph is not None:
                self._graph.replay()
            else:
                self.y = self.model(self.x)
            self._end.record(self.stream)
        self.stream.synchronize()
        return self._start.elapsed_time(self._end)

    def output(self):
        return self.y.float().cpu().numpy()

    def close(self) -> None:
        if self.model is None:
            return
        self.stream.synchronize()
        self._graph = None
        self.model = self.x = self.y = None

    def info(self) -> dict:
        import torch

        return {"runner": "torch-cuda", "torch": torch.__version__, "cuda_runtime": torch.version.cuda,
                "precision": self.precision, "channels_last": True, "inference_mode": True,
                "cuda_graph": self.cuda_graph, "cudnn_benchmark": self.cudnn_benchmark,
                "timing": "CUDA events on the runner's stream around each forward; stream synchronized in infer()",
                **env_info(self.index, self._before)}


SPEC = DeviceSpec(
    "cuda", "PyTorch fp16 on CUDA, channels-last", kind="gpu", precision="fp16", paper_column="trt_2080ti_ms",
    runners=(("runtime", RunnerSpec("torch-cuda", CudaRunner, exporter=None, runtime="torch", modules=("torch",),
                                     extra="cuda", check=check_cuda)),),
    options=(
        OptionSpec("cuda_graph", bool, help="capture the inference in a CUDA graph"),
        OptionSpec("precision", str, None, ("fp16", "fp32"), "model precision on the GPU"),
        OptionSpec("cudnn_benchmark", bool, help="let cuDNN autotune its convolution algorithms"),
        OptionSpec("gpu", int, help="CUDA device index (after CUDA_VISIBLE_DEVICES)", parse=non_negative),
        OptionSpec("input_shape", str, help="input NCHW, e.g. 1x3x256x256 (default: the suite's, else the model's)",
                   parse=parse_shape),
    ))
