"""The latency table: columns, failed and missing cells, ratios, sorting, and each output format."""
import csv
import io

import pytest

from bench.analysis.frames import load_dataset
from bench.analysis.tables import build_table, latex_escape, render, rows_text
from bench.core.errors import UserError


@pytest.fixture
def table_dataset(tmp_path, write_run, mk):
    env = mk.env("host-a", "AMD EPYC")
    path = write_run("20260101-090000-aaaa", env, [
        mk.cell("mobileone_s0", "cpu", 21.1, env, flags=("contended",)),
        mk.cell("mobilenetv2_100", "cpu", 27.3, env),
        mk.cell("repvgg_a0", "cpu", None, env, error="RuntimeError: out of memory"),
        mk.cell("mobileone_s0", "torch", 50.0, env),
        mk.cell("mobileone_s0", "torch", 150.0, env, form="train")])
    return load_dataset([str(path)], tmp_path)


def test_columns_ratios_failed_and_missing_cells(table_dataset):
    t = build_table(table_dataset.cells, table_dataset.models)
    headers, rows = rows_text(t)
    assert headers[:4] == ["model", "top-1 (%)", "params (M)", "MACs (M)"]
    assert "cpu (median, 95% CI)" in headers and "cpu / paper" in headers and "paper x86 CPU (ms)" in headers
    # The paper's column comes once, after both devices that compare with it.
    assert headers.count("paper x86 CPU (ms)") == 1
    assert headers.index("paper x86 CPU (ms)") > headers.index("torch / paper")
    by_model = {r[0]: dict(zip(headers, r)) for r in rows}
    assert [r[0] for r in rows] == ["RepVGG-A0", "MobileNetV2-x1.0", "MobileOne-S0"]  # the paper's order
    s0 = by_model["MobileOne-S0"]
    # Median [95% CI], starred: the cell was flagged as contended.
    assert s0["cpu (median, 95% CI)"] == f"21.10 [{21.1 * 0.95:.2f}, {21.1 * 1.05:.2f}]*"
    assert s0["cpu / paper"] == "2.00x"  # 21.1 / 10.55
    assert s0["paper x86 CPU (ms)"] == "10.55"
    assert s0["top-1 (%)"] == "71.4" and s0["MACs (M)"] == "275"
    assert s0["torch, train form (median, 95% CI)"].startswith("150.0")
    assert s0["train / deploy"] == "3.00x"
    assert by_model["RepVGG-A0"]["cpu (median, 95% CI)"] == "failed [1]"
    assert by_model["RepVGG-A0"]["torch (median, 95% CI)"] == ""  # not measured: empty
    assert "[1] failed: RuntimeError: out of memory (at export)" in t.footnotes
    assert any(f.startswith("* flagged") and "contended" in f for f in t.footnotes)
    assert any(f.startswith("cpu: onnxruntime 1.31.1") for f in t.footnotes)


def test_markdown(table_dataset):
    text = render(build_table(table_dataset.cells, table_dataset.models), "md")
    lines = text.splitlines()
    table_lines = [line for line in lines if line.startswith("|")]
    assert len(table_lines) == 2 + 3  # header, alignment, three models
    assert len({line.count(" | ") for line in table_lines}) == 1  # every row has every column
    assert "| RepVGG-A0 | 72.4 | 8.31 | 1361 | failed [1] |" in text
    assert "- [1] failed: RuntimeError: out of memory (at export)" in text


def test_csv_is_machine_readable(table_dataset):
    text = render(build_table(table_dataset.cells, table_dataset.models), "csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["model"] for r in rows] == ["repvgg_a0", "mobilenetv2_100", "mobileone_s0"]
    s0 = rows[2]
    assert float(s0["cpu ms"]) == 21.1 and float(s0["cpu ci_low"]) == pytest.approx(20.045)
    assert float(s0["cpu / paper"]) == pytest.approx(2.0)
    assert rows[0]["cpu status"] == "failed" and rows[0]["cpu error"] == "RuntimeError: out of memory"
    assert rows[0]["torch ms"] == ""


def test_latex(table_dataset):
    text = render(build_table(table_dataset.cells, table_dataset.models), "latex")
    assert text.startswith("\\begin{table}") and text.rstrip().endswith("\\end{table}")
    assert "\\toprule" in text and "\\bottomrule" in text
    assert "top-1 (\\%)" in text and "2.00$\\times$" in text
    body = text[text.index("\\midrule"):text.index("\\bottomrule")].splitlines()[1:]
    assert len(body) == 3 and all(line.count(" & ") == body[0].count(" & ") for line in body)
    assert latex_escape("a_b & 5% #1") == "a\\_b \\& 5\\% \\#1"


def test_sort_by_a_device_column_and_bad_sort(table_dataset):
    t = build_table(table_dataset.cells, table_dataset.models, sort="cpu")
    _, rows = rows_text(t)
    assert [r[0] for r in rows] == ["MobileOne-S0", "MobileNetV2-x1.0", "RepVGG-A0"]  # failed (no value) last
    t = build_table(table_dataset.cells, table_dataset.models, sort="macs")
    assert [r[0] for r in rows_text(t)[1]] == ["MobileOne-S0", "MobileNetV2-x1.0", "RepVGG-A0"]
    with pytest.raises(UserError) as err:
        build_table(table_dataset.cells, table_dataset.models, sort="nonsense")
    assert "\n" not in str(err.value) and "cpu" in str(err.value)


def test_unknown_format(table_dataset):
    with pytest.raises(UserError):
        render(build_table(table_dataset.cells, table_dataset.models), "html")


def test_paper_table_has_the_20_models_and_4_platforms():
    ds = load_dataset(None, "unused", paper=True)
    headers, rows = rows_text(build_table(ds.cells, ds.models, paper=True))
    assert len(rows) == 20
    assert headers[4:] == ["paper x86 CPU (ms)", "paper iPhone 12 (ms)", "paper RTX-2080Ti (ms)",
                           "paper Pixel-6 (ms)"]
    s0 = next(r for r in rows if r[0] == "MobileOne-S0")
    assert s0[4:] == ["10.55", "0.79", "0.56", "0.59"]
    mixnet = next(r for r in rows if r[0] == "MixNet-S")
    assert mixnet[4:] == ["", "1.13", "", ""]  # only Table 3's iPhone figure
