"""What a node's Ray worker runs for one cell: the same cell function as a local run (`measure_cell`), with
this host's export cache and this host's environment, returning the typed result, the host it ran on and that
host's environment. No Ray here: the driver wraps `run_cell` as a Ray task, and a test can call it directly."""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass, replace

from bench import env as envmod
from bench.cluster.node import CACHE_ENV, HOST_ENV
from bench.config import SuiteConfig
from bench.core.protocol import Protocol
from bench.core.result import LatencyResult
from bench.env import usable_cores
from bench.env.gpu import gpu_env
from bench.measure import WaitBudget
from bench.pipeline import Cell, SilentReporter, measure_cell
from devices.registry import get_device

# A worker measures this host's environment (and its matmul peak, about a second) once per thread count.
_ENV_CACHE: dict[tuple[int, bool], dict] = {}


@dataclass(frozen=True)
class CellOutcome:
    """One cell as measured on a node: its record (runner_info["host"] names the host), the host label, and
    the host's environment as a local run records it (bench.env.capture)."""

    result: LatencyResult
    host: str
    env: dict


def host_label() -> str:
    return os.environ.get(HOST_ENV) or socket.gethostname()


def host_env(threads: int, gpu: bool) -> dict:
    key = (threads, gpu)
    if key not in _ENV_CACHE:
        env = envmod.capture(threads)
        if gpu:
            env["gpu"] = gpu_env()
        env["host_label"] = host_label()
        _ENV_CACHE[key] = env
    return _ENV_CACHE[key]


def run_cell(cell: Cell, cfg: SuiteConfig, protocol: Protocol, threads: int | None,
             wait_budget_s: float | None) -> CellOutcome:
    """Measure one cell here. `threads` None: the cores this worker may use, as a local run decides."""
    cache = os.environ.get(CACHE_ENV)
    if cache:
        cfg = replace(cfg, cache=cache)
    threads = threads or usable_cores()
    env = host_env(threads, get_device(cell.device).kind == "gpu")
    budget = WaitBudget(wait_budget_s if wait_budget_s is not None else float("inf"))
    result = measure_cell(cell, cfg, protocol, threads, env, SilentReporter(), budget)
    host = host_label()
    return CellOutcome(replace(result, runner_info={**result.runner_info, "host": host}), host, env)
