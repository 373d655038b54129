"""The cell a node's Ray worker runs, called here directly: the same measured cell as a local run, with the
node's host label, cache and environment (a real export and timing of the zoo's smallest model)."""
from __future__ import annotations

import pytest

from bench.cluster import node, remote
from bench.config import SuiteConfig
from bench.core.protocol import get_protocol
from bench.pipeline import plan_cells

pytestmark = pytest.mark.slow  # a real export and timing: about 15 s here


def test_a_cell_runs_with_the_node_s_host_cache_and_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(node.HOST_ENV, "lab-7")
    monkeypatch.setenv(node.CACHE_ENV, str(tmp_path / "node-cache"))
    cfg = SuiteConfig(models="mobileone_mu0", devices=("cpu",), protocol="quick", threads=1,
                      out=str(tmp_path / "runs"), cache=str(tmp_path / "driver-cache"))
    (cell,) = plan_cells(cfg)
    out = remote.run_cell(cell, cfg, get_protocol("quick"), 1, None)
    assert out.host == "lab-7" and out.result.runner_info["host"] == "lab-7"
    assert out.result.ok, out.result.error
    assert out.result.artifact.path.startswith(str(tmp_path / "node-cache"))  # the node's cache, not the driver's
    assert not (tmp_path / "driver-cache").exists()
    assert out.env["host_label"] == "lab-7" and out.env["matmul_peak"]["threads"] == 1
    assert out.result.env_key.cpu_model == out.env["cpu"]["model"]
    again = remote.run_cell(cell, cfg, get_protocol("quick"), 1, None)
    assert again.env is out.env  # a worker measures its host once per thread count
