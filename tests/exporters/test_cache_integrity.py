"""The artifact cache never hands out a file that is not the one recorded: swapped, truncated or missing files
and unreadable records are rebuilt (and say so); a moved cache still hits; a killed build's scratch folder is
removed by the next build. Real ONNX exports of the two smallest models."""
import json
import os
import shutil
from pathlib import Path

import pytest

from bench.core.artifact import ExportRequest
from bench.core.io import SCRATCH_MARK, remove_stale_scratch, sha256_of
from exporters.base import ARTIFACT_FILE
from exporters.onnx import export

A, B = "mobileone_mu0", "mobileone_mu1"


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    a, _ = export(ExportRequest(A), cache)
    b, _ = export(ExportRequest(B), cache)
    return cache, a, b


@pytest.fixture
def cache(pristine, tmp_path):
    src, a, b = pristine
    dst = tmp_path / "cache"
    shutil.copytree(src, dst)
    return dst, a, b


def _entry(cache: Path, artifact) -> Path:
    return cache / "onnx" / Path(artifact.path).parent.name


def test_a_hit_is_the_recorded_file(cache):
    root, a, _ = cache
    again, hit = export(ExportRequest(A), root)
    assert hit and again.sha256 == a.sha256 and Path(again.path).parent == _entry(root, a)
    record = json.loads((_entry(root, a) / ARTIFACT_FILE).read_text())
    assert record["path"] == "model.onnx" and record["size"] == Path(again.path).stat().st_size


def test_a_swapped_file_is_rebuilt_never_timed(cache):
    root, a, b = cache
    entry = _entry(root, a)
    shutil.copy(_entry(root, b) / "model.onnx", entry / "model.onnx")  # another model's file in a's place
    rebuilt, hit = export(ExportRequest(A), root)
    assert not hit and "rebuilt" in rebuilt.metadata["cache_repair"]
    assert "sha256" in rebuilt.metadata["cache_repair"] or "bytes" in rebuilt.metadata["cache_repair"]
    assert sha256_of(Path(rebuilt.path)) == rebuilt.sha256 == a.sha256


@pytest.mark.parametrize("damage", ["truncate", "delete", "bad-record"])
def test_damaged_entries_are_rebuilt(cache, damage):
    root, a, _ = cache
    entry = _entry(root, a)
    if damage == "truncate":
        data = (entry / "model.onnx").read_bytes()
        (entry / "model.onnx").write_bytes(data[: len(data) // 2])
    elif damage == "delete":
        (entry / "model.onnx").unlink()
    else:
        (entry / ARTIFACT_FILE).write_bytes(b"\xff{not json")
    rebuilt, hit = export(ExportRequest(A), root)
    assert not hit and rebuilt.metadata["cache_repair"].startswith("rebuilt: ")
    assert sha256_of(Path(rebuilt.path)) == a.sha256
    again, hit = export(ExportRequest(A), root)  # and the repaired entry is a plain hit afterwards
    assert hit and "cache_repair" in again.metadata


def test_a_moved_cache_still_hits(cache, tmp_path):
    root, a, _ = cache
    moved = tmp_path / "elsewhere"
    root.rename(moved)
    again, hit = export(ExportRequest(A), moved)
    assert hit and Path(again.path).is_relative_to(moved) and again.sha256 == a.sha256


def test_scratch_of_a_killed_build_is_removed_and_a_live_one_kept(tmp_path):
    folder = tmp_path / "onnx"
    dead = folder / f".{A}-abc{SCRATCH_MARK}999999999.x1"
    live = folder / f".{A}-abc{SCRATCH_MARK}{os.getpid()}.x2"
    for d in (dead, live):
        d.mkdir(parents=True)
        (d / "model.onnx").write_bytes(b"half")
    assert remove_stale_scratch(folder) == [dead]
    assert not dead.exists() and live.exists()


def test_a_cache_hit_also_clears_a_killed_build_s_scratch(cache):
    root, a, _ = cache
    dead = root / "onnx" / f".{A}-abc{SCRATCH_MARK}999999999.x1"
    dead.mkdir()
    _, hit = export(ExportRequest(A), root)
    assert hit and not dead.exists()
