"""Hostile files given to `bench import`, in each format: JSON nested 100,000 levels deep, binary files, folders,
empty files, a huge single line. Each is one line naming the problem and the fix, exit 2, no traceback, nothing
written, and quickly (no parser that recurses per level or backtracks per character)."""
import time

import pytest

from bench.cli import main

FORMATS = ("json", "csv", "modelbench")


def import_(capsys, tmp_path, path, fmt):
    out = tmp_path / "runs"
    t0 = time.monotonic()
    rc = main(["import", str(path), "--format", fmt, "--out", str(out)])
    captured = capsys.readouterr()
    assert time.monotonic() - t0 < 20, "a hostile file must be refused quickly"
    assert not out.exists() or not any(out.iterdir()), "nothing may be written"
    return rc, captured


def assert_one_line(rc, captured, *fragments, longest=400):
    assert rc == 2, (rc, captured.err[-2000:])
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err[-2000:]
    assert len(lines[0]) < longest, f"a message of {len(lines[0])} characters"
    for f in fragments:
        assert f in lines[0], lines[0]


def test_json_nested_100000_levels(tmp_path, capsys):
    for name, text in (("lists.json", "[" * 100_000 + "]" * 100_000),
                       ("objects.json", '{"a":' * 100_000 + "1" + "}" * 100_000),
                       ("entry.json", '[{"model": "mobileone_s0", "note": ' + "[" * 100_000 + "]" * 100_000 + "}]"),
                       ("unclosed.json", "[" * 100_000)):
        (tmp_path / name).write_text(text)
        rc, captured = import_(capsys, tmp_path, tmp_path / name, "json")
        assert_one_line(rc, captured, name, "nested", "levels deep")


def test_json_nested_just_below_the_interpreter_limit(tmp_path, capsys):
    """Depths the json parser accepts but that later code (str(), repr()) could not walk."""
    path = tmp_path / "deep-note.json"
    path.write_text('[{"model": "mobileone_s0", "latency_ms": 1, "note": ' + "[" * 900 + "]" * 900 + "}]")
    rc, captured = import_(capsys, tmp_path, path, "json")
    assert_one_line(rc, captured, "nested", "levels deep")


@pytest.mark.parametrize("fmt", FORMATS)
def test_binary_file(tmp_path, capsys, fmt):
    path = tmp_path / "latencies.bin"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe\xfd")
    rc, captured = import_(capsys, tmp_path, path, fmt)
    assert_one_line(rc, captured, "latencies.bin", "not UTF-8")


@pytest.mark.parametrize("fmt", FORMATS)
def test_folder_and_unreadable_path(tmp_path, capsys, fmt):
    path = tmp_path / "export"
    path.mkdir()
    rc, captured = import_(capsys, tmp_path, path, fmt)
    assert_one_line(rc, captured, "export", "is a folder", "pass the file")
    (tmp_path / "afile").write_text("x")
    rc, captured = import_(capsys, tmp_path, tmp_path / "afile" / "x.json", fmt)
    assert_one_line(rc, captured, "cannot read import file", "Not a directory", "check the path")


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("text", ["", "\n\n  \n"], ids=["empty", "blank"])
def test_empty_file(tmp_path, capsys, fmt, text):
    path = tmp_path / "empty.txt"
    path.write_text(text)
    rc, captured = import_(capsys, tmp_path, path, fmt)
    assert_one_line(rc, captured, "empty.txt", "empty file" if fmt != "modelbench" else "no measurements")


HUGE = 4_000_000  # characters on one line


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("kind", ["letters", "spaces", "field"])
def test_huge_single_line(tmp_path, capsys, fmt, kind):
    path = tmp_path / "huge.txt"
    line = {"letters": "x" * HUGE,
            "spaces": "model:" + " " * (HUGE // 2) + "x" + " " * (HUGE // 2) + "y",  # backtracking bait
            "field": "model,latency_ms\nmobileone_s0," + "9" * HUGE}[kind]
    path.write_text(line)
    rc, captured = import_(capsys, tmp_path, path, fmt)
    assert_one_line(rc, captured, "huge.txt")


def test_huge_csv_field_is_named(tmp_path, capsys):
    path = tmp_path / "wide.csv"
    path.write_text("model,latency_ms\nmobileone_s0," + "1" * 200_000 + "\n")
    rc, captured = import_(capsys, tmp_path, path, "csv")
    assert_one_line(rc, captured, "wide.csv:2", "field larger than field limit")


@pytest.mark.parametrize("fmt, text", [
    ("csv", "model" + ",x" * 500_000 + "\n"),  # a header that lacks latency_ms
    ("csv", "model,latency_ms\n" + "m" * 100_000 + ",1\n"),  # under csv's field limit
    ("json", '[{"model": "' + "m" * 1_000_000 + '", "latency_ms": 1}]'),
    ("json", '[{"model": "mobileone_s0", "latency_ms": "' + "9x" * 500_000 + '"}]'),
    ("json", '[{"model": "mobileone_s0", "latency_ms": 1, "' + "k" * 1_000_000 + '": 1}]'),
    ("modelbench", "model: " + "m" * 1_000_000 + "\naverage all: 1\n"),
    ("modelbench", "average" + "0" * 1_000_000 + ": 1\n"),
], ids=["csv-header", "csv-name", "json-name", "json-value", "json-key", "mb-name", "mb-key"])
def test_long_values_are_clipped_in_the_message(tmp_path, capsys, fmt, text):
    path = tmp_path / "long.txt"
    path.write_text(text)
    rc, captured = import_(capsys, tmp_path, path, fmt)
    assert_one_line(rc, captured, "long.txt", "characters")


def test_modelbench_key_value_lines_still_parse(tmp_path, capsys):
    """The linear key: value split reads what the regex read: spaces, '=' and tabs around the separator."""
    path = tmp_path / "mb.txt"
    path.write_text("model = MobileOne-S0\nRounds :\t20\n  inferences per round: 50\nlow/high trim= 10\n"
                    "average all:   0.812  \n")
    rc = main(["import", str(path), "--format", "modelbench", "--out", str(tmp_path / "runs"), "--json"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert '"model": "mobileone_s0"' in captured.out and "0.812" in captured.out
