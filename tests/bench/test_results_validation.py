"""Results files as read: schema-1 files (as the previous bench wrote them) migrated, schema-2 files strict JSON,
and a bad file refused by every command that reads one, in one line, never with a traceback."""
import json
import math
import shutil
from pathlib import Path

import pytest

from bench import cli, commands
from bench.core.errors import UserError
from bench.core.result import SCHEMA_VERSION, ComparabilityKey, ExternalProtocol, LatencyResult
from bench.store import (
    SCHEMA1_RUNTIMES,
    SUPPORTED_SCHEMAS,
    Run,
    RunWriter,
    load_run,
    migrate_1_to_2,
    to_frame,
)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "results"
SCHEMA1 = FIXTURES / "run_schema1.json"  # `bench run --device cpu --models mobileone_mu0 --protocol quick`, trimmed
IMPORT_JSON = FIXTURES / "run_schema1_import_json.json"  # `bench import` of tests/fixtures/coreml's JSON file
IMPORT_MODELBENCH = FIXTURES / "run_schema1_import_modelbench.json"  # ... and of its ModelBench fixture
CELL = "mobileone_mu0|cpu|onnxruntime|deploy"


def strict_json(text: str):
    def refuse(token):
        raise AssertionError(f"{token} in a schema-{SCHEMA_VERSION} file")
    return json.loads(text, parse_constant=refuse)


def test_schema_history():
    assert SCHEMA_VERSION == 2 and SUPPORTED_SCHEMAS == {1, 2}
    assert "Infinity" in SCHEMA1.read_text()  # as schema 1 wrote an unlimited max_s


def test_a_schema1_run_loads_typed():
    run = load_run(SCHEMA1)
    assert run.schema == SCHEMA_VERSION and run.status == "complete" and run.run_id == "20261202-043731-59dc"
    (c,) = run.cells
    assert c.ok and c.key == ("mobileone_mu0", "cpu", "onnxruntime", "deploy")
    assert c.protocol.name == "quick" and c.protocol.max_s == math.inf and c.protocol.round_max_s == 0.5
    assert c.summary.latency_ms == pytest.approx(0.679268) and c.summary.count == 213
    assert c.artifact.input_shape == (1, 3, 224, 224) and c.artifact.metadata["parity"]["passed"]
    assert c.env_key == ComparabilityKey(cpu_model="Intel(R) Xeon(R) Processor", device="cpu", runner="onnxruntime",
                                         threads=2, precision="fp32", runtime_version="onnxruntime 1.32.0")
    assert [len(r) for r in c.samples_ms] == [3, 3, 3]
    frame = to_frame([run])
    assert frame.loc[0, "latency_ms"] == pytest.approx(0.679268) and frame.loc[0, "protocol"] == "quick"


def test_schema1_imports_load_typed():
    run = load_run(IMPORT_JSON)
    by = {c.model: c for c in run.cells}
    assert by["mobileone_s0"].protocol == ExternalProtocol(statistic="median", trim=0)
    agg = by["mobilenetv3_small_100"]
    assert agg.protocol == ExternalProtocol(statistic="median", trim=None)  # aggregates: no trim recorded
    assert agg.samples_ms == [] and agg.summary.p90_ms is None and agg.summary.min_ms == 1.17
    assert agg.env_key.os_version == "17.5" and agg.env_key.compute_units == "CPU_AND_NE"
    mb = {c.model: c for c in load_run(IMPORT_MODELBENCH).cells}
    assert mb["mobileone_s0"].protocol.round_max_s == math.inf and mb["mobileone_s0"].protocol.trim == 10
    v3 = mb["mobilenetv3_large_100"]
    assert (v3.summary.trimmed_low_ms, v3.summary.trimmed_high_ms, v3.summary.last_round_ms) == (2.389, 2.639, 2.498)


def test_a_schema1_cell_without_a_key_gets_it_from_the_run(tmp_path):
    data = json.loads(SCHEMA1.read_text())
    data["cells"][0]["env_key"] = {}
    del data["cells"][0]["protocol"]["max_s"]  # written before max_s existed: no time cap
    path = tmp_path / "old.json"
    path.write_text(json.dumps(data))
    c = load_run(path).cells[0]
    assert c.env_key.runtime_version == "onnxruntime 1.32.0" and c.env_key.cpu_model == "Intel(R) Xeon(R) Processor"
    assert c.protocol.max_s == math.inf
    assert SCHEMA1_RUNTIMES["trt"] == "tensorrt"  # the map schema-1 keys were built with


