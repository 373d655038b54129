"""`bench table`, `bench plot`, `bench analyze` through the CLI's own entry point: outputs, defaults, errors."""
import json

import pytest

from bench import cli, commands


@pytest.fixture(autouse=True)
def analysis_commands(monkeypatch):
    # Until the lead lists "analysis" in COMMAND_MODULES, add it here; afterwards this is a no-op.
    if "analysis" not in commands.COMMAND_MODULES:
        monkeypatch.setattr(commands, "COMMAND_MODULES", [*commands.COMMAND_MODULES, "analysis"])


def run_bench(capsys, *args):
    rc = cli.main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


def test_table_writes_the_file_and_prints_it(tmp_path, capsys, three_model_run):
    out_file = tmp_path / "t.csv"
    rc, out, err = run_bench(capsys, "table", "--results", str(three_model_run), "--format", "csv",
                             "--out", str(out_file))
    assert rc == 0
    assert out_file.read_text() == out
    assert out.splitlines()[0].startswith("model,paper_name,top1,params_m,macs_m,cpu ms")
    assert f"table written to {out_file}" in err


def test_table_default_output_is_named_after_the_run(tmp_path, capsys, monkeypatch, three_model_run):
    monkeypatch.chdir(tmp_path)
    rc, out, _ = run_bench(capsys, "table", "--results", str(three_model_run), "--format", "latex")
    assert rc == 0
    written = tmp_path / "results" / "tables" / "latency-20260101-090000-aaaa.tex"
    assert written.read_text() == out


def test_table_paper_markdown(tmp_path, capsys):
    rc, out, _ = run_bench(capsys, "table", "--paper", "--out", str(tmp_path / "paper.md"))
    assert rc == 0
    assert "| MobileOne-S0 | 71.4 | 2.08 | 275 | 10.55 | 0.79 | 0.56 | 0.59 |" in out


@pytest.mark.slow  # draws every --paper figure in two formats; tests/bench/analysis/test_plots.py covers them in PNG
def test_plot_paper(tmp_path, capsys):
    rc, out, err = run_bench(capsys, "plot", "--paper", "--out", str(tmp_path))
    assert rc == 0
    assert (tmp_path / "rank_agreement-paper.png").is_file() and (tmp_path / "rank_agreement-paper.svg").is_file()
    assert "rank agreement:" in out and "skipped: measured vs paper" in err


def test_analyze_json(capsys, three_model_run):
    rc, out, _ = run_bench(capsys, "analyze", "--results", str(three_model_run), "--json")
    assert rc == 0
    data = json.loads(out)
    comp = {(r["device_label"], r["metric"]): r for r in data["complexity"]}
    # cpu: 40, 45, 130 ms against MACs 275, 301, 1361: the same order, rho 1, exact p = 2/6.
    assert comp[("cpu", "macs")]["rho"] == pytest.approx(1.0)
    assert comp[("cpu", "macs")]["p_value"] == pytest.approx(1 / 3)
    assert comp[("cpu", "macs")]["paper_rho"] == 0.06  # the paper's own x86 CPU value next to ours
    agree = {r["device_label"]: r for r in data["paper_agreement"]}
    assert agree["cpu"]["platform"] == "cpu_x86_ms" and agree["cpu"]["n"] == 3
    gf = {(r["paper_name"], r["device_label"]): r for r in data["gflops"]}
    s0 = gf[("MobileOne-S0", "cpu")]
    assert s0["gflops"] == pytest.approx(2 * 275.1104 / 40.0)
    assert s0["pct_of_peak"] == pytest.approx(100 * s0["gflops"] / 25.0)
    ab = {r["model"]: r for r in data["ablation"]}
    assert ab["mobileone_s0"]["speedup"] == pytest.approx(1200 / 300)
    assert data["rank_agreement"]["series"][:2] == ["cpu", "torch"]


def test_analyze_paper_prints_the_papers_claims_next_to_ours(capsys):
    rc, out, _ = run_bench(capsys, "analyze", "--paper")
    assert rc == 0
    assert "paper iPhone 12" in out and "0.47 (p 0.03) / 0.30 (p 0.18)" in out


@pytest.mark.parametrize("command", ["table", "plot", "analyze"])
def test_no_results_is_one_line_exit_2(tmp_path, capsys, command):
    (tmp_path / "none").mkdir()
    rc, out, err = run_bench(capsys, command, "--results", str(tmp_path / "none"))
    assert rc == 2
    assert err.count("\n") == 1 and err.startswith("bench: error: no results found in")


def test_a_model_outside_the_zoo_is_tabulated_from_its_results(tmp_path, capsys, write_run, mk):
    from bench.zoo import registry

    env = mk.env("h", "AMD EPYC")
    path = write_run("20260101-090000-aaaa", env, [mk.cell("resnet50", "cpu", 50.0, env)])
    try:
        rc, out, err = run_bench(capsys, "table", "--results", str(path), "--out", str(tmp_path / "t.md"))
    finally:
        registry._USER.clear()
    assert rc == 0, err
    assert "resnet50" in out and "50.00" in out


def test_unknown_sort_is_one_line_exit_2(tmp_path, capsys, three_model_run):
    rc, _, err = run_bench(capsys, "table", "--results", str(three_model_run), "--sort", "speed",
                           "--out", str(tmp_path / "t.md"))
    assert rc == 2 and err.count("\n") == 1 and "--sort 'speed'" in err


def test_highlight_marks_models_like_the_user_s_own(tmp_path, capsys, three_model_run):
    from bench.analysis.frames import load_dataset
    from bench.commands.analysis import highlighted

    ds = highlighted(load_dataset([str(three_model_run)], tmp_path), "mobilenet*")
    marked = set(ds.cells.loc[ds.cells["user"].astype(bool), "model"])
    assert marked == {"mobilenetv2_100"}
    rc, out, err = run_bench(capsys, "plot", "--results", str(three_model_run), "--out", str(tmp_path / "p"),
                             "--highlight", "mobilenet*")
    assert rc == 0, err
    rc, _, err = run_bench(capsys, "plot", "--results", str(three_model_run), "--out", str(tmp_path / "p"),
                           "--highlight", "nosuch")
    assert rc == 2 and "--highlight 'nosuch' matches none" in err


def test_analyze_leaves_out_flagged_cells_unless_asked(tmp_path, capsys, write_run, mk):
    env = mk.env("host-a", "AMD EPYC")
    cells = [mk.cell("mobileone_s0", "cpu", 40.0, env), mk.cell("mobilenetv2_100", "cpu", 45.0, env),
             mk.cell("repvgg_a0", "cpu", 130.0, env, flags=("contended",)),
             mk.cell("mobileone_s1", "cpu", 60.0, env, flags=("unstable:drift +9% over 8 rounds",))]
    path = write_run("20260101-090000-aaaa", env, cells)
    rc, out, err = run_bench(capsys, "analyze", "--results", str(path), "--json")
    assert rc == 0, err
    assert "left out 2 cell(s) flagged contended or unstable" in err
    kept = json.loads(out)["complexity"][0]["n"]
    rc, out, err = run_bench(capsys, "analyze", "--results", str(path), "--json", "--include-flagged")
    assert rc == 0 and "left out" not in err
    assert json.loads(out)["complexity"][0]["n"] == kept + 2
