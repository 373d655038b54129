"""Live progress of a suite (rich) and the summary table printed at its end."""
from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bench import zoo
from bench.console import print_table
from bench.core.result import untrustworthy
from bench.store import Run
from devices.registry import paper_column


class RichReporter:
    """One bar over the cells, a status line for the cell being measured. Writes to stderr."""

    def __init__(self):
        self.console = Console(stderr=True)
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=self.console, transient=False)
        self.task = None
        self.run_path: str | None = None

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        self.progress.__exit__(*exc)

    def run_started(self, path, cells: int) -> None:
        self.run_path = str(path)
        self.task = self.progress.add_task("", total=cells)

    def cell_started(self, cell, index: int, total: int) -> None:
        self.progress.update(self.task, description=f"{cell.device:7s} {cell.model:22s} {cell.form:6s} exporting")

    def cell_placed(self, cell, host: str, attempt: int) -> None:
        """A cluster run: the cell went to `host` (a retry after its first host was lost says so)."""
        again = " (retry)" if attempt > 1 else ""
        self.console.print(f"{cell.device:7s} {cell.model:22s} {cell.form:6s} -> {host}{again}", highlight=False)

    def round_done(self, cell, m) -> None:
        import numpy as np
        med = float(np.median(np.concatenate([np.asarray(r) for r in m.samples_ms])))
        busy = m.contention[-1]
        load = f" other load {busy:.0%}" if busy is not None else ""
        self.progress.update(self.task, description=f"{cell.device:7s} {cell.model:22s} {cell.form:6s} "
                                                    f"round {len(m.samples_ms)} median {med:.3f} ms{load}")

    def waiting(self, cell, load: float, threshold: float, seconds: float) -> None:
        self.progress.update(self.task, description=f"{cell.device:7s} {cell.model:22s} {cell.form:6s} "
                                                    f"waiting {seconds:g} s for quiet: other load {load:.0%} > "
                                                    f"{threshold:.0%} this round can spare")

    def cell_done(self, result) -> None:
        self.progress.advance(self.task)
        host = result.runner_info.get("host")
        at = f" at {host}" if host else ""  # cluster runs name the host that measured the cell
        if not result.ok:
            self.console.print(f"[red]failed[/red] {result.model} on {result.device}{at}: {result.error}",
                               highlight=False)
        elif host:
            self.console.print(f"done    {result.model} on {result.device}{at}: {result.latency_ms:.3f} ms",
                               highlight=False)


def _fmt(v: float | None, digits: int = 2) -> str:
    return "" if v is None else f"{v:.{digits}f}"


def print_summary(run: Run, path: Path) -> None:

    rows, notes = [], []
    for c in run.cells:
        platform = paper_column(c.device)
        paper = None
        if platform:
            paper = zoo.resolve(c.model).paper_latency_ms.get(platform)
        info = c.model_info
        if c.ok and c.summary:
            s = c.summary
            mark = " *" if c.flags else ""
            # Tools that report only aggregates (benchmark_model) leave the CI empty.
            has_ci = s.ci_low_ms is not None and s.ci_rel_halfwidth is not None
            rows.append([c.model + mark, c.device, c.form, _fmt(s.latency_ms, 3),
                         f"{_fmt(s.ci_low_ms, 3)}-{_fmt(s.ci_high_ms, 3)}" if has_ci else "",
                         f"±{s.ci_rel_halfwidth:.1%}" if has_ci else "", _fmt(info.get("params_m"), 2),
                         _fmt(info.get("macs_m"), 0), _fmt(paper)])
            if c.flags:
                notes.append(f"* {c.model} on {c.device}: {', '.join(c.flags)}")
        else:
            rows.append([c.model, c.device, c.form, "failed", "", "", _fmt(info.get("params_m"), 2),
                         _fmt(info.get("macs_m"), 0), _fmt(paper)])
            notes.append(f"failed: {c.model} on {c.device} ({c.error_stage}): {c.error}")
    measured = [c for c in run.cells if c.ok and c.summary]
    trusted = [c for c in measured if not untrustworthy(c.flags)]
    notes.append(f"{len(trusted)} of {len(measured)} measured cells trustworthy (not contended or unstable)"
                 + (f"; {len(run.cells) - len(measured)} failed" if len(run.cells) > len(measured) else ""))
    statistic = run.cells[0].protocol.statistic if run.cells and run.cells[0].protocol else "median"
    print_table(["model", "device", "form", f"{statistic} (ms)", "95% CI (ms)", "CI", "params (M)", "MACs (M)",
                 "paper CPU (ms)" if all(c.device in ("cpu", "torch") for c in run.cells) else "paper (ms)"],
                rows, title=f"run {run.run_id} ({run.status})", footnotes=notes + [f"results: {path}"])
