"""The study from start to report: plan the stages, keep the manifest, measure what is missing, write the report."""
from __future__ import annotations

import time
from pathlib import Path

from bench.config import SuiteConfig, writable_folder
from bench.core.errors import UserError
from bench.env import usable_cores
from bench.pipeline import check_devices
from bench.study import manifest as mf
from bench.study.execute import record_plan, run_stages
from bench.study.operators import operator_counts
from bench.study.plan import plan_stages, shared_x86_models
from bench.study.report import ReportFiles, build_report
from bench.study.results import pool_cells


def start_or_resume(out: Path, base: SuiteConfig | None, resume: bool, only: tuple[str, ...] | None,
                    models: str | None = None, redo: tuple[str, ...] = ()) -> mf.Manifest:
    """The manifest to work from: a new study's (refusing to overwrite one in `out`), or the one in `out`."""
    out = Path(out)
    writable_folder(out, "study folder", "--out")
    if resume:
        manifest = mf.load(out)
        if manifest.base is not None:  # plan again: stages skipped before may be possible now
            base = SuiteConfig.from_dict(manifest.base)
            manifest = record_plan(out, manifest, plan_stages(base, manifest.cores, only, manifest.models))
        for name in redo:  # measured again into a new run file; the old one stays in runs/, no longer used
            old = manifest.stage(name)
            if old is None or old.config is None:
                raise UserError(f"--redo {name}: the study has no such stage to measure (it was skipped: "
                                f"{old.skipped if old else 'unknown stage'})")
            manifest = manifest.with_stage(mf.StageRecord(old.name, old.title, config=old.config))
        mf.save(out, manifest)
        return manifest
    if mf.manifest_path(out).exists():
        raise UserError(f"{out} already holds a study ({mf.MANIFEST}); continue it with --resume, or pass another "
                        "--out")
    cores = usable_cores()
    check_devices(base)
    manifest = mf.Manifest(devices=base.devices, protocol=base.protocol, cores=cores, base=base.to_dict(),
                           models=models)
    return record_plan(out, manifest, plan_stages(base, cores, only, models))


def run_study(out: Path, base: SuiteConfig | None, *, resume: bool = False, only: tuple[str, ...] | None = None,
              models: str | None = None, redo: tuple[str, ...] = (), command: list[str], reporter=None,
              announce=lambda text: None) -> ReportFiles:
    start = time.monotonic()
    manifest = start_or_resume(out, base, resume, only, models, redo)
    manifest = run_stages(Path(out), manifest, command, reporter, announce, only)
    cfg = SuiteConfig.from_dict(next(s.config for s in manifest.stages if s.config))
    ops = operator_counts(shared_x86_models(), cfg)
    cells = pool_cells(Path(out), manifest)
    return build_report(Path(out), manifest, cells, ops, manifest.cores, wall_s=time.monotonic() - start)


def paper_report(out: Path, cfg: SuiteConfig) -> ReportFiles:
    """The paper-only report: nothing measured (the deploy-form ONNX graphs are exported, or read from the
    cache, for their operator counts)."""
    writable_folder(Path(out), "study folder", "--out")
    Path(out).mkdir(parents=True, exist_ok=True)
    return build_report(Path(out), None, None, operator_counts(shared_x86_models(), cfg), usable_cores())
