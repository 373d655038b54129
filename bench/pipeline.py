"""The suite: for each (device, model, form) cell export -> load -> measure -> record.

A failing cell is recorded with its error and the suite goes on; the run file is rewritten atomically after
every cell, so an interrupt loses nothing already measured and `bench run --resume` finishes the rest.
"""
from __future__ import annotations

import math
import random
import traceback
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol as TypingProtocol

import numpy as np

from bench import env as envmod, zoo
from bench.config import SuiteConfig
from bench.core.artifact import ExportRequest
from bench.core.device import RunnerSpec
from bench.core.errors import ResultsMoved, UserError
from bench.core.io import now_iso
from bench.core.protocol import Protocol, get_protocol
from bench.core.result import FAILED, ComparabilityKey, LatencyResult
from bench.core.runner import RunnerOptions
from bench.env import usable_cores
from bench.env.gpu import gpu_env
from bench.measure import CellLoop, ContentionProbe, Measurement, WaitBudget, timed_ms
from bench.store import Run, RunWriter, load_run, new_run_id, run_path
from devices.registry import availability, get_device, make_runner
from exporters.base import get_exporter


def export_request(cfg: SuiteConfig, model: str, device: str, deploy: bool) -> ExportRequest:
    """What to export for a (model, device) of a suite: the model as configured, and the device options
    that its spec says shape the artifact (the rest only shape the runner)."""
    settings = get_device(device).artifact_settings(cfg.options_for(device))
    return ExportRequest(model, activation=cfg.activation, weights=cfg.weights, deploy=deploy, settings=settings,
                         input_shape=suite_input_shape(cfg, model))


def suite_input_shape(cfg: SuiteConfig, model: str) -> tuple[int, ...] | None:
    """The NCHW input the suite asks for `model` (--input-size, --batch), or None for the model's own size
    at batch 1 (the paper's protocol), which keeps default artifacts keyed as before."""
    if cfg.input_size is None and cfg.batch == 1:
        return None
    return (cfg.batch, *(cfg.input_size or zoo.resolve(model).input_size[1:]))


@dataclass(frozen=True)
class Cell:
    model: str
    device: str
    runner: RunnerSpec
    form: str  # deploy | train

    @property
    def runner_label(self) -> str:
        return self.runner.label

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.model, self.device, self.runner.label, self.form)


class Reporter(TypingProtocol):
    def run_started(self, path: Path, cells: int) -> None: ...
    def cell_started(self, cell: Cell, index: int, total: int) -> None: ...
    def round_done(self, cell: Cell, m: Measurement) -> None: ...
    def waiting(self, cell: Cell, load: float, threshold: float, seconds: float) -> None: ...
    def cell_done(self, result: LatencyResult) -> None: ...


class SilentReporter:
    def run_started(self, path, cells): pass
    def cell_started(self, cell, index, total): pass
    def round_done(self, cell, m): pass
    def waiting(self, cell, load, threshold, seconds): pass
    def cell_done(self, result): pass


def plan_cells(cfg: SuiteConfig) -> list[Cell]:
    forms = ("deploy", "train") if cfg.form == "both" else (cfg.form,)
    cells = []
    for device in cfg.devices:
        for runner in get_device(device).runners_for(cfg.options_for(device).get("via")):
            for model in zoo.list_models(cfg.models):
                for form in forms:
                    # The train form differs from the deploy form only where there is something to fuse.
                    if form == "train" and not zoo.resolve(model).reparameterizable:
                        continue
                    cells.append(Cell(model, device, runner, form))
    return cells


def check_devices(cfg: SuiteConfig) -> None:
    """Refuse up front, in one line, a device this host cannot run."""
    for name in cfg.devices:
        avail = availability(name, cfg.options_for(name).get("via"))
        if not avail.can_run:
            hint = ""
            if avail.status == "export-only":
                target = get_device(name).exporter
                hint = (f"; exporting works here: `bench export --device {name} --out DIR` (cached packages "
                        f"are in {cfg.cache_dir / target})")
            raise UserError(f"device {name} cannot run here: {avail.reason}{hint}")


