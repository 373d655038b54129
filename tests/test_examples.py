"""examples/custom_model, run as its README says, in a copy of the folder, through the installed `bench` code
in fresh processes: `bench models 'tiny*'`, `bench run`, `bench table`, `bench plot`."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = [sys.executable, "-c", "import sys; from bench.cli import main; sys.exit(main(sys.argv[1:]))"]


@pytest.mark.slow
def test_the_custom_model_example_runs_end_to_end(tmp_path):
    folder = tmp_path / "custom_model"
    shutil.copytree(ROOT / "examples" / "custom_model", folder,
                    ignore=shutil.ignore_patterns("runs", "plots", "results", "__pycache__"))
    env = {**os.environ, "BENCH_CACHE_DIR": str(tmp_path / "cache"),
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}

    def bench(*argv):
        proc = subprocess.run(BENCH + list(argv), cwd=folder, env=env, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stderr[-2000:]
        return proc.stdout

    listing = bench("models", "tiny*", "--json")
    assert {r["name"] for r in json.loads(listing)} == {"tiny_resnet", "tiny_resnet_wide"}
    bench("run", "--threads", "1")
    run = json.loads(next((folder / "runs").glob("*.json")).read_text())
    assert len(run["cells"]) == 6 and all(c["status"] == "ok" for c in run["cells"]), \
        [c["error"] for c in run["cells"]]
    table = bench("table")
    assert "TinyResNet-1.0" in table and "TinyResNet-2.0 @256" in table and "MobileOne-S0" in table
    bench("plot")
    assert list((folder / "results" / "plots").glob("accuracy_vs_latency-cpu-*.png"))
