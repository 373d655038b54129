"""The driver's pure parts and its refusals; the driver against a real cluster is tests/bench/cluster/test_lab.py."""
from __future__ import annotations

import socket
import time

import pytest

from bench.cluster import driver
from bench.config import SuiteConfig
from bench.core.errors import UserError
from bench.pipeline import plan_cells


def test_a_node_is_overdue_only_after_its_own_silence():
    t = 1000.0
    assert not driver.overdue(t + 50, submitted=t, last_result=None, timeout_s=60)
    assert driver.overdue(t + 61, submitted=t, last_result=None, timeout_s=60)
    # Queued behind other cells of the node: results keep coming, so the queue's length does not count.
    assert not driver.overdue(t + 500, submitted=t, last_result=t + 450, timeout_s=60)
    assert driver.overdue(t + 500, submitted=t, last_result=t + 420, timeout_s=60)


def test_a_cell_that_never_came_back_is_a_typed_failed_record():
    cfg = SuiteConfig(models="mobileone_s0", devices=("torch",), protocol="quick")
    (cell,) = plan_cells(cfg)
    env = {"cpu": {"model": "Xeon Lab"}, "libraries": {"torch": "2.13.0"}}
    r = driver.failed_result(cell, cfg, "node hB was lost (NodeDiedError) and no other node offers torch", env,
                             2, "hB")
    assert not r.ok and r.error_stage == "run" and "no other node offers torch" in r.error
    assert r.runner_info == {"host": "hB"} and r.protocol.name == "quick"
    assert r.env_key.cpu_model == "Xeon Lab" and r.env_key.runtime_version == "torch 2.13.0"


def test_interleave_is_refused_before_anything_is_contacted():
    ex = driver.ClusterExecutor("127.0.0.1:1")
    with pytest.raises(UserError, match="--interleave .* cannot spread them over a cluster"):
        ex.check(SuiteConfig(devices=("cpu",), interleave=True))
    assert ex.ray is None


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when this returns: nothing listens there


def test_a_head_that_does_not_answer_is_one_line_in_seconds():
    pytest.importorskip("ray")
    t0 = time.monotonic()
    with pytest.raises(UserError, match=r"no Ray head answers at 127\.0\.0\.1:\d+ .*bench node start --head"):
        driver.connect(f"127.0.0.1:{_closed_port()}")
    assert time.monotonic() - t0 < 10
    with pytest.raises(UserError, match="must be the head's HOST:PORT"):
        driver.connect("headnode")
