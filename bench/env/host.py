"""Environment capture: what machine, OS, libraries and code produced a result."""
from __future__ import annotations

import math
import os
import platform
import socket
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

LIBRARIES = ("mobileone-bench", "torch", "numpy", "onnx", "onnxscript", "onnxruntime", "pandas", "scipy",
             "coremltools", "litert-torch", "ai-edge-litert", "ai-edge-quantizer", "tensorrt", "nvidia-ml-py",
             "openvino")
ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
             "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16", "avx_vnni", "asimd", "sve")


def cgroup_cpu_limit(root: str = "/sys/fs/cgroup") -> float | None:
    """CPUs allowed by the cgroup quota (v2 cpu.max, or v1 cfs quota/period); None when unlimited."""
    try:
        quota, period = Path(root, "cpu.max").read_text().split()[:2]
        if quota != "max":
            return int(quota) / int(period)
        return None
    except (OSError, ValueError):
        pass
    try:
        quota = int(Path(root, "cpu", "cpu.cfs_quota_us").read_text())
        period = int(Path(root, "cpu", "cpu.cfs_period_us").read_text())
        return quota / period if quota > 0 else None
    except (OSError, ValueError):
        return None


def usable_cores() -> int:
    """The cores this process may use: its affinity set, capped by the cgroup quota."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:
        n = os.cpu_count() or 1
    limit = cgroup_cpu_limit()
    if limit is not None:
        n = min(n, max(1, math.floor(limit)))
    return max(1, n)


def cpu_info() -> dict:
    model, flags = platform.processor() or "", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "model name" and not model.strip("x86_64 "):
                model = value.strip()
            elif key in ("flags", "Features") and not flags:
                flags = set(value.split())
    except OSError:
        pass
    if sys.platform == "darwin":
        try:
            model = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True,
                                   text=True, timeout=5).stdout.strip() or model
        except (OSError, subprocess.SubprocessError):
            pass
    try:
        affinity = sorted(os.sched_getaffinity(0))
    except AttributeError:
        affinity = list(range(os.cpu_count() or 1))
    return {"model": model, "arch": platform.machine(), "isa_flags": [f for f in ISA_FLAGS if f in flags],
            "logical_cpus": os.cpu_count(), "affinity": affinity, "cgroup_cpu_limit": cgroup_cpu_limit(),
            "usable_cores": usable_cores()}


def library_versions() -> dict[str, str]:
    out = {}
    for lib in LIBRARIES:
        try:
            out[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            pass
    return out


def git_revision(root: Path = Path(__file__).resolve().parents[2]) -> dict:
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10).stdout.strip()
    try:
        rev = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
        return {"revision": rev or None, "dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return {"revision": None, "dirty": None}


def _best_seconds(fn, seconds: float) -> float:
    """The fastest of repeated calls of `fn` over `seconds` (after one untimed call)."""
    fn()
    best = math.inf
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def matmul_peak_gflops(threads: int, size: int = 1024, seconds: float = 0.5) -> float:
    """Best achieved fp32 GFLOP/s of a square matrix multiply at `threads`: the roofline against which
    a model's achieved GFLOP/s (2 x MACs / latency) is read."""
    import torch

    saved = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        a, b = torch.randn(size, size), torch.randn(size, size)
        return 2 * size ** 3 / _best_seconds(lambda: torch.mm(a, b), seconds) / 1e9
    finally:
        torch.set_num_threads(saved)


def ort_matmul_peak_gflops(threads: int, size: int = 1024, seconds: float = 0.5) -> float:
    """Best achieved fp32 GFLOP/s of a square MatMul run by ONNX Runtime itself at `threads` intra-op threads:
    the roofline for cells ONNX Runtime measures (torch.mm's peak can sit far below what ONNX Runtime's own
    kernels reach on the same CPU, which put cells above "100% of peak")."""
    import numpy as np
    import onnxruntime as ort
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["c"])], "peak",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [size, size]),
         helper.make_tensor_value_info("b", TensorProto.FLOAT, [size, size])],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [size, size])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feed = {"a": rng.standard_normal((size, size), dtype=np.float32),
            "b": rng.standard_normal((size, size), dtype=np.float32)}
    return 2 * size ** 3 / _best_seconds(lambda: sess.run(None, feed), seconds) / 1e9


def capture(threads: int | None = None, measure_peak: bool = True) -> dict:
    """The run's environment. Device-specific facts (GPU clocks, phone model) are added by the runners."""
    env = {
        "hostname": socket.gethostname(),
        "os": {"system": platform.system(), "release": platform.release(), "version": platform.version(),
               "platform": platform.platform()},
        "python": platform.python_version(),
        "cpu": cpu_info(),
        "libraries": library_versions(),
        "git": git_revision(),
        "argv": sys.argv,
    }
    if measure_peak:
        n = threads or usable_cores()
        torch_peak = matmul_peak_gflops(n)
        ort_peak = ort_matmul_peak_gflops(n)
        # The roofline is the best either runtime reaches here: the one the cells run on, measured the same way.
        env["matmul_peak"] = {"gflops": round(max(torch_peak, ort_peak), 1), "threads": n, "dtype": "float32",
                              "size": 1024, "library": "onnxruntime MatMul" if ort_peak >= torch_peak else "torch.mm",
                              "by_library": {"onnxruntime": round(ort_peak, 1), "torch": round(torch_peak, 1)}}
    return env
