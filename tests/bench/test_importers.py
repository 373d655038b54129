"""Importing phone measurements (bench/importers.py): the three formats on fixture files, malformed files (one
clear error naming the file and line, nothing written). The `bench import` command end to end is in
tests/bench/commands/test_importing.py."""
from pathlib import Path

import pytest

from bench.core.errors import UserError
from bench.importers import DeviceInfo, import_file, import_text, parse_csv, parse_json, parse_modelbench


FIXTURES = Path(__file__).parents[1] / "fixtures" / "coreml"


@pytest.fixture
def fixtures() -> Path:
    """tests/fixtures/coreml (the `fixtures` of tests/conftest.py is the GPU folder)."""
    return FIXTURES


def _read(fixtures: Path, name: str) -> str:
    return (fixtures / name).read_text()


# ---- ModelBench ----

def test_modelbench_rounds_reproduce_the_apps_own_average(fixtures):
    cells = {c.model: c for c in parse_modelbench(_read(fixtures, "modelbench_synthetic.txt"), "mb.txt")}
    assert list(cells) == ["mobileone_s0", "mobileone_s1", "mobilenetv3_large_100"]  # paper names resolved
    s0 = cells["mobileone_s0"]
    assert len(s0.samples_ms) == 20 and all(len(r) == 50 for r in s0.samples_ms)
    assert (s0.statistic, s0.trim) == ("trimmed_mean", 10)
    assert s0.protocol["name"] == "modelbench" and s0.protocol["reload_each_round"]
    assert s0.protocol["round_max_iters"] == 50 and s0.protocol["max_rounds"] == 20
    s1 = cells["mobileone_s1"]  # settings changed in the app: 5 rounds x 20, trim 5
    assert (len(s1.samples_ms), len(s1.samples_ms[0]), s1.trim) == (5, 20, 5)


def test_modelbench_import_gives_results_with_samples_or_aggregates(fixtures):
    run = import_file(fixtures / "modelbench_synthetic.txt", "modelbench", os_version="17.5")
    by = {c.model: c for c in run.cells}
    s0 = by["mobileone_s0"]
    # the app's "Average (all)" (1.498, printed %.3f) is the trimmed mean of the rounds
    assert s0.latency_ms == pytest.approx(1.498, abs=0.0006)
    assert s0.summary.statistic == "trimmed_mean" and s0.summary.count == 1000
    assert s0.source == "imported:modelbench" and s0.runner == "coreml-app" and s0.device == "iphone"
    assert s0.precision == "fp16" and len(s0.samples_ms) == 20
    v3 = by["mobilenetv3_large_100"]  # only the four numbers were copied
    assert v3.samples_ms == [] and v3.latency_ms == 2.503
    assert v3.summary.trimmed_low_ms == 2.389 and v3.summary.trimmed_high_ms == 2.639
    assert v3.summary.median_ms is None and v3.summary.ci_low_ms is None  # not reported, not invented
    assert run.env["device_name"] == "iPhone 12" and run.env["os"] == {"system": "iOS", "version": "17.5"}
    assert s0.env_key.device_name == "iPhone 12" and s0.env_key.os_version == "17.5"


MB_OK = """model: MobileOne-S0
Rounds: 2
Inferences per Round: 5
Low/High Trim: 1
Average (all): 0.808
Low: 0.790
High: 0.830
[ 0.700, 0.790, 0.800, 0.810, 0.900 ],
[ 0.710, 0.800, 0.820, 0.830, 0.950 ],
"""


def test_a_small_modelbench_block_parses():
    (cell,) = parse_modelbench(MB_OK, "x.txt")
    assert cell.samples_ms[1] == (0.71, 0.8, 0.82, 0.83, 0.95)


