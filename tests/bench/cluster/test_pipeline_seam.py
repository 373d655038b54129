"""bench.pipeline's executor seam: run_suite plans, resumes and writes; an executor (here one that records
every cell it is given as failed, measuring nothing) decides where cells run and what env the run keeps."""
from __future__ import annotations

import pytest

from bench.cluster.driver import failed_result
from bench.config import SuiteConfig
from bench.core.errors import UserError
from bench.pipeline import run_suite
from bench.store import load_run


class Recording:
    def __init__(self, refuse: str | None = None):
        self.refuse, self.given = refuse, []

    def check(self, cfg):
        if self.refuse:
            raise UserError(self.refuse)

    def environment(self, cfg, threads):
        return {"hostname": "driver", "hosts": {}}

    def execute(self, cells, cfg, threads, run_env, reporter, run_budget, writer):
        self.given.append([c.key for c in cells])
        for cell in cells:
            run_env["hosts"]["h1"] = {"hostname": "h1"}
            writer.add(failed_result(cell, cfg, "not measured: orchestration test", {}, 1, "h1"))


def test_run_suite_runs_its_cells_through_the_executor(tmp_path):
    cfg = SuiteConfig(models="mobileone_s0,mobilenetv2_100", devices=("cpu", "torch"), protocol="quick",
                      threads=1, out=str(tmp_path / "runs"), cache=str(tmp_path / "cache"))
    ex = Recording()
    run = run_suite(cfg, ["bench", "run"], executor=ex)
    assert len(ex.given[0]) == 4 and run.status == "complete"
    stored = load_run(next((tmp_path / "runs").glob("*.json")))
    assert stored.env == {"hostname": "driver", "hosts": {"h1": {"hostname": "h1"}}}
    assert {c.runner_info["host"] for c in stored.cells} == {"h1"}
    with pytest.raises(UserError, match="no node offers"):
        run_suite(cfg, ["bench", "run"], executor=Recording(refuse="no node offers trt"))
    assert len(list((tmp_path / "runs").glob("*.json"))) == 1  # refused before a run file exists