def _model_info(model: str, cfg: SuiteConfig) -> dict:
    """What the result records of its model: enough to tabulate and plot it without the declaring config."""
    spec = zoo.resolve(model)
    shape = suite_input_shape(cfg, model) or spec.input_size
    c = zoo.spec_complexity(model, activation=cfg.activation, cache_dir=cfg.cache_dir, input_size=tuple(shape))
    return {"paper_name": spec.paper_name, "family": spec.family, "params_m": c.params_m, "macs_m": c.macs_m,
            "activation": cfg.activation if spec.activation_swap else "original",
            "se_gate": "hard-sigmoid kept" if spec.activation_swap else "n/a", "top1": spec.top1,
            "origin": spec.origin, "input_size": list(shape)}


class CellRun:
    """One cell from export to record: opened (exported, loaded, first output checked, warmed up), stepped a
    round at a time, closed into its LatencyResult. An error at any stage makes the cell a failed record with
    that stage, never a crash. `measure_cell` runs one to its end; an interleaved suite steps many in turn."""

    def __init__(self, cell: Cell, cfg: SuiteConfig, protocol: Protocol, threads: int, run_env: dict,
                 reporter: Reporter, run_budget: WaitBudget | None = None, own_time: bool = False):
        self.cell, self.cfg, self.protocol, self.threads, self.run_env = cell, cfg, protocol, threads, run_env
        self.reporter, self.run_budget, self.own_time = reporter, run_budget, own_time
        device = get_device(cell.device)
        self.device, self.options = device, cfg.options_for(cell.device)
        self.base = dict(model=cell.model, device=cell.device, runner=cell.runner_label, form=cell.form,
                         precision=self.options.get("precision", device.precision), threads=threads,
                         protocol=protocol.to_dict(), started=now_iso())
        self.stage, self.runner, self.loop, self.result = "export", None, None, None
        self.load_ms, self.first_ms = 0.0, None
        self._guard(self._open)

    def _guard(self, fn) -> None:
        try:
            fn()
        except KeyboardInterrupt:
            self.close_runner()
            raise
        except Exception as e:  # a failing cell is data, not a crash
            detail = str(e).strip().splitlines()[0] if str(e).strip() else ""
            tb = traceback.extract_tb(e.__traceback__)
            where = f" ({Path(tb[-1].filename).name}:{tb[-1].lineno})" if tb and not isinstance(e, UserError) else ""
            self.result = LatencyResult(**self.base, status=FAILED, error=f"{type(e).__name__}: {detail}{where}",
                                        error_stage=self.stage)
            self.close_runner()

    def _open(self) -> None:
        cell, cfg = self.cell, self.cfg
        self.base["model_info"] = _model_info(cell.model, cfg)
        request = export_request(cfg, cell.model, cell.device, deploy=cell.form == "deploy")
        if cell.runner.exporter:
            artifact, _hit = get_exporter(cell.runner.exporter)(request, cfg.cache_dir)
            target = artifact
            self.base["artifact"] = artifact.to_dict()
            self.base["precision"] = artifact.precision
        else:
            target = zoo.build_model(request)
        self.stage = "load"
        runner = self.runner = make_runner(cell.runner, RunnerOptions(threads=self.threads, extra=self.options))
        _, self.load_ms = timed_ms(lambda: runner.load(target))
        if not runner.self_timed:
            _, self.first_ms = timed_ms(runner.infer)
            check_output(runner, cell, batch=cfg.batch)
        self.stage = "run"
        probe = ContentionProbe(threads=self.threads) if self.device.contention_probe else None
        self.loop = CellLoop(runner if runner.self_timed else runner.infer, self.protocol, probe=probe,
                             reload=runner.reload, on_round=lambda m: self.reporter.round_done(cell, m),
                             run_budget=self.run_budget, on_wait=_waiting(self.reporter, cell),
                             own_time=self.own_time)

    @property
    def done(self) -> bool:
        return self.result is not None or self.loop.done

    def step(self) -> None:
        self._guard(self.loop.step)

    def close_runner(self) -> None:
        if self.runner is not None:
            runner, self.runner = self.runner, None
            runner.close()

    def close(self) -> LatencyResult:
        """The cell's record, with its comparability key."""
        if self.result is None:
            def finish():
                m = self.loop.finish()
                self.result = _measured_result(self.base, m, self.load_ms, self.first_ms, self.runner.info(),
                                               self.runner.self_timed)
            self._guard(finish)
        self.close_runner()
        # A size or batch other than the model's own is another comparison; the default stays "" so runs of
        # the paper's protocol compare with those recorded before the key had the field.
        asked = suite_input_shape(self.cfg, self.cell.model)
        key = ComparabilityKey.of(self.run_env, self.result.device, self.result.runner, self.threads,
                                  self.result.precision, self.cell.runner.runtime,
                                  input_shape="x".join(map(str, asked)) if asked else "")
        return replace(self.result, env_key=key, finished=now_iso())