@pytest.mark.parametrize("text, line, words", [
    (MB_OK.replace("0.790, 0.800, 0.810, 0.900 ],", "0.790, 0.800, 0.810 ],", 1), 8, ["4 latencies", "says 5"]),
    (MB_OK.replace("0.800, 0.810, 0.900", "0.800, O.810, 0.900", 1), 8, ["'O.810' is not a number"]),
    (MB_OK.replace("Average (all): 0.808", "Average (all): 0.850"), 5, ["does not follow", "0.808"]),
    (MB_OK.replace("Low/High Trim: 1", "Low/High Trim: 0"), 5, ["does not follow", "trim 0"]),
    (MB_OK.replace("Rounds: 2", "Rounds: 3"), 2, ["'rounds: 3' but 2 rounds"]),
    (MB_OK.replace("0.710, 0.800, 0.820, 0.830, 0.950 ],", "0.710, 0.800, 0.820, 0.830, 0.950"), 9, ["no closing ']'"]),
    (MB_OK.replace("model: MobileOne-S0", "model: MobileOne-S9"), 1, ["unknown model 'MobileOne-S9'", "bench models"]),
    (MB_OK.replace("Low: 0.790", "Speed: fast"), 6, ["unknown key 'Speed'"]),
    (MB_OK.replace("model: MobileOne-S0\n", ""), 1, ["before any 'model:' line"]),
    (MB_OK + MB_OK.replace("MobileOne-S0", "mobileone_s0"), 10, ["already given on line 1"]),
    (MB_OK.replace("Low/High Trim: 1", "Low/High Trim: 3"), 8, ["cannot drop 3 lowest"]),
    ("model: MobileOne-S0\nRounds: 20\n", 1, ["no latencies", "average all"]),
    ("# nothing here\n", None, ["no measurements found"]),
    (MB_OK.replace("0.700,", "-0.700,", 1), 8, ["not a positive"]),
])
def test_malformed_modelbench_files_fail_with_file_and_line(text, line, words):
    with pytest.raises(UserError) as e:
        parse_modelbench(text, "phone.txt")
    msg = str(e.value)
    assert msg.startswith(f"phone.txt:{line}: " if line else "phone.txt: "), msg
    for w in words:
        assert w in msg, msg
    assert "\n" not in msg


def test_aggregates_only_block_assumes_the_apps_defaults_and_says_so():
    (cell,) = parse_modelbench("model: MobileOne-S1\nAverage (all): 0.9\nLow: 0.85\nHigh: 0.99\n", "x")
    assert cell.samples_ms == () and cell.aggregates["latency_ms"] == 0.9
    assert cell.notes["settings_assumed"] == ["rounds", "inferences", "trim"]
    assert cell.aggregates["count"] == 1000 and cell.protocol["trim"] == 10


# ---- CSV ----

def test_csv_rows_become_rounds_per_model(fixtures):
    cells = parse_csv(_read(fixtures, "per_inference_synthetic.csv"), "p.csv")
    assert [c.model for c in cells] == ["mobileone_s0", "mobilenetv2_100"]
    assert all(len(c.samples_ms) == 3 and all(len(r) == 10 for r in c.samples_ms) for c in cells)
    run = import_file(fixtures / "per_inference_synthetic.csv", "csv")
    c = run.cells[0]
    flat = sorted(v for r in c.samples_ms for v in r)
    assert c.summary.statistic == "median" and c.latency_ms == pytest.approx((flat[14] + flat[15]) / 2)
    assert c.source == "imported:csv" and c.summary.count == 30 and c.summary.rounds == 3


def test_units_written_after_a_number_are_accepted():
    (cell,) = parse_modelbench("model: MobileOne-S0\nAverage (all): 0.812 ms\n", "x")
    assert cell.aggregates["latency_ms"] == 0.812


def test_csv_without_a_round_column_is_one_round_and_other_columns_are_ignored():
    text = "model,latency_ms,note\nMobileOne-S0,1.0,a\nMobileOne-S0,2.0,b\nMobileOne-S0,3.0,c\n"
    (cell,) = parse_csv(text, "x.csv")
    assert cell.samples_ms == ((1.0, 2.0, 3.0),)


@pytest.mark.parametrize("text, line, words", [
    ("model,ms\nMobileOne-S0,1.0\n", 1, ["lacks latency_ms"]),
    ("model,latency_ms\nMobileOne-S0,fast\n", 2, ["'fast' is not a number"]),
    ("model,latency_ms\nMobileOne-S0,1.0,3\n", 2, ["3 fields, the header has 2"]),
    ("model,latency_ms,round\nMobileOne-S0,1.0,first\n", 2, ["round 'first' is not a whole number"]),
    ("model,latency_ms\n,1.0\n", 2, ["empty model name"]),
    ("model,latency_ms\nMobileOne-S0,1.0\nmobileone_s0,1.1\n", 3, ["already given on line 2"]),
    ("model,latency_ms\nResNet-50,1.0\n", 2, ["unknown model 'ResNet-50'"]),
    ("model,latency_ms\n", 1, ["no rows"]),
    ("", None, ["empty file"]),
    ("model,latency_ms\nMobileOne-S0,inf\n", 2, ["not a positive finite"]),
])
def test_malformed_csv_files_fail_with_file_and_line(text, line, words):
    with pytest.raises(UserError) as e:
        parse_csv(text, "p.csv")
    msg = str(e.value)
    assert msg.startswith(f"p.csv:{line}: " if line else "p.csv: "), msg
    for w in words:
        assert w in msg, msg


# ---- JSON ----