def test_migration_is_a_pure_function_of_the_file():
    data = json.loads(SCHEMA1.read_text())
    before = json.dumps(data)
    out = migrate_1_to_2(data)
    assert json.dumps(data) == before  # the input is left as it was
    assert out["schema"] == 2 and out["cells"][0]["protocol"]["max_s"] is None
    assert set(out["cells"][0]["env_key"]) == {f for f in ComparabilityKey.__dataclass_fields__}


def test_rewritten_as_strict_json_schema2(tmp_path):
    run = load_run(SCHEMA1)
    run.config["protocol_overrides"] = {"round_max_s": math.inf}
    path = tmp_path / "new.json"
    RunWriter(path, run)
    text = path.read_text()
    data = strict_json(text)
    assert data["schema"] == 2 and data["cells"][0]["protocol"]["max_s"] is None
    assert data["config"]["protocol_overrides"] == {"round_max_s": None}
    again = load_run(path)
    assert again.cells == run.cells and again.config["protocol_overrides"] == {"round_max_s": math.inf}


def test_bench_import_writes_a_checked_strict_file(tmp_path):
    from bench.importers import import_file

    coreml = Path(__file__).parents[1] / "fixtures" / "coreml"
    for name, fmt in (("modelbench_synthetic.txt", "modelbench"), ("summary_synthetic.json", "json")):
        run = import_file(coreml / name, fmt, os_version="17.5")
        path = tmp_path / f"{fmt}.json"
        RunWriter(path, run)
        strict_json(path.read_text())  # the ModelBench protocol's unlimited round_max_s is null
        again = load_run(path)
        assert again.cells == run.cells and all(c.env_key.os_version == "17.5" for c in again.cells)


def test_a_schema2_file_with_infinity_is_refused(tmp_path):
    path = tmp_path / "r.json"
    RunWriter(path, load_run(SCHEMA1))
    path.write_text(path.read_text().replace('"max_s": null', '"max_s": Infinity'))
    with pytest.raises(UserError, match=r"max_s: Infinity \(line \d+\) is not JSON; a schema-2 file is strict"):
        load_run(path)


def test_run_level_checks(tmp_path):
    good = json.loads(json.dumps(load_run(SCHEMA1).to_dict()))
    path = tmp_path / "r.json"
    for change, fragment in [
        (lambda d: d.update(status="done"), "status = 'done' must be one of running, complete, interrupted"),
        (lambda d: d.update(extra=1), "extra is not a field of a run"),
        (lambda d: d.pop("env"), "env is missing"),
        (lambda d: d.update(cells={}), "cells = {} must be a list of cells"),
        (lambda d: d["cells"].append(3), "cells[1] = 3 must be an object"),
        (lambda d: d["cells"].append(dict(d["cells"][0])), f"cell {CELL} appears twice"),
        (lambda d: d["cells"][0].update(env_key=None), f"cell {CELL}: env_key is missing"),
        (lambda d: d["cells"][0]["summary"].pop("p90_ms"), f"cell {CELL}: summary.p90_ms is missing"),
    ]:
        data = json.loads(json.dumps(good))
        change(data)
        path.write_text(json.dumps(data))
        with pytest.raises(UserError) as e:
            load_run(path)
        assert str(e.value).startswith(f"results file {path}: ") and fragment in str(e.value), str(e.value)


def test_a_run_refuses_a_cell_without_its_key():
    run = Run(run_id="r", created="", command=[], config={}, env={})
    with pytest.raises(UserError, match="env_key is missing"):
        run.put(LatencyResult(model="mobileone_s0", device="cpu", runner="onnxruntime", status="failed", error="x"))


# --- Every command that reads results files refuses a bad one in one line ------------------------------------

def _set(path_in_cell, value):
    def change(data):
        target = data["cells"][0]
        for k in path_in_cell[:-1]:
            target = target[k]
        target[path_in_cell[-1]] = value
    return change


def _drop(path_in_cell):
    def change(data):
        target = data["cells"][0]
        for k in path_in_cell[:-1]:
            target = target[k]
        del target[path_in_cell[-1]]
    return change


