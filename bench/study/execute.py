"""Run the study's stages, each an ordinary run file written by bench.pipeline.run_suite, keeping the manifest
up to date (the run file's path is recorded as soon as the suite names it, so an interrupt leaves a resumable
stage). A completed stage is not measured again; an interrupted one is resumed like `bench run --resume`."""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from bench.config import SuiteConfig
from bench.pipeline import SilentReporter, run_suite
from bench.store import load_run
from bench.study import manifest as mf
from bench.study.plan import Stage


class _StageReporter:
    """Forwards to the user's reporter and records the run file in the manifest when the suite names it."""

    def __init__(self, inner, on_path):
        self.inner, self.on_path = inner, on_path

    def run_started(self, path, cells):
        self.on_path(Path(path))
        self.inner.run_started(path, cells)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def runs_dir(out: Path) -> Path:
    return Path(out) / "runs"


def record_plan(out: Path, manifest: mf.Manifest, stages: list[Stage]) -> mf.Manifest:
    """Stages not yet in the manifest are added, and a stage skipped before takes the new plan (the ablation
    networks arrived in the zoo, or --stages asks for it now); a stage that is measured or under way keeps
    its configuration, so a resumed run file goes on as it started."""
    for s in stages:
        old = manifest.stage(s.name)
        if old is None or (old.status == mf.SKIPPED and old.run is None):
            manifest = manifest.with_stage(mf.StageRecord(
                s.name, s.title, status=mf.SKIPPED if s.config is None else mf.PENDING,
                config=s.config.to_dict() if s.config else None, skipped=s.skipped))
    mf.save(out, manifest)
    return manifest


def run_stages(out: Path, manifest: mf.Manifest, command: list[str], reporter=None,
               announce=lambda text: None, only: tuple[str, ...] | None = None) -> mf.Manifest:
    """Measure every stage of the manifest that is not complete or skipped (of `only`, when given; the others
    wait in the manifest for a later --resume)."""
    reporter = reporter or SilentReporter()
    out = Path(out)
    for record in manifest.stages:
        if record.status in (mf.COMPLETE, mf.SKIPPED) or (only is not None and record.name not in only):
            continue
        cfg = SuiteConfig.from_dict(record.config)
        cfg = replace(cfg, out=str(runs_dir(out)))
        resume = out / record.run if record.run and (out / record.run).is_file() else None
        if resume is not None and load_run(resume).status == "complete":
            manifest = manifest.with_stage(replace(record, status=mf.COMPLETE))
            mf.save(out, manifest)
            continue
        announce(f"stage {record.name}: {record.title}" + (" (resumed)" if resume else ""))
        state = {"manifest": manifest}

        def on_path(path: Path, record=record):
            rel = path.resolve().relative_to(out.resolve()).as_posix()
            state["manifest"] = state["manifest"].with_stage(replace(record, run=rel, status=mf.RUNNING))
            mf.save(out, state["manifest"])

        start = time.monotonic()
        try:
            run_suite(cfg, command=command, reporter=_StageReporter(reporter, on_path), resume=resume)
        except KeyboardInterrupt:
            current = state["manifest"].stage(record.name)
            manifest = state["manifest"].with_stage(replace(current, status=mf.INTERRUPTED,
                                                            wall_s=record.wall_s + time.monotonic() - start))
            mf.save(out, manifest)
            raise
        current = state["manifest"].stage(record.name)
        manifest = state["manifest"].with_stage(replace(current, status=mf.COMPLETE,
                                                        wall_s=round(record.wall_s + time.monotonic() - start, 1)))
        mf.save(out, manifest)
    return manifest