def test_json_entries_with_rounds_a_flat_list_or_aggregates(fixtures):
    run = import_file(fixtures / "summary_synthetic.json", "json", compute_units="cpuAndNeuralEngine")
    by = {c.model: c for c in run.cells}
    assert list(by) == ["mobileone_s0", "mobileone_s2", "mobilenetv3_small_100"]
    assert len(by["mobileone_s0"].samples_ms) == 3 and by["mobileone_s0"].load_ms == 31.5
    assert by["mobileone_s0"].first_inference_ms == 2.41
    assert len(by["mobileone_s2"].samples_ms) == 1 and by["mobileone_s2"].summary.count == 30
    agg = by["mobilenetv3_small_100"]
    assert agg.samples_ms == [] and agg.latency_ms == 1.23 and agg.summary.median_ms == 1.23
    assert agg.summary.min_ms == 1.17 and agg.summary.count == 100 and agg.load_ms == 18.2
    assert agg.runner_info["compile_ms"] == 240.0
    assert run.env["compute_units"] == "CPU_AND_NE" and agg.env_key.compute_units == "CPU_AND_NE"


@pytest.mark.parametrize("text, line, words", [
    ('[\n {"model": "MobileOne-S0", "samples_ms": [1, 2,]}\n]', 2, ["not valid JSON"]),
    ('{"model": "MobileOne-S0", "latency_ms": 1}', 1, ["top level must be a list"]),
    ('[\n {"model": "MobileOne-S0", "latency_ms": 1},\n {"model": "MobileOne-S0", "samples_ms": "1,2"}\n]', 3,
     ["non-empty list"]),
    ('[\n {"model": "MobileOne-S0"}\n]', 2, ["either \"samples_ms\"", "none is given"]),
    ('[\n {"model": "MobileOne-S0", "latency_ms": 1, "samples_ms": [1]}\n]', 2, ["not both"]),
    ('[\n {"model": "MobileOne-S0", "latency_ms": 1, "latency": 2}\n]', 2, ["unknown key latency"]),
    ('[\n {"model": "MobileOne-S0", "latency_ms": "1,2"}\n]', 2, ["'1,2' is not a number"]),
    ('[\n {"model": "MobileOne-S0", "latency_ms": 1, "statistic": "average"}\n]', 2, ["statistic 'average'"]),
    ('[\n {"model": "MobileOne-S0", "samples_ms": [1, [2]]}\n]', 2, ["mixes numbers and lists"]),
    ('[\n {"model": "MobileOne-S0", "samples_ms": [1, 2], "count": 2}\n]', 2, ["computed from samples_ms"]),
    ('[\n 3\n]', 2, ["not an object"]),
    ('[]', None, ["no measurements found"]),
])
def test_malformed_json_files_fail_with_file_and_line(text, line, words):
    with pytest.raises(UserError) as e:
        parse_json(text, "s.json")
    msg = str(e.value)
    assert msg.startswith(f"s.json:{line}: " if line else "s.json: "), msg
    for w in words:
        assert w in msg, msg


def test_a_statistic_the_samples_cannot_support_is_a_user_error():
    text = '[{"model": "MobileOne-S0", "samples_ms": [[1, 2, 3]], "statistic": "trimmed_mean", "trim": 2}]'
    with pytest.raises(UserError, match="cannot drop 2"):
        import_text(text, "json", "s.json", DeviceInfo())


# ---- file-level errors ----

def test_unknown_format_missing_file_and_bad_bytes(tmp_path):
    with pytest.raises(UserError, match="use one of modelbench, csv, json"):
        import_text("", "xml", "f", DeviceInfo())
    with pytest.raises(UserError, match="not found"):
        import_file(tmp_path / "nope.csv", "csv")
    bad = tmp_path / "latin1.csv"
    bad.write_bytes(b"model,latency_ms\nMobileOne-S\xe90,1.0\n")
    with pytest.raises(UserError, match=r"latin1.csv:2: not UTF-8"):
        import_file(bad, "csv")
    with pytest.raises(UserError, match="--device-name"):
        import_text("model,latency_ms\nMobileOne-S0,1\n", "csv", "f", DeviceInfo(device_name=" "))
    with pytest.raises(UserError, match="--trim -1 is negative"):
        import_text("model,latency_ms\nMobileOne-S0,1\n", "csv", "f", DeviceInfo(), trim=-1)
    with pytest.raises(UserError, match="drop --statistic/--trim"):
        import_text("model: MobileOne-S0\nAverage (all): 0.8\n", "modelbench", "f", DeviceInfo(), trim=2)
    with pytest.raises(UserError, match="compute units 'gpu'"):
        import_file(bad, "csv", compute_units="gpu")
