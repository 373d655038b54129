"""Loading runs into tidy frames: merging machines, newest cell per key, --all, the paper as cells, errors."""
from dataclasses import replace
import json

import pytest

from bench.analysis.frames import load_dataset
from bench.core.errors import UserError


def test_runs_from_two_environments_merge_and_the_newest_cell_wins(tmp_path, write_run, mk):
    env_a, env_b = mk.env("host-a", "AMD EPYC"), mk.env("host-b", "Intel Xeon Gold 5118", peak=80.0)
    older = write_run("20260101-090000-aaaa", env_a, [
        mk.cell("mobileone_s0", "cpu", 50.0, env_a, finished="2026-01-01T09:00:00+00:00"),
        mk.cell("repvgg_a0", "cpu", 140.0, env_a, finished="2026-01-01T09:00:00+00:00")])
    newer = write_run("20260102-090000-bbbb", env_a, [
        mk.cell("mobileone_s0", "cpu", 40.0, env_a, finished="2026-01-02T09:00:00+00:00")])
    other = write_run("20260103-090000-cccc", env_b, [
        mk.cell("mobileone_s0", "cpu", 11.0, env_b, finished="2026-01-03T09:00:00+00:00"),
        mk.cell("mobilenetv2_100", "cpu", 14.0, env_b, finished="2026-01-03T09:00:00+00:00")])
    ds = load_dataset([str(older), str(newer), str(other)], tmp_path)
    cells = ds.cells.set_index(["device_label", "model"])
    # Two CPU models are two device keys, told apart by what differs between them.
    assert set(ds.cells["device_label"]) == {"cpu (AMD EPYC)", "cpu (Intel Xeon Gold 5118)"}
    assert cells.loc[("cpu (AMD EPYC)", "mobileone_s0"), "latency_ms"] == 40.0  # the newer run
    assert cells.loc[("cpu (AMD EPYC)", "repvgg_a0"), "latency_ms"] == 140.0  # only the older run has it
    assert cells.loc[("cpu (Intel Xeon Gold 5118)", "mobileone_s0"), "latency_ms"] == 11.0
    assert len(ds.cells) == 4
    assert ds.source == "20260103-090000-cccc+2"
    env = cells.loc[("cpu (Intel Xeon Gold 5118)", "mobileone_s0"), "env_label"]
    assert "Intel Xeon Gold 5118" in env and "host-b" in env and "onnxruntime 1.31.1" in env
    assert cells.loc[("cpu (Intel Xeon Gold 5118)", "mobileone_s0"), "matmul_peak_gflops"] == 80.0
    # Models in the paper's order, with the zoo's top-1 and the paper's latencies joined.
    assert list(ds.models["model"]) == ["repvgg_a0", "mobilenetv2_100", "mobileone_s0"]
    row = ds.models.set_index("model").loc["mobileone_s0"]
    assert row["top1"] == 71.4 and row["paper_cpu_x86_ms"] == 10.55 and bool(row["mobileone"])


def test_all_keeps_every_runs_cell_as_its_own_column(tmp_path, write_run, mk):
    env = mk.env("host-a", "AMD EPYC")
    a = write_run("20260101-090000-aaaa", env, [mk.cell("mobileone_s0", "cpu", 50.0, env)])
    b = write_run("20260102-090000-bbbb", env, [
        mk.cell("mobileone_s0", "cpu", 40.0, env, finished="2026-01-02T09:00:00+00:00")])
    newest = load_dataset([str(a), str(b)], tmp_path)
    assert newest.cells["latency_ms"].tolist() == [40.0]
    every = load_dataset([str(a), str(b)], tmp_path, keep_all=True)
    assert sorted(every.cells["latency_ms"]) == [40.0, 50.0]
    assert every.cells["device_label"].nunique() == 2
    assert all("run 2026010" in label for label in every.cells["device_label"])


def test_a_folder_and_a_file_in_it_count_the_run_once(tmp_path, write_run, mk):
    env = mk.env("host-a", "AMD EPYC")
    path = write_run("20260101-090000-aaaa", env, [mk.cell("mobileone_s0", "cpu", 50.0, env)])
    ds = load_dataset([str(path.parent), str(path)], tmp_path)
    assert len(ds.cells) == 1 and ds.source == "20260101-090000-aaaa"


def test_paper_dataset_is_table_1_over_the_20_models():
    ds = load_dataset(None, "unused", paper=True)
    assert len(ds.models) == 20
    assert set(ds.cells["device_label"]) == {"paper x86 CPU", "paper iPhone 12", "paper RTX-2080Ti",
                                             "paper Pixel-6"}
    s0 = ds.cells[(ds.cells["model"] == "mobileone_s0") & (ds.cells["device_label"] == "paper iPhone 12")]
    assert s0["latency_ms"].tolist() == [0.79]
    assert ds.source == "paper"


def _one_line(err) -> str:
    text = str(err.value)
    assert "\n" not in text
    return text


def test_no_results_is_a_one_line_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError) as err:
        load_dataset([str(tmp_path / "empty")], tmp_path)
    assert "no results found" in _one_line(err) and "--paper" in str(err.value)
    with pytest.raises(UserError) as err:
        load_dataset(None, tmp_path / "empty")
    assert "bench run" in _one_line(err)


def test_a_run_with_no_cells_is_no_results(tmp_path, write_run, mk):
    path = write_run("20260101-090000-aaaa", mk.env("h", "cpu"), [])
    with pytest.raises(UserError) as err:
        load_dataset([str(path)], tmp_path)
    assert "no measured cells" in _one_line(err)


def test_unknown_schema_is_a_one_line_error(tmp_path, write_run, mk):
    env = mk.env("host-a", "AMD EPYC")
    path = write_run("20260101-090000-aaaa", env, [mk.cell("mobileone_s0", "cpu", 50.0, env)])
    data = json.loads(path.read_text())
    data["schema"] = 99
    path.write_text(json.dumps(data))
    with pytest.raises(UserError) as err:
        load_dataset([str(path)], tmp_path)
    assert "schema 99" in _one_line(err) and "upgrade" in str(err.value)


def test_a_model_declared_elsewhere_is_tabulated_from_what_its_results_recorded(tmp_path, write_run, mk):
    """A user model whose declaring config is not at hand (another folder, a --model-file run): its label,
    family and counts come from the results, and it is marked as the user's own."""
    from bench.zoo import registry

    env = mk.env("host-a", "AMD EPYC")
    cell = replace(mk.cell("resnet50", "cpu", 50.0, env),
                   model_info={"params_m": 25.6, "macs_m": 4100.0, "paper_name": "ResNet-50", "family": "user",
                               "top1": 76.1})
    path = write_run("20260101-090000-aaaa", env, [cell, mk.cell("mobileone_s0", "cpu", 1.0, env)])
    try:
        data = load_dataset([str(path)], tmp_path)
        row = data.models.set_index("model").loc["resnet50"]
        assert row["paper_name"] == "ResNet-50" and row["macs_m"] == 4100.0 and row["top1"] == 76.1
        assert bool(row["user"]) and not bool(data.models.set_index("model").loc["mobileone_s0", "user"])
    finally:
        registry._USER.clear()
