"""`bench ab` for real: ONNX Runtime sessions of MobileOne-mu0, the quick protocol, interleaved rounds."""
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from bench.reference import REPO_ROOT
from gate_helpers import cli

TINY = "mobileone_mu0"
SHORT = ["--protocol", "quick", "--threads", "1", "--rounds", "6", "--max-rounds", "6", "--seed", "3"]

pytestmark = pytest.mark.slow  # each test exports (once) and times a model: tens of seconds on 2 cores


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def load(path: Path, result) -> dict:
    assert path.is_file(), result  # (exit code, stdout, stderr) of the run that should have written it
    return json.loads(path.read_text())


def suite(path: Path, cache: Path, extra: str = "") -> Path:
    path.write_text(f'[suite]\nmodels = "{TINY}"\ncache = "{cache}"\n{extra}')
    return path


def test_same_config_both_sides(tmp_path, cache):
    a = suite(tmp_path / "a.toml", cache)
    md, js = tmp_path / "ab.md", tmp_path / "ab.json"
    rc, out, err = res = cli("ab", "--base-config", a, "--head-config", a, *SHORT, "--markdown", md, "--json", js)
    data = load(js, res)
    cell = data["cells"][0]
    assert rc == data["exit_code"] and rc in (0, 1, 3), err
    assert cell["model"] == TINY and cell["rounds"] == 6 and len(cell["log_ratios"]) == 6
    assert cell["verdict"] in ("PASS", "UNSTABLE", "FAIL") and 0.5 < cell["ratio"] < 2.0
    assert cell["base_ms"] > 0 and cell["head_ms"] > 0 and cell["level"] == pytest.approx(0.95)
    assert "seed 3" in " ".join(data["notes"]) and "onnxruntime" in data["environment"]
    assert md.read_text().startswith("### Latency gate (ab):") and TINY in out


def test_disabled_graph_optimizations_fail(tmp_path, cache):
    a = suite(tmp_path / "a.toml", cache)
    slow = suite(tmp_path / "slow.toml", cache, "[devices.cpu]\ndisable_optimizations = true\n")
    rc, out, err = res = cli("ab", "--base-config", a, "--head-config", slow, *SHORT, "--json", tmp_path / "ab.json")
    cell = load(tmp_path / "ab.json", res)["cells"][0]
    assert rc == 1 and cell["verdict"] == "FAIL" and cell["ratio"] > 1.3 and cell["ci_low"] > 1, (out, err)
    # and the other way round it is a speed-up: PASS (or UNSTABLE on a very noisy machine), never FAIL
    rc, out, err = res = cli("ab", "--base-config", slow, "--head-config", a, *SHORT, "--json", tmp_path / "ba.json")
    cell = load(tmp_path / "ba.json", res)["cells"][0]
    assert rc in (0, 3) and cell["ratio"] < 0.8, (out, err)


def test_artifact_folders_train_form_against_deploy_form(tmp_path, cache):
    from bench.core.artifact import ExportRequest
    from exporters.base import copy_artifact
    from exporters.onnx import export

    deploy, _ = export(ExportRequest(TINY), cache)
    train, _ = export(ExportRequest(TINY, deploy=False), cache)
    copy_artifact(deploy, tmp_path / "base")
    copy_artifact(train, tmp_path / "head")
    assert (tmp_path / "head" / f"{TINY}.onnx").is_file() and (tmp_path / "head" / f"{TINY}.onnx.json").is_file()
    rc, out, err = res = cli("ab", "--base-artifacts", tmp_path / "base", "--head-artifacts", tmp_path / "head",
                             *SHORT, "--json", tmp_path / "ab.json")
    cell = load(tmp_path / "ab.json", res)["cells"][0]
    assert rc == 1 and cell["verdict"] == "FAIL" and cell["form"] == "deploy -> train", (out, err)
    assert cell["ratio"] > 1.5


def test_calibrate_then_ab_with_its_effects(tmp_path, cache):
    a = suite(tmp_path / "a.toml", cache)
    effects = tmp_path / "effects.json"
    rc, out, err = res = cli("calibrate", "--config", a, "--models", TINY, "--protocol", "quick", "--threads", "1",
                             "--pairs", "12", "--repeats", "1", "--seed", "0", "--out", effects)
    data = load(effects, res)
    assert rc == 0 and TINY in data["effects"] and len(data["models"][TINY]["log_ratios"][0]) == 12, err
    assert data["threads"] == 1 and data["cpu_model"] and "bench ab --effects" in out
    rc, out, err = res = cli("ab", "--base-config", a, "--head-config", a, *SHORT, "--effects", effects,
                             "--json", tmp_path / "ab.json")
    cell = load(tmp_path / "ab.json", res)["cells"][0]
    assert cell["min_effect"] == data["effects"][TINY], err


def test_two_revisions_each_exported_by_its_own_tree(tmp_path):
    # A clone stands in for the repository, so the test never touches this checkout's git state.
    clone = tmp_path / "repo"
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(REPO_ROOT), str(clone)], check=True,
                   capture_output=True)
    before = set(Path(tempfile.gettempdir()).glob("bench-ab-*"))
    rc, out, err = res = cli("ab", "--repo", clone, "--base", "HEAD~1", "--head", "HEAD", "--models", TINY, *SHORT,
                             "--cache-dir", tmp_path / "abcache", "--json", tmp_path / "ab.json")
    data = load(tmp_path / "ab.json", res)
    assert rc == data["exit_code"] and data["cells"][0]["rounds"] == 6, err
    assert data["base"].startswith("rev ") and "(HEAD~1)" in data["base"] and "(HEAD)" in data["head"]
    # each revision exported into its own cache, and no source tree is left behind
    assert len([p for p in (tmp_path / "abcache").iterdir() if p.is_dir()]) == 2
    assert set(Path(tempfile.gettempdir()).glob("bench-ab-*")) - before == set()
    # The head defaults to the working tree, uncommitted edits included, exported by its own code: break
    # the clone's exporter and the head cannot produce the model the base could, an ERROR that fails.
    onnx_py = clone / "exporters" / "onnx.py"
    onnx_py.write_text(onnx_py.read_text() + "\n\ndef export(request, cache_dir):  # redefined: broken\n"
                       "    raise RuntimeError('broken on purpose')\n")
    rc, out, err = res = cli("ab", "--repo", clone, "--base", "HEAD", "--models", TINY, *SHORT,
                             "--cache-dir", tmp_path / "abcache", "--json", tmp_path / "broken.json")
    data = load(tmp_path / "broken.json", res)
    assert rc == 1 and data["cells"][0]["verdict"] == "ERROR" and "broken on purpose" in data["cells"][0]["note"]
    assert data["head"] == f"working tree of {clone.resolve()}"
    shutil.rmtree(clone)
