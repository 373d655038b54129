"""--interleave: the rounds of a device's cells run round-robin in a fresh order each pass, each cell recorded
when its own stopping rule ends it, with the same records as a sequential run."""
import json

from bench.cli import main
from bench.config import SuiteConfig
from bench.measure import WaitBudget
from bench.pipeline import measure_interleaved, plan_cells


class Recorder:
    def __init__(self):
        self.rounds, self.done = [], []

    def run_started(self, path, cells): pass
    def cell_started(self, cell, index, total): pass
    def waiting(self, cell, load, threshold, seconds): pass

    def round_done(self, cell, m):
        self.rounds.append(cell.model)

    def cell_done(self, result):
        self.done.append(result)


class Writer:
    def __init__(self):
        self.cells = []

    def add(self, result):
        self.cells.append(result)


def test_rounds_alternate_between_cells(tmp_path):
    from bench.measure import WaitBudget

    cfg = SuiteConfig(models="mobileone_mu0,mobileone_mu1,mobileone_mu2", devices=("cpu",), protocol="quick",
                      threads=1, out=str(tmp_path / "runs"), cache=str(tmp_path / "cache"), interleave=True)
    rec, writer = Recorder(), Writer()
    measure_interleaved(plan_cells(cfg), cfg, 1, {}, rec, WaitBudget(), writer, seed=3)
    assert len(rec.rounds) == 9 and all(c.ok for c in writer.cells)  # quick: 3 rounds each
    passes = [rec.rounds[i:i + 3] for i in range(0, 9, 3)]
    assert all(sorted(p) == ["mobileone_mu0", "mobileone_mu1", "mobileone_mu2"] for p in passes)
    assert len({tuple(p) for p in passes}) > 1  # a fresh order each pass


def test_bench_run_interleave_writes_the_same_kind_of_run(tmp_path, capsys):
    rc = main(["run", "--device", "cpu", "--models", "mobileone_mu0,mobileone_mu1", "--protocol", "quick",
               "--threads", "1", "--interleave", "--out", str(tmp_path / "runs"), "--cache-dir", str(tmp_path / "c")])
    assert rc == 0, capsys.readouterr().err
    run = json.loads(next((tmp_path / "runs").glob("*.json")).read_text())
    assert run["config"]["interleave"] is True and run["status"] == "complete"
    assert sorted(c["model"] for c in run["cells"]) == ["mobileone_mu0", "mobileone_mu1"]
    assert all(c["status"] == "ok" and len(c["samples_ms"]) == 3 for c in run["cells"])


def test_a_local_run_interleaves_unless_told_not_to(monkeypatch, tmp_path):
    from bench import pipeline

    called = []
    monkeypatch.setattr(pipeline, "measure_interleaved", lambda *a, **k: called.append("interleaved"))
    def sequential(*a, **k):
        called.append("sequential")
        raise KeyboardInterrupt  # stop before anything is written

    monkeypatch.setattr(pipeline, "measure_cell", sequential)
    for flag, expected in ((None, "interleaved"), (True, "interleaved"), (False, "sequential")):
        called.clear()
        cfg = SuiteConfig(models="mobileone_mu0", devices=("cpu",), protocol="quick", threads=1,
                          out=str(tmp_path / f"runs-{flag}"), cache=str(tmp_path / "c"), interleave=flag)
        try:
            pipeline.LocalExecutor().execute(pipeline.plan_cells(cfg), cfg, 1, {}, pipeline.SilentReporter(),
                                             WaitBudget(), writer=None)
        except KeyboardInterrupt:
            pass
        assert called == [expected]