def measure_cell(cell: Cell, cfg: SuiteConfig, protocol: Protocol, threads: int, run_env: dict,
                 reporter: Reporter, run_budget: WaitBudget | None = None) -> LatencyResult:
    """One cell, start to end. Errors are caught and recorded with the stage they happened in."""
    run = CellRun(cell, cfg, protocol, threads, run_env, reporter, run_budget)
    while not run.done:
        run.step()
    return run.close()


def _waiting(reporter: Reporter, cell: Cell):
    """The reporter's `waiting` hook for this cell (reporters written before it existed do without)."""
    hook = getattr(reporter, "waiting", None)
    return (lambda load, limit, s: hook(cell, load, limit, s)) if hook else None


def check_output(runner, cell: Cell, batch: int = 1) -> None:
    """Once per cell, before timing: the first inference's output is finite and holds one row per input
    (a model with NaN weights, or a broken conversion, is recorded as failed, never timed as ok)."""
    if not runner.supports_output:
        return  # the outside tool keeps its output (trtexec, benchmark_model); its parity is checked at export
    out = np.asarray(runner.output())
    if out.size == 0 or out.ndim < 1 or out.shape[0] != batch:
        raise OutputCheckError(f"{cell.model} on {cell.device}: output shape {tuple(out.shape)} is not one row "
                               f"per input (batch {batch})")
    bad = int(out.size - np.isfinite(out.astype(np.float64)).sum())
    if bad:
        raise OutputCheckError(f"{cell.model} on {cell.device}: {bad} of {out.size} output values are NaN or "
                               "infinite; check the weights (or the export) of this model")


class OutputCheckError(UserError):
    """The model's output is not a finite result of the right shape: the cell fails, it is not timed."""


def _measured_result(base: dict, m: Measurement, load_ms: float, first_ms: float | None, info: dict,
                     self_timed: bool) -> LatencyResult:
    """The record of a measured cell; a self-timing tool's own load and first-inference figures win."""
    return LatencyResult(
        **base, summary=m.summary, device_summary=m.device_summary, samples_ms=m.samples_ms,
        device_samples_ms=m.device_samples_ms, contention=m.contention, rejected_rounds=m.rejected_rounds,
        flags=m.flags, load_ms=m.load_ms if m.load_ms is not None else (None if self_timed else load_ms),
        first_inference_ms=m.first_inference_ms if m.first_inference_ms is not None else first_ms,
        warmup_iters=m.warmup_iters, stop_reason=m.stop_reason, wall_s=m.wall_s, runner_info=info,
        source="measured:external" if self_timed else "measured")


def cell_protocol(cfg: SuiteConfig, cell: Cell) -> Protocol:
    """The protocol a cell runs (the suite's preset, for the device's kind, with the suite's overrides)."""
    return get_protocol(cfg.protocol, get_device(cell.device).kind, **dict(cfg.protocol_overrides))


