"""Importing the GPU modules imports nothing GPU-related: a machine without a GPU pays nothing for them."""

import pytest
from import_probe import imported_after

OURS = ["devices.registry", "bench.env.gpu", "devices.trt", "devices.cuda", "devices.trtexec", "exporters.tensorrt"]
GPU_MODULES = {"tensorrt", "tensorrt_bindings", "tensorrt_libs", "pynvml", "cuda", "cupy", "pycuda"}




def test_no_gpu_module_is_imported_at_import_time():
    assert imported_after(OURS) & GPU_MODULES == set()


def test_torch_is_not_imported_either():
    # torch is a core dependency, but importing it takes seconds: the GPU modules touch it only when used
    assert "torch" not in imported_after(OURS)


def test_the_check_detects_an_import():
    """The probe can fail: a module that does import pynvml is seen."""
    pytest.importorskip("pynvml")
    assert "pynvml" in imported_after(["devices.registry", "pynvml"])
