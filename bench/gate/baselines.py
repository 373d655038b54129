"""`bench baseline accept/list`: complete runs kept in results/baselines/ with each cell's environment key,
for `bench compare <name> NEW` and trend plots later and elsewhere."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

from bench.core.errors import UserError
from bench.core.io import atomic_write_json
from bench.store import find_run, load_run

BASELINES_DIR = "results/baselines"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def accept_baseline(ref: str, runs_dir: Path | Callable[[], Path], baselines_dir: Path = Path(BASELINES_DIR),
                    name: str | None = None, force: bool = False) -> Path:
    """Copy a complete run into the baselines folder, every cell carrying its environment key, so that
    `bench compare <name> NEW` and trend plots can use it later and elsewhere. `runs_dir`: where run ids are
    looked up (or a function that says)."""
    src = find_run(ref, runs_dir() if callable(runs_dir) else runs_dir)
    run = load_run(src)
    if run.status != "complete" and not force:
        raise UserError(f"run {run.run_id} is {run.status or 'unfinished'}; finish it with "
                        f"`bench run --resume {src}` or pass --force to accept it as it is")
    if not any(c.ok for c in run.cells):
        raise UserError(f"run {run.run_id} has no measured cell; accept a run that measured something")
    if not run.env:
        raise UserError(f"run {run.run_id} has no environment record; accept a run written by `bench run`")
    name = name or run.run_id
    if not _NAME.match(name):
        raise UserError(f"baseline name {name!r} may use letters, digits, '.', '_' and '-' only; pass another --name")
    dst = Path(baselines_dir) / f"{name}.json"
    if dst.exists() and not force:
        raise UserError(f"baseline {dst} exists; choose another --name or pass --force to replace it")
    atomic_write_json(dst, run.to_dict())  # every loaded cell has its key (store.load_run migrates old files)
    return dst


def list_baselines(baselines_dir: Path = Path(BASELINES_DIR)) -> list[dict]:
    """One row per baseline: name, run, when, where, and what it measured (or why it cannot be read)."""
    rows = []
    for p in sorted(Path(baselines_dir).glob("*.json")):
        try:
            run = load_run(p)
        except UserError as e:
            rows.append({"name": p.stem, "error": str(e)})
            continue
        rows.append({"name": p.stem, "run_id": run.run_id, "created": run.created,
                     "host": run.env.get("hostname", ""), "cpu": run.env.get("cpu", {}).get("model", ""),
                     "revision": (run.env.get("git") or {}).get("revision") or "",
                     "cells": sum(c.ok for c in run.cells),
                     "devices": ",".join(sorted({c.device for c in run.cells}))})
    return rows
