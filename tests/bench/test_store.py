"""Results files: round trip, schema refusal, atomic writes."""
import json

import pytest

from bench.core.errors import UserError
from bench.core.result import ComparabilityKey, LatencyResult
from bench.store import Run, RunWriter, find_run, load_run, result_files, to_frame


def make_run(run_id="r1", cells=()):
    return Run(run_id=run_id, created="2026-11-21T00:00:00+00:00", command=["bench", "run"],
               config={"models": "mobileone_s0"}, env={"hostname": "h", "cpu": {"model": "X"}}, cells=list(cells))


def cell(model="mobileone_s0", device="cpu", latency=1.0, status="ok"):
    summary = {"latency_ms": latency, "median_ms": latency, "ci_low_ms": latency * 0.9,
               "ci_high_ms": latency * 1.1, "count": 3, "rounds": 1, "statistic": "median"}
    return LatencyResult(model=model, device=device, runner="onnxruntime", status=status,
                         summary=summary if status == "ok" else None, samples_ms=[[latency] * 3],
                         error=None if status == "ok" else "boom",
                         env_key=ComparabilityKey(device=device, runner="onnxruntime"))


def test_round_trip(tmp_path):
    path = tmp_path / "r1.json"
    w = RunWriter(path, make_run())
    w.add(cell())
    w.add(cell("repvgg_a0", status="failed"))
    w.finish()
    run = load_run(path)
    assert run.status == "complete" and [c.model for c in run.cells] == ["mobileone_s0", "repvgg_a0"]
    assert run.cells[0] == cell() and run.cells[1].error == "boom"
    frame = to_frame([run])
    assert list(frame["status"]) == ["ok", "failed"] and frame.loc[0, "latency_ms"] == 1.0


def test_each_add_is_on_disk(tmp_path):
    path = tmp_path / "r.json"
    w = RunWriter(path, make_run())
    w.add(cell())
    assert [c["model"] for c in json.loads(path.read_text())["cells"]] == ["mobileone_s0"]
    w.add(cell(latency=2.0))  # the same key replaces the earlier cell
    assert len(load_run(path).cells) == 1 and load_run(path).cells[0].summary.latency_ms == 2.0
    assert not list(tmp_path.glob(".*tmp"))  # no temporary files left behind


def test_schema_refusal(tmp_path):
    path = tmp_path / "future.json"
    data = make_run().to_dict()
    data["schema"] = 99
    path.write_text(json.dumps(data))
    with pytest.raises(UserError, match="schema 99"):
        load_run(path)
    path.write_text(json.dumps({"something": "else"}))
    with pytest.raises(UserError, match="not a mobileone-bench results file"):
        load_run(path)
    path.write_text("{not json")
    with pytest.raises(UserError, match="not valid JSON"):
        load_run(path)


def test_find_and_list(tmp_path):
    RunWriter(tmp_path / "a.json", make_run("a"))
    assert find_run("a", tmp_path) == tmp_path / "a.json"
    assert find_run("latest", tmp_path) == tmp_path / "a.json"
    with pytest.raises(UserError, match="not found"):
        find_run("zzz", tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match="no results found"):
        result_files(None, empty)
