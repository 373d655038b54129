"""Hostile input to `bench compare` and `bench ab`: report paths that cannot be written, `--effects` files that
cannot be read. Each is one line naming the problem and the fix, exit 2 (never 1, the gate's FAIL), no traceback,
and for `bench ab` before anything is measured."""
import errno
import json
import os

import pytest

from bench.cli import main
from bench.core.errors import UserError
from bench.gate import ab as ab_module
from bench.gate import render

from gate_helpers import make_cell, rounds_at, write_artifact, write_run


def run_cli(capsys, *args):
    rc = main([str(a) for a in args])
    return rc, capsys.readouterr()


def assert_one_line(rc, captured, *fragments):
    assert rc == 2, (rc, captured.err)
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    for f in fragments:
        assert f in lines[0], lines[0]


@pytest.fixture
def stored(tmp_path):
    """Two stored runs whose comparison is a FAIL (exit 1): an error must not be mistaken for it."""
    base = write_run(tmp_path / "base.json", [make_cell("mobileone_s0", rounds_at(10.0, seed=1))])
    new = write_run(tmp_path / "new.json", [make_cell("mobileone_s0", rounds_at(13.0, seed=2))], run_id="x")
    return base, new


@pytest.fixture
def artifacts(tmp_path, monkeypatch):
    """Two artifact folders (dummy files: nothing may be loaded or measured), and a guard that fails the test
    if measuring starts."""
    write_artifact(tmp_path / "a", "mobileone_s0")
    write_artifact(tmp_path / "b", "mobileone_s0")

    def measured(*a, **k):
        raise AssertionError("measuring started before the bad input was refused")

    monkeypatch.setattr(ab_module, "measure_variants", measured)
    return ["ab", "--base-artifacts", tmp_path / "a", "--head-artifacts", tmp_path / "b", "--threads", "1"]


def _bad_paths(tmp_path):
    (tmp_path / "folder").mkdir()
    (tmp_path / "afile").write_text("x")
    return [("/proc/x.md", "cannot be written"), (tmp_path / "folder", "is a folder"),
            (tmp_path / "missing" / "x.md", "does not exist"), (tmp_path / "afile" / "x.md", "not a folder"),
            ("/dev/null", "not a regular file")]


@pytest.mark.parametrize("flag", ["--markdown", "--json"])
def test_compare_refuses_unwritable_report_paths(tmp_path, capsys, stored, flag):
    for path, problem in _bad_paths(tmp_path):
        rc, captured = run_cli(capsys, "compare", *stored, flag, path)
        assert_one_line(rc, captured, flag, str(path), problem)
        assert "latency gate" not in captured.out  # refused before comparing


@pytest.mark.parametrize("flag", ["--markdown", "--json"])
def test_ab_refuses_unwritable_report_paths_before_measuring(tmp_path, capsys, artifacts, flag):
    for path, problem in _bad_paths(tmp_path):
        rc, captured = run_cli(capsys, *artifacts, flag, path)
        assert_one_line(rc, captured, flag, str(path), problem)


def test_same_file_for_both_reports(tmp_path, capsys, stored):
    rc, captured = run_cli(capsys, "compare", *stored, "--markdown", tmp_path / "r", "--json", tmp_path / "r")
    assert_one_line(rc, captured, "--markdown", "--json", "same file")


def test_a_failed_write_is_one_line_and_exit_2(tmp_path, capsys, stored, monkeypatch):
    """The folder was writable when checked, the disk is full when writing: exit 2, not 1, and the verdicts
    are still printed."""
    def full(path, obj):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(render, "atomic_write_json", full)
    rc, captured = run_cli(capsys, "compare", *stored, "--json", tmp_path / "gate.json")
    assert_one_line(rc, captured, "--json", "gate.json", "No space left on device")
    assert "latency gate: FAIL" in captured.out
    with pytest.raises(UserError, match="cannot write --json"):
        render.write_outputs(render.GateReport("compare", "a", "b", (), 0.05, "x", ""), None, "/proc/x.json")


def _bad_effects(tmp_path):
    (tmp_path / "binary.json").write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    (tmp_path / "folder.json").mkdir()
    (tmp_path / "afile").write_text("{}")
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (tmp_path / "list.json").write_text("[0.05]")
    (tmp_path / "effects-list.json").write_text(json.dumps({"effects": [0.05]}))
    (tmp_path / "threads.json").write_text(json.dumps({"effects": {"mobileone_s0": 0.05}, "threads": "many"}))
    (tmp_path / "cpu.json").write_text(json.dumps({"effects": {"mobileone_s0": 0.05}, "cpu_model": [1]}))
    return [(tmp_path / "binary.json", "not UTF-8"), (tmp_path / "folder.json", "is a folder"),
            (tmp_path / "afile" / "x.json", "cannot be read"), (tmp_path / "deep.json", "nested"),
            (tmp_path / "list.json", "{model: fraction}"), (tmp_path / "effects-list.json", "{model: fraction}"),
            (tmp_path / "threads.json", "threads"), (tmp_path / "cpu.json", "cpu_model")]


def test_compare_refuses_bad_effects_files(tmp_path, capsys, stored):
    for path, problem in _bad_effects(tmp_path):
        rc, captured = run_cli(capsys, "compare", *stored, "--effects", path)
        assert_one_line(rc, captured, "--effects", str(path), problem)


def test_ab_refuses_bad_effects_files_before_measuring(tmp_path, capsys, artifacts):
    for path, problem in _bad_effects(tmp_path):
        rc, captured = run_cli(capsys, *artifacts, "--effects", path)
        assert_one_line(rc, captured, "--effects", str(path), problem)
