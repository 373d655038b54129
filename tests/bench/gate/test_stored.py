"""`bench compare` between stored runs: verdicts, refusal of mismatched environments, exit codes, outputs."""
import json

import pytest

from bench.core.errors import UserError
from bench.gate.effects import Effects
from bench.gate.stored import compare_sets, load_result_set
from bench.gate.verdict import ERROR, FAIL, PASS, UNSTABLE

from gate_helpers import ENV, assert_cli_error, bench, cli, make_cell, rounds_at, write_run


def sets(tmp_path, base_cells, new_cells, base_env=None, new_env=None):
    b = write_run(tmp_path / "base.json", base_cells, env=base_env)
    n = write_run(tmp_path / "new.json", new_cells, env=new_env, run_id="20250102-000000-beef",
                  created="2025-01-02T00:00:00+00:00")
    return load_result_set(str(b), tmp_path), load_result_set(str(n), tmp_path)


def test_verdicts_between_runs(tmp_path):
    base = [make_cell("mobileone_s0", rounds_at(10.0, seed=1)), make_cell("mobileone_s1", rounds_at(20.0, seed=2)),
            make_cell("mobileone_s2", rounds_at(30.0, sd=0.08, seed=3))]
    new = [make_cell("mobileone_s0", rounds_at(10.0, seed=4)), make_cell("mobileone_s1", rounds_at(24.0, seed=5)),
           make_cell("mobileone_s2", rounds_at(30.0, sd=0.08, seed=6))]
    r = compare_sets(*sets(tmp_path, base, new), Effects(0.05))
    by = {c.model: c for c in r.cells}
    assert by["mobileone_s0"].verdict == PASS
    assert by["mobileone_s1"].verdict == FAIL and by["mobileone_s1"].ratio == pytest.approx(1.2, rel=0.03)
    assert by["mobileone_s2"].verdict == UNSTABLE  # 8% round-to-round noise cannot resolve 5%
    assert by["mobileone_s0"].level == pytest.approx(1 - 0.05 / 3) and by["mobileone_s0"].rounds == 10
    assert r.exit_code == 1 and r.mode == "compare"


def test_mismatched_environments_are_refused_unless_forced(tmp_path):
    base = [make_cell("mobileone_s0", rounds_at(10.0), threads=1)]
    new = [make_cell("mobileone_s0", rounds_at(13.0), threads=2)]
    b, n = sets(tmp_path, base, new)
    with pytest.raises(UserError, match=r"different environments \(threads: 1 vs 2\).*--force"):
        compare_sets(b, n, Effects())
    r = compare_sets(b, n, Effects(), force=True)
    assert r.cells[0].advisory and r.cells[0].verdict == FAIL and r.exit_code == 0
    assert "threads: 1 vs 2" in r.cells[0].note and any("advisory" in x for x in r.notes)


def test_other_cpu_or_runtime_is_refused(tmp_path):
    other = {**ENV, "cpu": {"model": "Other CPU"}, "libraries": {"onnxruntime": "1.20.0"}}
    from devices.registry import comparability_key as env_key

    base = [make_cell("mobileone_s0", rounds_at(10.0))]  # keyed in ENV
    new = [make_cell("mobileone_s0", rounds_at(10.0), env_key=env_key(other, "cpu", "onnxruntime", 1, "fp32"))]
    b, n = sets(tmp_path, base, new, new_env=other)
    with pytest.raises(UserError) as e:
        compare_sets(b, n, Effects())
    assert "cpu_model: Test CPU 9000 vs Other CPU" in str(e.value)
    assert "runtime_version: onnxruntime 1.31.1 vs onnxruntime 1.20.0" in str(e.value)


def test_too_few_rounds_failed_cells_and_summaries(tmp_path):
    summary_only = {"latency_ms": 10.0, "ci_low_ms": 9.9, "ci_high_ms": 10.1, "statistic": "median"}
    base = [make_cell("mobileone_s0", rounds_at(10.0, n=3)), make_cell("mobileone_s1", rounds_at(10.0)),
            make_cell("mobileone_s2", [], summary=summary_only), make_cell("mobilenetv2_100", [], ok=False)]
    new = [make_cell("mobileone_s0", rounds_at(10.0, n=3)), make_cell("mobileone_s1", [], ok=False),
           make_cell("mobileone_s2", [], summary={**summary_only, "latency_ms": 12.0, "ci_low_ms": 11.9,
                                                  "ci_high_ms": 12.1}),
           make_cell("mobilenetv2_100", rounds_at(10.0))]
    r = compare_sets(*sets(tmp_path, base, new), Effects())
    by = {c.model: c for c in r.cells}
    assert by["mobileone_s0"].verdict == UNSTABLE and "need >= 5" in by["mobileone_s0"].note
    assert by["mobileone_s1"].verdict == ERROR and "new failed" in by["mobileone_s1"].note
    assert by["mobileone_s2"].verdict == FAIL and by["mobileone_s2"].method == "summary-ci"
    assert by["mobilenetv2_100"].verdict == "SKIP"


