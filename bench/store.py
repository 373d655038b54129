"""Results on disk: one versioned JSON file per run, rewritten atomically after every cell; tidy frames."""
from __future__ import annotations

import datetime as dt
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from bench.core.errors import UserError
from bench.core.io import atomic_write_json, now_iso
from bench.core.result import RUN_KIND, SCHEMA_VERSION, LatencyResult, cell_id

# History of the format (see results/README.md). A reader accepts exactly these versions.
SUPPORTED_SCHEMAS = {1}


def new_run_id() -> str:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{secrets.token_hex(2)}"


@dataclass
class Run:
    run_id: str
    created: str
    command: list[str]
    config: dict  # the suite as run (models, devices, protocol, threads, ...), enough to resume it
    env: dict
    status: str = "running"  # running | complete | interrupted
    finished: str = ""
    cells: list[LatencyResult] = field(default_factory=list)
    schema: int = SCHEMA_VERSION

    def to_dict(self) -> dict:
        return {
            "schema": self.schema, "kind": RUN_KIND, "run_id": self.run_id, "created": self.created,
            "finished": self.finished, "status": self.status, "command": self.command, "config": self.config,
            "env": self.env, "cells": [c.to_dict() for c in self.cells],
        }

    def cell(self, key: tuple) -> LatencyResult | None:
        return next((c for c in self.cells if c.key == key), None)

    def put(self, result: LatencyResult) -> None:
        """Add a cell, replacing an earlier one with the same key (a resumed run redoes failed cells)."""
        self.cells = [c for c in self.cells if c.key != result.key] + [result]


class RunWriter:
    """Owns one run file. Every `add` rewrites the whole file atomically, so an interrupt loses nothing
    already measured and never leaves a half-written file."""

    def __init__(self, path: Path, run: Run):
        self.path = Path(path)
        self.run = run
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UserError(f"cannot create results folder {self.path.parent}: {e.strerror}; "
                            "pass a writable --out DIR") from None
        if not os.access(self.path.parent, os.W_OK):
            raise UserError(f"results folder {self.path.parent} is not writable; pass a writable --out DIR")
        self.flush()

    def add(self, result: LatencyResult) -> None:
        self.run.put(result)
        self.flush()

    def finish(self, status: str = "complete") -> None:
        self.run.status = status
        self.run.finished = now_iso()
        self.flush()

    def flush(self) -> None:
        atomic_write_json(self.path, self.run.to_dict())


def run_path(out_dir: Path, run_id: str) -> Path:
    return Path(out_dir) / f"{run_id}.json"


def load_run(path: Path) -> Run:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"results file {path} not found") from None
    except json.JSONDecodeError as e:
        raise UserError(f"results file {path} is not valid JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(data, dict) or data.get("kind") != RUN_KIND:
        raise UserError(f"{path} is not a mobileone-bench results file (no kind {RUN_KIND!r})")
    schema = data.get("schema")
    if schema not in SUPPORTED_SCHEMAS:
        raise UserError(f"results file {path} has schema {schema!r}; this bench reads schema "
                        f"{', '.join(map(str, sorted(SUPPORTED_SCHEMAS)))}: upgrade mobileone-bench to read it")
    return Run(
        run_id=data["run_id"], created=data["created"], command=data.get("command", []),
        config=data.get("config", {}), env=data.get("env", {}), status=data.get("status", ""),
        finished=data.get("finished", ""), cells=[LatencyResult.from_dict(c) for c in data.get("cells", [])],
        schema=schema)


def find_run(ref: str, out_dir: Path) -> Path:
    """A run by path, by id in `out_dir`, or 'latest'."""
    p = Path(ref)
    if p.is_file():
        return p
    out_dir = Path(out_dir)
    if ref == "latest":
        runs = sorted(out_dir.glob("*.json"), key=lambda x: x.stat().st_mtime)
        if not runs:
            raise UserError(f"no runs in {out_dir}; run `bench run` first or pass --results PATH")
        return runs[-1]
    candidate = run_path(out_dir, ref)
    if candidate.is_file():
        return candidate
    raise UserError(f"run {ref!r} not found (looked for {p} and {candidate})")


def result_files(paths: list[str] | None, default_dir: Path) -> list[Path]:
    """Expand --results arguments (files or folders) to run files; none given means every run in default_dir."""
    found: list[Path] = []
    for ref in paths or [str(default_dir)]:
        p = Path(ref)
        if p.is_dir():
            found.extend(sorted(p.glob("*.json")))
        elif p.is_file():
            found.append(p)
        else:
            raise UserError(f"results path {ref} does not exist")
    if not found:
        where = ", ".join(paths) if paths else str(default_dir)
        raise UserError(f"no results found in {where}; run `bench run` first, or use --paper for the paper's data")
    return found


def to_frame(runs: list[Run]):
    """Tidy frame: one row per cell, with the run's id, time and host, the summary flattened."""
    import pandas as pd

    rows = []
    for run in runs:
        for c in run.cells:
            row = {
                "run_id": run.run_id, "created": run.created, "host": run.env.get("hostname", ""),
                "cpu_model": run.env.get("cpu", {}).get("model", ""), "model": c.model, "device": c.device,
                "runner": c.runner, "form": c.form, "precision": c.precision, "threads": c.threads,
                "status": c.status, "error": c.error, "source": c.source, "flags": ",".join(c.flags),
                "protocol": c.protocol.get("name", ""), "load_ms": c.load_ms,
                "first_inference_ms": c.first_inference_ms, "cell": cell_id(c.key),
            }
            for k, v in (c.summary or {}).items():
                row[k] = v
            if c.device_summary:
                row["device_latency_ms"] = c.device_summary.get("latency_ms")
            rows.append(row)
    return pd.DataFrame(rows)
