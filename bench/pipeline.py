"""The suite: for each (device, model, form) cell export -> load -> measure -> record.

A failing cell is recorded with its error and the suite goes on; the run file is rewritten atomically after
every cell, so an interrupt loses nothing already measured and `bench run --resume` finishes the rest.
"""
from __future__ import annotations

import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol as TypingProtocol

from bench import env as envmod, zoo
from bench.config import SuiteConfig
from bench.core.artifact import ExportRequest
from bench.core.errors import UserError
from bench.core.io import now_iso
from bench.core.protocol import Protocol, get_protocol
from bench.core.result import FAILED, LatencyResult
from bench.core.runner import ExternalMeasurement, RunnerOptions
from bench.env import env_key, usable_cores
from bench.env.gpu import gpu_env
from bench.measure import ContentionProbe, Measurement, measure, timed_ms
from bench.stats import summarize
from bench.store import Run, RunWriter, load_run, new_run_id, run_path
from devices.base import get_device, make_runner, runner_availability, runners_for
from exporters.base import get_exporter

# Device options that shape the exported artifact (the rest only shape the runner).
EXPORT_SETTINGS = {"precision", "opt_level", "minimum_deployment_target", "io_precision", "image_input",
                   "calibration", "calibration_count", "allow_float_ops", "parity_count", "bn_reestimate"}


def export_request(cfg: SuiteConfig, model: str, device: str, deploy: bool) -> ExportRequest:
    """What to export for a (model, device) of a suite: the model as configured, and the device options
    that shape the artifact (the rest only shape the runner)."""
    options = cfg.options_for(device)
    return ExportRequest(model, activation=cfg.activation, weights=cfg.weights, deploy=deploy,
                         settings=tuple(sorted((k, v) for k, v in options.items() if k in EXPORT_SETTINGS)))


@dataclass(frozen=True)
class Cell:
    model: str
    device: str
    runner_label: str
    runner_path: str
    form: str  # deploy | train

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.model, self.device, self.runner_label, self.form)


class Reporter(TypingProtocol):
    def run_started(self, path: Path, cells: int) -> None: ...
    def cell_started(self, cell: Cell, index: int, total: int) -> None: ...
    def round_done(self, cell: Cell, m: Measurement) -> None: ...
    def cell_done(self, result: LatencyResult) -> None: ...


class SilentReporter:
    def run_started(self, path, cells): pass
    def cell_started(self, cell, index, total): pass
    def round_done(self, cell, m): pass
    def cell_done(self, result): pass


def plan_cells(cfg: SuiteConfig) -> list[Cell]:

    forms = ("deploy", "train") if cfg.form == "both" else (cfg.form,)
    cells = []
    for device in cfg.devices:
        for label, path in runners_for(device, cfg.options_for(device).get("via")):
            for model in zoo.list_models(cfg.models):
                for form in forms:
                    # The train form differs from the deploy form only where there is something to fuse.
                    if form == "train" and not zoo.resolve(model).reparameterizable:
                        continue
                    cells.append(Cell(model, device, label, path, form))
    return cells


def check_devices(cfg: SuiteConfig) -> None:
    """Refuse up front, in one line, a device this host cannot run."""
    for name in cfg.devices:
        avail = runner_availability(name, cfg.options_for(name).get("via"))
        if not avail.can_run:
            hint = ""
            if avail.status == "export-only":
                target = get_device(name).exporter
                hint = (f"; exporting works here: `bench export --device {name} --out DIR` (cached packages "
                        f"are in {cfg.cache_dir / target})")
            raise UserError(f"device {name} cannot run here: {avail.reason}{hint}")


def _model_info(model: str, cfg: SuiteConfig) -> dict:

    spec = zoo.resolve(model)
    c = zoo.spec_complexity(model, activation=cfg.activation, cache_dir=cfg.cache_dir)
    return {"paper_name": spec.paper_name, "family": spec.family, "params_m": c.params_m, "macs_m": c.macs_m,
            "activation": cfg.activation if spec.activation_swap else "original",
            "se_gate": "hard-sigmoid kept" if spec.activation_swap else "n/a"}


def _summaries(m_samples: list[list[float]], device_samples: list[list[float]], protocol: Protocol):
    summary = summarize(m_samples, protocol.statistic, protocol.trim).to_dict() if m_samples else None
    device_summary = (summarize(device_samples, protocol.statistic, protocol.trim).to_dict()
                      if device_samples else None)
    return summary, device_summary


def _flags(m: Measurement, protocol: Protocol, summary: dict | None) -> list[str]:
    flags = []
    if m.contended:
        flags.append("contended")
    if m.rejected_rounds:
        flags.append(f"rounds-redone:{len(m.rejected_rounds)}")
    if protocol.target_rel_ci is not None and summary and summary["ci_rel_halfwidth"] > protocol.target_rel_ci:
        flags.append("precision-not-reached")
    return flags