def test_a_folder_keeps_the_newest_cell(tmp_path):
    folder = tmp_path / "runs"
    write_run(folder / "old.json", [make_cell("mobileone_s0", rounds_at(50.0))], run_id="a",
              created="2025-01-01T00:00:00+00:00")
    write_run(folder / "new.json", [make_cell("mobileone_s0", rounds_at(10.0))], run_id="b",
              created="2025-02-01T00:00:00+00:00")
    s = load_result_set(str(folder), tmp_path)
    assert s.cells[("mobileone_s0", "cpu", "onnxruntime", "deploy")].run_id == "b"


def test_no_common_cell(tmp_path):
    b, n = sets(tmp_path, [make_cell("mobileone_s0", rounds_at(10.0))], [make_cell("mobileone_s1", rounds_at(10.0))])
    with pytest.raises(UserError, match="no cell in common"):
        compare_sets(b, n, Effects())


@pytest.mark.parametrize("new_level, code", [(10.0, 0), (13.0, 1)])
def test_cli_exit_codes_and_outputs(tmp_path, new_level, code):
    write_run(tmp_path / "base.json", [make_cell("mobileone_s0", rounds_at(10.0, seed=1))])
    write_run(tmp_path / "new.json", [make_cell("mobileone_s0", rounds_at(new_level, seed=2))], run_id="x")
    md, js = tmp_path / "gate.md", tmp_path / "gate.json"
    rc, out, err = cli("compare", tmp_path / "base.json", tmp_path / "new.json", "--markdown", md, "--json", js)
    assert rc == code, err
    assert ("FAIL" if code else "PASS") in md.read_text().splitlines()[0]
    data = json.loads(js.read_text())
    assert data["exit_code"] == code and data["cells"][0]["model"] == "mobileone_s0"
    assert "latency gate" in out


def test_cli_unstable_exit_code(tmp_path):
    write_run(tmp_path / "base.json", [make_cell("mobileone_s0", rounds_at(10.0, sd=0.1, seed=1))])
    write_run(tmp_path / "new.json", [make_cell("mobileone_s0", rounds_at(10.0, sd=0.1, seed=2))], run_id="x")
    assert cli("compare", tmp_path / "base.json", tmp_path / "new.json")[0] == 3


def test_cli_usage_errors(tmp_path):
    write_run(tmp_path / "base.json", [make_cell("mobileone_s0", rounds_at(10.0), threads=1)])
    write_run(tmp_path / "new.json", [make_cell("mobileone_s0", rounds_at(10.0), threads=4)], run_id="x")
    assert_cli_error(cli("compare", tmp_path / "base.json", tmp_path / "new.json"), "different environments",
                     "--force")
    rc, out, _ = cli("compare", tmp_path / "base.json", tmp_path / "new.json", "--force")
    assert rc == 0 and "advisory" in out
    assert_cli_error(cli("compare", tmp_path / "base.json", tmp_path / "new.json", "--min-effect", "2"),
                     "between 0 and 1")
    assert_cli_error(cli("compare", tmp_path / "base.json", tmp_path / "new.json", "--alpha", "x"), "--alpha")
    assert_cli_error(cli("compare", tmp_path / "base.json"), "the following arguments are required: NEW")


def test_cli_as_a_process(tmp_path):
    """The real entry point's exit status, and a one-line error for a result set that does not exist."""
    write_run(tmp_path / "base.json", [make_cell("mobileone_s0", rounds_at(10.0, seed=1))])
    write_run(tmp_path / "new.json", [make_cell("mobileone_s0", rounds_at(13.0, seed=2))], run_id="x")
    assert bench("compare", tmp_path / "base.json", tmp_path / "new.json").returncode == 1
    assert_cli_error(cli("compare", tmp_path / "nope.json", tmp_path / "new.json"), "'", "nope.json",
                     "bench baseline list")


def test_a_flagged_cell_never_passes(tmp_path):
    from dataclasses import replace

    base = [make_cell("mobileone_s0", rounds_at(10.0, seed=1)), make_cell("mobileone_s1", rounds_at(20.0, seed=2))]
    new = [replace(make_cell("mobileone_s0", rounds_at(10.0, seed=4)), flags=["contended"]),
           make_cell("mobileone_s1", rounds_at(20.0, seed=5))]
    r = compare_sets(*sets(tmp_path, base, new), Effects(0.05))
    by = {c.model: c for c in r.cells}
    assert by["mobileone_s0"].verdict == UNSTABLE and "new flagged contended or unstable" in by["mobileone_s0"].note
    assert by["mobileone_s1"].verdict == PASS
    assert r.exit_code == 3
