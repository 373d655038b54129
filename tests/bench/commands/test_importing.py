"""The `bench import` command (bench/commands/importing.py) end to end: one results file, nothing written for a
malformed file, a bad format refused by the parser."""
import argparse
import json
from pathlib import Path

import pytest

from bench.core.errors import UserError
from bench.store import load_run

FIXTURES = Path(__file__).parents[2] / "fixtures" / "coreml"


@pytest.fixture
def fixtures() -> Path:
    """tests/fixtures/coreml (the `fixtures` of tests/conftest.py is the GPU folder)."""
    return FIXTURES


def _read(fixtures: Path, name: str) -> str:
    return (fixtures / name).read_text()


def _parser():
    from bench.commands import importing

    parser = argparse.ArgumentParser(prog="bench")
    importing.register(parser.add_subparsers(dest="command", required=True))
    return parser


def test_bench_import_writes_one_run_file(fixtures, tmp_path, capsys):
    args = _parser().parse_args(["import", "--device", "iphone", "--format", "modelbench",
                                 str(fixtures / "modelbench_synthetic.txt"), "--device-name", "iPhone 12 Pro",
                                 "--os-version", "16.1", "--compute-units", "ALL", "--out", str(tmp_path), "--json"])
    assert args.func(args) == 0
    files = list(tmp_path.glob("*.json"))
    assert len(files) == 1
    run = load_run(files[0])
    assert run.status == "complete" and len(run.cells) == 3
    assert run.env["device_name"] == "iPhone 12 Pro" and run.cells[0].env_key.compute_units == "ALL"
    printed = json.loads(capsys.readouterr().out)
    assert printed["path"] == str(files[0]) and len(printed["cells"]) == 3


def test_bench_import_of_a_malformed_file_writes_nothing(fixtures, tmp_path):
    text = _read(fixtures, "per_inference_synthetic.csv").splitlines()
    text[-1] = text[-1].replace(",2", ",second")  # the very last row is wrong: all earlier rows were fine
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(text) + "\n")
    out = tmp_path / "runs"
    args = _parser().parse_args(["import", "--format", "csv", str(bad), "--out", str(out)])
    with pytest.raises(UserError) as e:
        args.func(args)
    assert str(e.value).startswith(f"{bad}:{len(text)}: round 'second'")
    assert not out.exists()


def test_bench_import_cli_rejects_a_bad_format():
    with pytest.raises(SystemExit):
        _parser().parse_args(["import", "--format", "xml", "f.xml"])
