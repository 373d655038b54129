"""Environment facts: the host (CPU, OS, libraries, git revision) and NVIDIA GPUs (identity, NVML figures)."""
from bench.env.host import (
    capture,
    cgroup_cpu_limit,
    cpu_info,
    git_revision,
    library_versions,
    matmul_peak_gflops,
    usable_cores,
)

__all__ = ["capture", "cgroup_cpu_limit", "cpu_info", "git_revision", "library_versions",
           "matmul_peak_gflops", "usable_cores"]
