"""`bench baseline accept/list`: a run copied with its environment, refused when unfinished or taken."""
import json

import pytest

from bench.core.errors import UserError
from bench.gate.baselines import accept_baseline, list_baselines
from bench.gate.stored import load_result_set

from gate_helpers import ENV, assert_cli_error, cli, make_cell, rounds_at, write_run


def test_accept_copies_the_run_with_each_cells_environment(tmp_path):
    runs = tmp_path / "runs"
    path = write_run(runs / "r1.json", [make_cell("mobileone_s0", rounds_at(10.0))], run_id="r1")
    old = json.loads(path.read_text())  # as schema 1 could hold it: a cell without its environment key
    old["schema"], old["cells"][0]["env_key"] = 1, {}
    path.write_text(json.dumps(old))
    dst = accept_baseline("r1", runs, tmp_path / "baselines", name="cpu-main")
    data = json.loads(dst.read_text())
    assert dst.name == "cpu-main.json" and data["env"] == ENV and data["schema"] == 2
    assert data["cells"][0]["env_key"]["cpu_model"] == "Test CPU 9000"
    assert list_baselines(tmp_path / "baselines")[0]["cells"] == 1
    # usable by name in bench compare
    s = load_result_set("cpu-main", runs, tmp_path / "baselines")
    assert len(s.cells) == 1
    with pytest.raises(UserError, match="exists"):
        accept_baseline("r1", runs, tmp_path / "baselines", name="cpu-main")
    accept_baseline("r1", runs, tmp_path / "baselines", name="cpu-main", force=True)


def test_accept_refuses_unfinished_or_empty_runs(tmp_path):
    runs = tmp_path / "runs"
    write_run(runs / "r2.json", [make_cell("mobileone_s0", rounds_at(10.0))], run_id="r2", status="interrupted")
    with pytest.raises(UserError, match="interrupted.*--resume"):
        accept_baseline("r2", runs, tmp_path / "b")
    write_run(runs / "r3.json", [make_cell("mobileone_s0", [], ok=False)], run_id="r3")
    with pytest.raises(UserError, match="no measured cell"):
        accept_baseline("r3", runs, tmp_path / "b")
    write_run(runs / "r4.json", [make_cell("mobileone_s0", rounds_at(10.0))], run_id="r4")
    with pytest.raises(UserError, match="letters, digits"):
        accept_baseline("r4", runs, tmp_path / "b", name="../evil")


def test_cli(tmp_path):
    run = write_run(tmp_path / "r5.json", [make_cell("mobileone_s0", rounds_at(10.0))], run_id="r5")
    rc, out, err = cli("baseline", "accept", run, "--dir", tmp_path / "b", "--name", "ci")
    assert rc == 0 and (tmp_path / "b" / "ci.json").is_file() and "ci.json" in out, err
    rc, out, _ = cli("baseline", "list", "--dir", tmp_path / "b", "--json")
    assert json.loads(out)[0]["name"] == "ci"
    assert_cli_error(cli("baseline", "accept", "no-such-run", "--dir", tmp_path / "b"), "no-such-run")
