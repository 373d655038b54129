"""Importing the analysis modules pulls in neither matplotlib (the plot extra) nor torch (slow to import)."""
import json
import subprocess
import sys

OURS = ["bench.analysis.frames", "bench.analysis.tables", "bench.analysis.correlate", "bench.analysis.plots",
        "bench.commands.analysis"]


def imported_after(modules: list[str]) -> set[str]:
    code = ("import importlib, json, sys\n"
            f"for m in {modules!r}: importlib.import_module(m)\n"
            "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_no_matplotlib_or_torch_at_import_time():
    assert imported_after(OURS) & {"matplotlib", "torch"} == set()


def test_the_probe_sees_an_import():
    assert "matplotlib" in imported_after(["bench.analysis.plots", "matplotlib"])
