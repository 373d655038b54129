"""`bench models` (bench/commands/models.py) through the real entry point."""
import json
import os
import subprocess
import sys

from bench.reference import REPO_ROOT


def bench(*args, cwd=None, env=None):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "bench.cli", *args], capture_output=True, text=True,
                          cwd=cwd or REPO_ROOT, env=e, timeout=600)


def test_models_json_lists_the_20_of_the_study():
    proc = bench("models", "study", "--json")
    rows = json.loads(proc.stdout)
    assert len(rows) == 20 and {"name", "paper_name", "family", "params_m", "macs_m", "top1"} <= set(rows[0])
    assert {r["paper_name"] for r in rows} >= {"MobileOne-S0", "MixNet-S", "RepVGG-B2"}
