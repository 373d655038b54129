"""Importing the analysis modules pulls in neither matplotlib (the plot extra) nor torch (slow to import)."""
from import_probe import imported_after

OURS = ["bench.analysis.frames", "bench.analysis.tables", "bench.analysis.correlate", "bench.analysis.plots",
        "bench.commands.analysis"]




def test_no_matplotlib_or_torch_at_import_time():
    assert imported_after(OURS) & {"matplotlib", "torch"} == set()


def test_the_probe_sees_an_import():
    assert "matplotlib" in imported_after(["bench.analysis.plots", "matplotlib"])