def measure_interleaved(cells: list[Cell], cfg: SuiteConfig, threads: int, run_env: dict, reporter: Reporter,
                        run_budget: WaitBudget, writer: RunWriter, seed: int | None = None) -> None:
    """The rounds of all cells of a device, round-robin in a fresh random order each pass, so slow drift (a
    clock changing, a neighbour arriving) hits every model alike and the ranking, which is what a latency
    study reports, holds. Every cell of the device is opened (exported and loaded) first; each is recorded as
    soon as its own stopping rule ends it."""
    rng = random.Random(seed)
    index = 0
    for device in dict.fromkeys(c.device for c in cells):
        group = [c for c in cells if c.device == device]
        runs = []
        for cell in group:
            reporter.cell_started(cell, index, len(cells))
            runs.append(CellRun(cell, cfg, cell_protocol(cfg, cell), threads, run_env, reporter, run_budget,
                                own_time=True))
            index += 1
        try:
            active = list(runs)
            while active:
                rng.shuffle(active)
                for run in active:
                    if not run.done:
                        run.step()
                for run in [r for r in active if r.done]:
                    result = run.close()
                    writer.add(result)
                    reporter.cell_done(result)
                active = [r for r in active if not r.done]
        finally:
            for run in runs:
                run.close_runner()


class CellExecutor(TypingProtocol):
    """What runs a suite's cells: it refuses up front what it cannot run, records the environment the run
    file holds, and hands every result to the writer as it arrives. The local loop below, or a cluster's
    nodes (bench.cluster.driver.ClusterExecutor), each calling `measure_cell` per cell."""

    def check(self, cfg: SuiteConfig) -> None: ...
    def environment(self, cfg: SuiteConfig, threads: int) -> dict: ...
    def execute(self, cells: list[Cell], cfg: SuiteConfig, threads: int, run_env: dict, reporter: Reporter,
                run_budget: WaitBudget, writer: RunWriter) -> None: ...


class LocalExecutor:
    """The cells on this host, one after another (or interleaved), in this process."""

    def check(self, cfg: SuiteConfig) -> None:
        check_devices(cfg)

    def environment(self, cfg: SuiteConfig, threads: int) -> dict:
        env = envmod.capture(threads)
        if any(get_device(d).kind == "gpu" for d in cfg.devices):
            env["gpu"] = gpu_env()
        return env

    def execute(self, cells: list[Cell], cfg: SuiteConfig, threads: int, run_env: dict, reporter: Reporter,
                run_budget: WaitBudget, writer: RunWriter) -> None:
        if cfg.interleave is not False:  # None (the default) interleaves too
            measure_interleaved(cells, cfg, threads, run_env, reporter, run_budget, writer)
            return
        for i, cell in enumerate(cells):
            reporter.cell_started(cell, i, len(cells))
            result = measure_cell(cell, cfg, cell_protocol(cfg, cell), threads, run_env, reporter, run_budget)
            writer.add(result)
            reporter.cell_done(result)


def run_suite(cfg: SuiteConfig, command: list[str], reporter: Reporter | None = None,
              resume: Path | None = None, executor: CellExecutor | None = None) -> Run:
    """Measure every cell of the suite into one run file (written atomically after each cell); return the
    run as measured. `executor`: what runs the cells (default: this host, LocalExecutor)."""

    reporter = reporter or SilentReporter()
    executor = executor or LocalExecutor()
    executor.check(cfg)
    threads = cfg.threads or usable_cores()
    if resume is not None:
        run = load_run(resume)
        path = Path(resume)
        done = {c.key for c in run.cells if c.ok}  # failed cells are tried again
        run.status = "running"
    else:
        run = Run(run_id=new_run_id(), created=now_iso(), command=command, config=cfg.to_dict(),
                  env=executor.environment(cfg, threads))
        path = run_path(cfg.out_dir, run.run_id)
        done = set()
    cells = [c for c in plan_cells(cfg) if c.key not in done]
    writer = RunWriter(path, run, rescue_dir=cfg.cache_dir)
    run_budget = WaitBudget(cfg.wait_budget if cfg.wait_budget is not None else math.inf)
    reporter.run_started(path, len(cells))
    try:
        executor.execute(cells, cfg, threads, run.env, reporter, run_budget, writer)
        writer.finish("complete")
    except KeyboardInterrupt:
        writer.finish("interrupted")
        raise
    finally:
        writer.release()  # also when a write fails for good: the lock never outlives the run
    if writer.moved_to is not None:
        raise ResultsMoved(f"could not write {writer.write_error}; every measured cell is saved in "
                           f"{writer.moved_to} (move it to your results folder, or resume from it)")
    return writer.run