# kind -> (change to a good schema-2 file's data, or raw bytes; schema to write; what the one line says)
BAD = {
    "missing field": (_drop(("summary", "latency_ms")), 2, f"cell {CELL}: summary.latency_ms is missing"),
    "missing cell field": (_drop(("status",)), 2, f"cell {CELL}: status is missing"),
    "text where a list belongs": (_set(("samples_ms",), "0.68, 0.69"), 2,
                                  f"cell {CELL}: samples_ms = '0.68, 0.69' must be a list of rounds"),
    "number where text belongs": (_set(("runner_info",), "onnxruntime"), 2,
                                  f"cell {CELL}: runner_info = 'onnxruntime' must be an object"),
    "negative latency": (_set(("summary", "latency_ms"), -1.0), 2,
                         f"cell {CELL}: summary.latency_ms = -1.0 must be a finite number > 0"),
    "negative sample": (_set(("samples_ms",), [[0.7, -0.5]]), 2,
                        f"cell {CELL}: samples_ms[0][1] = -0.5 must be a finite number > 0"),
    "infinite latency (schema 2)": (_set(("summary", "latency_ms"), math.inf), 2,
                                    "latency_ms: Infinity (line 1) is not JSON"),
    "infinite latency (schema 1)": (_set(("summary", "latency_ms"), math.inf), 1,
                                    f"cell {CELL}: summary.latency_ms = inf must be a finite number > 0"),
    "NaN sample (schema 1)": (_set(("samples_ms",), [[0.7, math.nan]]), 1,
                              f"cell {CELL}: samples_ms[0][1] = nan must be a finite number > 0"),
    "unknown key": (_set(("latency",), 0.7), 2, f"cell {CELL}: latency is not a field of a cell"),
    "bad status": (_set(("status",), "passed"), 2, f"cell {CELL}: status = 'passed' must be one of ok, failed"),
    "invalid UTF-8": (b'{"schema": 2, "kind": "mobileone-bench/run", "run_id": "caf\xe9"}', 2,
                      "is not UTF-8 text (byte 0xe9 on line 1)"),
}
COMMANDS = {
    "table": lambda bad, good, tmp: ["table", "--results", bad, "--format", "csv", "--out", tmp / "t.csv"],
    "plot": lambda bad, good, tmp: ["plot", "--results", bad, "--out", tmp / "plots"],
    "analyze": lambda bad, good, tmp: ["analyze", "--results", bad, "--json"],
    "compare": lambda bad, good, tmp: ["compare", good, bad, "--baselines", tmp / "baselines"],
    "run --resume": lambda bad, good, tmp: ["run", "--resume", bad, "--out", tmp / "runs"],
}


@pytest.fixture(autouse=True)
def all_commands(monkeypatch):
    # Until the lead lists every group in COMMAND_MODULES, add them here; afterwards this is a no-op.
    missing = [m for m in ("analysis", "gate") if m not in commands.COMMAND_MODULES]
    if missing:
        monkeypatch.setattr(commands, "COMMAND_MODULES", [*commands.COMMAND_MODULES, *missing])


@pytest.fixture(scope="module")
def good_run(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("good") / "good.json"
    RunWriter(path, load_run(SCHEMA1))
    return path


def write_bad(kind: str, good: Path, folder: Path) -> Path:
    change, schema, _ = BAD[kind]
    path = folder / "bad.json"
    if isinstance(change, bytes):
        path.write_bytes(change)
        return path
    data = json.loads(good.read_text())
    change(data)
    if schema == 1:
        data["schema"] = 1
        data["cells"][0]["protocol"]["max_s"] = math.inf  # as schema 1 wrote it
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize("kind", list(BAD))
@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_bad_results_file_is_one_line_and_exit_2(command, kind, tmp_path, good_run, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing is written into the repository, whatever happens
    bad = write_bad(kind, good_run, tmp_path)
    rc = cli.main([str(a) for a in COMMANDS[command](bad, good_run, tmp_path)])
    _, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"bench: error: results file {bad}"), lines[0]
    assert BAD[kind][2] in lines[0], lines[0]


def test_the_good_file_passes_the_same_commands(tmp_path, good_run, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for command in ("table", "analyze"):
        assert cli.main([str(a) for a in COMMANDS[command](good_run, good_run, tmp_path)]) == 0, capsys.readouterr()
    shutil.copy(good_run, tmp_path / "copy.json")
    rc = cli.main(["compare", str(good_run), str(tmp_path / "copy.json"), "--baselines", str(tmp_path / "b")])
    assert rc in (0, 3), capsys.readouterr()  # PASS, or UNSTABLE with 3 rounds: not an error
