"""Packaging: the wheel holds every file the code reads at run time, and the code reads nothing from outside
its packages (a non-editable `pip install .` used to fail on the reference CSVs, read from results/reference/)."""
from __future__ import annotations

import csv
import re
import shutil
import subprocess
import sys
import zipfile
from importlib import resources
from pathlib import Path

import pytest

from bench import reference

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bench", "devices", "exporters")
DATA = ROOT / "bench" / "data"
# Files the build reads besides the packages (pyproject names README.md as the long description).
BUILD_FILES = ("pyproject.toml", "README.md")


def _package_files() -> set[str]:
    """Every *.py of the packages and every file of the package data folder, as wheel paths."""
    files = {p.relative_to(ROOT).as_posix() for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")
             if "__pycache__" not in p.parts}
    files |= {p.relative_to(ROOT).as_posix() for p in DATA.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    return files


def test_reference_data_is_package_data_and_every_csv_parses():
    folder = resources.files("bench") / "data" / "reference"
    names = sorted(e.name for e in folder.iterdir() if e.name.endswith(".csv"))
    assert len(names) >= 7, names
    for name in names:
        rows = reference.read_csv(name)
        assert rows and all(None not in row for row in rows), name  # header plus rows, no ragged line
    assert (folder / "paper_protocol.md").read_text(encoding="utf-8").strip()


def test_reference_functions_return_data():
    assert reference.paper_table1()["MobileOne-S0"]["top1"]
    assert reference.baseline_counts()
    assert set(reference.mobileone_counts()) >= {"S0", "S1", "S2", "S3", "S4"}
    assert reference.micro_top1()
    assert reference.paper_spearman()


def test_no_module_reads_data_from_outside_the_packages():
    """Source that builds a path to results/reference (or any data folder of the checkout) breaks in a wheel."""
    pattern = re.compile(r"""results["']?\s*[/,)]\s*["']?reference|results/reference""")
    offenders = [f"{p.relative_to(ROOT)}:{i}" for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")
                 for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
                 if pattern.search(line) and not line.lstrip().startswith("#") and '"""' not in line]
    assert offenders == []
    assert not (ROOT / "results" / "reference").exists()


def test_package_data_glob_covers_the_data_folder():
    """pyproject's package-data globs match every file under bench/data (no file left out of the wheel)."""
    tomllib = pytest.importorskip("tomllib")
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["bench"]
    for p in DATA.rglob("*"):
        if p.is_file() and "__pycache__" not in p.parts:
            assert any(p.relative_to(ROOT / "bench").match(g) for g in globs), p


def test_wheel_holds_every_file_the_code_reads(tmp_path):
    # About 1 s, so not marked slow. Build from a clean copy: an in-tree build reuses build/lib, whose stale files would hide a missing one.
    src = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for pkg in PACKAGES:
        shutil.copytree(ROOT / pkg, src / pkg, ignore=ignore)
    for name in BUILD_FILES:
        shutil.copy2(ROOT / name, src / name)
    out = tmp_path / "wheel"
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(out), "."], cwd=src, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (wheel,) = out.glob("mobileone_bench-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        missing = _package_files() - names
        assert missing == set(), sorted(missing)
        assert not any(n.startswith(("results/", "tests/")) for n in names)
        meta = zf.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
        table = zf.read("bench/data/reference/paper_table1_latency.csv").decode()
    assert table == (DATA / "reference" / "paper_table1_latency.csv").read_text(encoding="utf-8")
    assert re.search(r"^Requires-Dist: matplotlib>=3\.7$", meta, re.M), meta  # core, not behind an extra
    assert re.search(r"^Provides-Extra: plot$", meta, re.M)
    rows = list(csv.reader(line for line in table.splitlines() if not line.startswith("#")))
    assert len(rows) > 1
