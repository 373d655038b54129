"""The pipeline on real ONNX exports: a failing cell is recorded and the suite goes on, interrupt and resume,
what a cell records."""

import pytest

from bench.config import SuiteConfig
from bench.pipeline import run_suite
from bench.store import load_run, run_path
from exporters import base as exporters_base

TINY = "mobileone_mu0"  # the smallest real model of the zoo: exports in seconds


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def suite(tmp_path, cache_dir, **kw):
    """One cell after another, so the order of the cells is the plan's (interleaved, the default, records each
    cell when its own rounds end: tests/bench/test_interleave_suite.py)."""
    base = dict(models=f"{TINY},mobileone_mu1", devices=("cpu",), protocol="quick", threads=1,
                out=str(tmp_path / "runs"), cache=str(cache_dir), interleave=False)
    base.update(kw)
    return SuiteConfig(**base)


def test_failing_cell_is_recorded_and_the_suite_goes_on(tmp_path, cache_dir, monkeypatch):
    real = exporters_base.get_exporter("onnx")

    def flaky(request, cache):
        if request.model == TINY:
            raise RuntimeError("converter exploded")
        return real(request, cache)

    monkeypatch.setattr(exporters_base, "get_exporter", lambda name: flaky)
    monkeypatch.setattr("bench.pipeline.get_exporter", lambda name: flaky)
    run = run_suite(suite(tmp_path, cache_dir), ["test"])
    # run_suite returns the run it wrote
    saved = load_run(run_path(tmp_path / "runs", run.run_id))
    assert [(c.key, c.status, c.latency_ms) for c in saved.cells] == [(c.key, c.status, c.latency_ms) for c in run.cells]
    by_model = {c.model: c for c in run.cells}
    assert by_model[TINY].status == "failed" and by_model[TINY].error_stage == "export"
    assert "converter exploded" in by_model[TINY].error
    assert by_model["mobileone_mu1"].ok and by_model["mobileone_mu1"].summary.count >= 9
    assert run.status == "complete"


class InterruptAfterFirstCell:
    def run_started(self, path, cells): self.path = path
    def cell_started(self, cell, i, n): pass
    def round_done(self, cell, m): pass
    def cell_done(self, result): raise KeyboardInterrupt


def test_interrupt_keeps_finished_cells_and_resume_completes(tmp_path, cache_dir):
    cfg = suite(tmp_path, cache_dir)
    reporter = InterruptAfterFirstCell()
    with pytest.raises(KeyboardInterrupt):
        run_suite(cfg, ["test"], reporter=reporter)
    partial = load_run(reporter.path)
    assert partial.status == "interrupted" and len(partial.cells) == 1 and partial.cells[0].ok
    first = partial.cells[0]
    path = reporter.path
    run_suite(SuiteConfig.from_dict(partial.config), ["test"], resume=path)
    done = load_run(path)
    assert path == reporter.path and done.status == "complete"
    assert [c.model for c in done.cells] == [TINY, "mobileone_mu1"]
    assert done.cells[0] == first  # the finished cell was not measured again


def test_cell_records_everything_a_reader_needs(tmp_path, cache_dir):
    run = run_suite(suite(tmp_path, cache_dir, models=TINY, form="both"), ["test"])
    assert [c.form for c in run.cells] == ["deploy", "train"]
    c = run.cells[0]
    assert c.load_ms > 0 and c.first_inference_ms > 0 and len(c.samples_ms) == 3
    assert c.artifact.sha256 and c.threads == 1 and c.protocol.name == "quick"
    assert c.env_key.threads == 1 and c.env_key.runtime_version.startswith("onnxruntime")
    assert c.model_info["params_m"] > 0 and len(c.contention) == 3
    env = run.env
    assert env["cpu"]["usable_cores"] >= 1 and env["libraries"]["onnxruntime"] and env["matmul_peak"]["gflops"] > 0
    assert run.cells[1].artifact.metadata["build"]["deploy"] is False
