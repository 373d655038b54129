"""Synthetic results files for the analysis tests (tests/bench/analysis, and tests/bench/commands/test_analysis.py
for `bench table/plot/analyze`), written with the store's own classes (nothing measured)."""
from __future__ import annotations

import struct
from pathlib import Path

import pytest

from devices.registry import comparability_key as env_key
from bench.core.result import FAILED, OK, LatencyResult
from bench.store import Run, RunWriter

# (params M, MACs M) as the pipeline records them in model_info: known values, so no counting is needed.
COUNTS = {"mobileone_s0": (2.0785, 275.1104), "mobilenetv2_100": (3.5049, 300.7743),
          "repvgg_a0": (8.3094, 1361.4510), "mobileone_s1": (4.765, 825.1)}


def make_env(host: str, cpu_model: str, peak: float = 25.0, threads: int = 2) -> dict:
    return {"hostname": host, "cpu": {"model": cpu_model}, "libraries": {"onnxruntime": "1.31.1", "torch": "2.13.0"},
            "matmul_peak": {"gflops": peak, "threads": threads, "dtype": "float32"}}


def make_cell(model: str, device: str, latency: float | None, env: dict, *, form: str = "deploy",
              runner: str | None = None, finished: str = "2026-01-01T10:00:00+00:00", error: str | None = None,
              threads: int = 2, flags: tuple[str, ...] = ()) -> LatencyResult:
    runner = runner or {"cpu": "onnxruntime", "torch": "torch"}.get(device, device)
    params, macs = COUNTS[model] if model in COUNTS else (1.0, 100.0)
    summary = None
    if latency is not None:
        summary = {"statistic": "median", "latency_ms": latency, "median_ms": latency, "p90_ms": latency * 1.1,
                   "mean_ms": latency, "std_ms": 0.1, "min_ms": latency * 0.9, "max_ms": latency * 1.2,
                   "ci_low_ms": latency * 0.95, "ci_high_ms": latency * 1.05, "count": 30, "rounds": 3,
                   "ci_rel_halfwidth": 0.05}
    return LatencyResult(
        model=model, device=device, runner=runner, form=form, threads=threads,
        status=FAILED if error else OK, error=error, error_stage="export" if error else None,
        protocol={"name": "quick", "statistic": "median"}, summary=summary, flags=list(flags),
        model_info={"params_m": params, "macs_m": macs},
        env_key=env_key(env, device, runner, threads, "fp32"), finished=finished, started=finished)


@pytest.fixture
def write_run(tmp_path):
    """write_run(name, env, cells, created=...) -> path of a results file written by RunWriter."""
    def write(name: str, env: dict, cells: list[LatencyResult], created: str = "2026-01-01T09:00:00+00:00",
              folder: Path | None = None) -> Path:
        run = Run(run_id=name, created=created, command=["bench", "run"], config={}, env=env)
        path = (folder or tmp_path / "runs") / f"{name}.json"
        writer = RunWriter(path, run)
        for c in cells:
            writer.add(c)
        writer.finish()
        return path
    return write


@pytest.fixture
def three_model_run(write_run):
    """One run: 3 models on cpu (deploy), torch in both forms, as `bench run --both-forms` writes it."""
    env = make_env("host-a", "AMD EPYC")
    cells = [make_cell("mobileone_s0", "cpu", 40.0, env), make_cell("mobilenetv2_100", "cpu", 45.0, env),
             make_cell("repvgg_a0", "cpu", 130.0, env),
             make_cell("mobileone_s0", "torch", 300.0, env), make_cell("mobilenetv2_100", "torch", 900.0, env),
             make_cell("repvgg_a0", "torch", 1500.0, env),
             make_cell("mobileone_s0", "torch", 1200.0, env, form="train"),
             make_cell("repvgg_a0", "torch", 2100.0, env, form="train")]
    return write_run("20260101-090000-aaaa", env, cells)


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk; fails unless the file starts with the PNG signature."""
    data = Path(path).read_bytes()[:32]
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.fixture
def check_png():
    return png_size


@pytest.fixture
def mk():
    """The builders above, for tests (conftest modules are not importable by name)."""
    from types import SimpleNamespace
    return SimpleNamespace(env=make_env, cell=make_cell, counts=COUNTS)