def measure_cell(cell: Cell, cfg: SuiteConfig, protocol: Protocol, threads: int, run_env: dict,
                 reporter: Reporter) -> LatencyResult:
    """One cell, start to end. Errors are caught and recorded with the stage they happened in."""

    device = get_device(cell.device)
    options = cfg.options_for(cell.device)
    started = now_iso()
    base = dict(model=cell.model, device=cell.device, runner=cell.runner_label, form=cell.form,
                precision=options.get("precision", device.precision), threads=threads,
                protocol=protocol.to_dict(), started=started)
    stage = "export"
    try:
        base["model_info"] = _model_info(cell.model, cfg)
        request = export_request(cfg, cell.model, cell.device, deploy=cell.form == "deploy")
        if device.exporter:
            artifact, _hit = get_exporter(device.exporter)(request, cfg.cache_dir)
            target = artifact
            base["artifact"] = artifact.to_dict()
            base["precision"] = artifact.precision
        else:
            target = zoo.build_model(request)
        stage = "load"
        runner = make_runner(cell.runner_path, RunnerOptions(threads=threads, extra=options))
        with runner:
            _, load_ms = timed_ms(lambda: runner.load(target))
            if runner.external:
                stage = "run"
                ext: ExternalMeasurement = runner.measure_external(protocol)
                result = _external_result(base, ext)
            else:
                _, first_ms = timed_ms(runner.infer)
                stage = "run"
                probe = ContentionProbe() if device.kind == "cpu" or cell.device == "tflite" else None
                m = measure(runner.infer, protocol, probe=probe, reload=runner.reload,
                            on_round=lambda m: reporter.round_done(cell, m))
                summary, device_summary = _summaries(m.samples_ms, m.device_samples_ms, protocol)
                result = LatencyResult(
                    **base, summary=summary, device_summary=device_summary, samples_ms=m.samples_ms,
                    device_samples_ms=m.device_samples_ms, contention=m.contention,
                    rejected_rounds=m.rejected_rounds, flags=_flags(m, protocol, summary), load_ms=load_ms,
                    first_inference_ms=first_ms, warmup_iters=m.warmup_iters, stop_reason=m.stop_reason,
                    wall_s=m.wall_s, runner_info=runner.info())
    except KeyboardInterrupt:
        raise
    except Exception as e:  # a failing cell is data, not a crash
        detail = str(e).strip().splitlines()[0] if str(e).strip() else ""
        tb = traceback.extract_tb(e.__traceback__)
        where = f" ({Path(tb[-1].filename).name}:{tb[-1].lineno})" if tb and not isinstance(e, UserError) else ""
        result = LatencyResult(**base, status=FAILED, error=f"{type(e).__name__}: {detail}{where}",
                               error_stage=stage)
    env_fields = env_key(run_env, result.device, result.runner, threads, result.precision)
    return LatencyResult.from_dict({**result.to_dict(), "env_key": env_fields, "finished": now_iso()})


def _external_result(base: dict, ext: ExternalMeasurement) -> LatencyResult:
    summary = ext.summary
    if ext.samples_ms:
        protocol = Protocol(**{k: v for k, v in base["protocol"].items()})
        summary, device_summary = _summaries(ext.samples_ms, ext.device_samples_ms, protocol)
    else:
        device_summary = None
    return LatencyResult(**base, summary=summary, device_summary=device_summary, samples_ms=ext.samples_ms,
                         device_samples_ms=ext.device_samples_ms, flags=list(ext.flags), load_ms=ext.load_ms,
                         first_inference_ms=ext.first_inference_ms, warmup_iters=ext.warmup_iters,
                         stop_reason=ext.stop_reason, runner_info=ext.info, source="measured:external")


def run_suite(cfg: SuiteConfig, command: list[str], reporter: Reporter | None = None,
              resume: Path | None = None) -> Path:
    """Measure every cell of the suite into one run file; return its path."""

    reporter = reporter or SilentReporter()
    check_devices(cfg)
    threads = cfg.threads or usable_cores()
    if resume is not None:
        run = load_run(resume)
        path = Path(resume)
        done = {c.key for c in run.cells if c.ok}  # failed cells are tried again
        run.status = "running"
    else:
        run = Run(run_id=new_run_id(), created=now_iso(), command=command, config=cfg.to_dict(),
                  env=envmod.capture(threads))
        if any(get_device(d).kind == "gpu" for d in cfg.devices):
            run.env["gpu"] = gpu_env()
        path = run_path(cfg.out_dir, run.run_id)
        done = set()
    cells = [c for c in plan_cells(cfg) if c.key not in done]
    writer = RunWriter(path, run)
    reporter.run_started(path, len(cells))
    try:
        for i, cell in enumerate(cells):
            reporter.cell_started(cell, i, len(cells))
            protocol = get_protocol(cfg.protocol, get_device(cell.device).kind, **dict(cfg.protocol_overrides))
            result = measure_cell(cell, cfg, protocol, threads, run.env, reporter)
            writer.add(result)
            reporter.cell_done(result)
    except KeyboardInterrupt:
        writer.finish("interrupted")
        raise
    writer.finish("complete")
    return path
