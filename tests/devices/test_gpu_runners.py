"""devices/trt.py and devices/cuda.py without a GPU: options, type mapping, and the clear errors a host
without a GPU, CUDA or TensorRT gives. Their GPU paths run in test_gpu_end_to_end.py."""
import importlib.util

import pytest

from bench.core.errors import MissingBackendError, UserError
from bench.core.runner import Runner, RunnerOptions
from devices.cuda import CudaRunner
from bench.env.gpu import check_cuda
from devices.trt import TRT_TO_TORCH, TrtRunner, torch_dtype_name


def opts(**extra) -> RunnerOptions:
    return RunnerOptions(threads=1, extra=extra)


def test_trt_types_map_to_torch_types():
    import torch

    assert torch_dtype_name("FLOAT") == "float32" and torch_dtype_name("HALF") == "float16"
    for name in TRT_TO_TORCH.values():
        assert isinstance(getattr(torch, name), torch.dtype), name
    with pytest.raises(UserError, match="fp32/fp16"):
        torch_dtype_name("FP4")


def test_options_are_read_and_checked():
    r = TrtRunner(opts(copies="true", cuda_graph="0", gpu="1"))
    assert (r.copies, r.cuda_graph, r.index) == (True, False, 1)
    assert TrtRunner(opts()).copies is False  # default: the input stays resident on the device
    c = CudaRunner(opts(cuda_graph=True, precision="FP32", input_shape=[1, 3, 160, 160]))
    assert (c.cuda_graph, c.precision, c.input_shape, c.cudnn_benchmark) == (True, "fp32", (1, 3, 160, 160), True)
    with pytest.raises(UserError, match="copies=true or copies=false"):
        TrtRunner(opts(copies="yes please"))
    with pytest.raises(UserError, match="use fp16 or fp32"):
        CudaRunner(opts(precision="int8"))


def test_cuda_input_shape_comes_from_the_zoo():
    from torch import nn

    from bench.zoo import create_model
    from bench.zoo import model_input_shape

    assert model_input_shape(create_model("mobileone_s0")) == (1, 3, 224, 224)
    assert model_input_shape(nn.Conv2d(3, 8, 3)) == (1, 3, 224, 224)
    assert CudaRunner(opts()).input_shape is None


def test_runners_follow_the_protocol():
    for r in (TrtRunner(opts()), CudaRunner(opts())):
        assert isinstance(r, Runner) and r.supports_output and not r.self_timed
        with r:
            pass  # closing a runner that never loaded is harmless


@pytest.mark.skipif(check_cuda().can_run, reason="this host has a usable CUDA GPU")
def test_cuda_runner_without_a_gpu_says_why():
    from torch import nn

    with pytest.raises(MissingBackendError, match="no usable CUDA GPU: .*(driver|CPU-only|GPU)"):
        CudaRunner(opts()).load(nn.Conv2d(3, 8, 3))


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="tensorrt is installed here")
def test_trt_runner_without_tensorrt_names_the_extra(tmp_path):
    with pytest.raises(MissingBackendError, match=r"mobileone-bench\[trt\]"):
        TrtRunner(opts()).load(tmp_path / "model.engine")


def test_documented_options_can_be_set_from_the_command_line_and_bench_toml():
    """Fault 6: `gpu` and `input_shape`, which the runners read, are declared options of their devices."""
    from bench.config import parse_option_flags, parse_toml
    from bench.tools import trtexec as tool

    given = parse_option_flags(["cuda.input_shape=1x3x160x160", "cuda.gpu=1", "trt.gpu=2"])
    c = CudaRunner(opts(**given["cuda"]))
    assert (c.input_shape, c.index) == ((1, 3, 160, 160), 1)
    assert TrtRunner(opts(**given["trt"])).index == 2
    cfg = parse_toml('[devices.cuda]\ninput_shape = "2x3x256x192"\ngpu = 0\n[devices.trt]\ngpu = 1\n', "bench.toml")
    assert CudaRunner(opts(**cfg.options_for("cuda"))).input_shape == (2, 3, 256, 192)
    # trtexec is told the same GPU
    from bench.core.protocol import get_protocol

    assert tool.settings_for(get_protocol("quick"), cfg.options_for("trt")).device == 1
    for bad, match in (("cuda.input_shape=3x224x224", "NCHW shape"), ("cuda.input_shape=224", "is not a str"), ("cuda.input_shape=1x3x0x224", "NCHW shape"),
                       ("cuda.gpu=-1", "not a device index"), ("trt.gpu=x", "is not a int")):
        with pytest.raises(UserError, match=match):
            parse_option_flags([bad])
