"""Results on disk: one versioned JSON file per run, rewritten atomically after every cell; tidy frames."""
from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import re
import secrets
import socket
import tempfile
import time
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path

from bench.core.errors import UserError
from bench.core.io import atomic_write_text, now_iso
from bench.core.protocol import Protocol, settings_from_json, settings_to_json
from bench.core.result import (
    RUN_KIND,
    SCHEMA_VERSION,
    ComparabilityKey,
    InvalidField,
    LatencyResult,
    Summary,
    cell_id,
    json_safe,
)

RUN_STATUSES = ("running", "complete", "interrupted")
_RUN_FIELDS = ("schema", "kind", "run_id", "created", "finished", "status", "command", "config", "env", "cells")


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
    schema: int = SCHEMA_VERSION  # of the data held: a file of an older schema is migrated when read

    def __post_init__(self):
        """Checked like a cell: raises InvalidField (a UserError) naming the field."""
        if not isinstance(self.run_id, str) or not self.run_id.strip():
            raise InvalidField("run_id", "must be non-empty text", self.run_id)
        for name in ("created", "finished"):
            if not isinstance(getattr(self, name), str):
                raise InvalidField(name, "must be text (a time)", getattr(self, name))
        if self.status not in RUN_STATUSES:
            raise InvalidField("status", f"must be one of {', '.join(RUN_STATUSES)}", self.status)
        if not isinstance(self.command, (list, tuple)) or not all(isinstance(a, str) for a in self.command):
            raise InvalidField("command", "must be a list of text (the command line)", self.command)
        self.command = list(self.command)
        for name in ("config", "env"):
            if not isinstance(getattr(self, name), dict):
                raise InvalidField(name, "must be an object {...}", getattr(self, name))
        if not isinstance(self.cells, (list, tuple)):
            raise InvalidField("cells", "must be a list of cells", self.cells)
        self.cells = [c if isinstance(c, LatencyResult) else LatencyResult.from_dict(c) for c in self.cells]
        seen = set()
        for c in self.cells:
            _check_cell(c)
            if c.key in seen:
                raise UserError(f"cell {cell_id(c.key)} appears twice; a run holds one cell per "
                                "(model, device, runner, form)")
            seen.add(c.key)

    def to_dict(self) -> dict:
        """The run as strict JSON values (no Infinity or NaN), in the current schema."""
        config = dict(self.config)
        if isinstance(config.get("protocol_overrides"), dict):
            config["protocol_overrides"] = settings_to_json(config["protocol_overrides"])
        return {
            "schema": SCHEMA_VERSION, "kind": RUN_KIND, "run_id": self.run_id, "created": self.created,
            "finished": self.finished, "status": self.status, "command": list(self.command),
            "config": json_safe(config), "env": json_safe(self.env), "cells": [c.to_dict() for c in self.cells],
        }

    def cell(self, key: tuple) -> LatencyResult | None:
        return next((c for c in self.cells if c.key == key), None)

    def put(self, result: LatencyResult) -> None:
        """Add a cell, replacing an earlier one with the same key (a resumed run redoes failed cells)."""
        _check_cell(result)
        self.cells = [c for c in self.cells if c.key != result.key] + [result]


def _check_cell(c) -> None:
    if not isinstance(c, LatencyResult):
        raise TypeError(f"a run holds LatencyResult cells, not {type(c).__name__}")
    if c.env_key is None:
        raise UserError(f"cell {cell_id(c.key)}: env_key is missing; every stored cell carries its "
                        "comparability key (bench.core.result.ComparabilityKey.of)")


def dumps_run(run: Run) -> str:
    """The text of a results file: strict JSON (json.dumps(allow_nan=False)), one cell field per line."""
    return json.dumps(run.to_dict(), indent=1, allow_nan=False, default=str) + "\n"


class RunLocked(UserError):
    """Another live process is writing this run file."""


class RunWriter:
    """Owns one run file. Every `add` rewrites the whole file atomically, so an interrupt loses nothing
    already measured and never leaves a half-written file.

    While it is open it holds an exclusive lock (`flock` on `.<name>.lock` beside the file, naming its PID):
    a second writer of the same run (`bench run --resume` of a live run) is refused. A write that fails is
    retried; if the file still cannot be written, the run goes on in a rescue file (beside it, else under
    `rescue_dir`, else the temporary folder) and `moved_to` says where: nothing measured is ever lost."""

    WRITE_TRIES = 3
    RETRY_WAIT_S = 0.2

    def __init__(self, path: Path, run: Run, rescue_dir: Path | None = None):
        self.path = Path(path)
        self.run = run
        self.rescue_dir = rescue_dir
        self.first_path = self.path
        self.write_error: str | None = None  # why the run file could not be written, when it was moved
        self._lock = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UserError(f"cannot create results folder {self.path.parent}: {e.strerror}; "
                            "pass a writable --out DIR") from None
        if not os.access(self.path.parent, os.W_OK):
            raise UserError(f"results folder {self.path.parent} is not writable; pass a writable --out DIR")
        self._acquire()
        self.flush()

    @property
    def lock_path(self) -> Path:
        return self.first_path.with_name(f".{self.first_path.name}.lock")

    def _acquire(self) -> None:
        f = open(self.lock_path, "a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            f.close()
            raise RunLocked(f"run {self.first_path} is being written by {holder}; wait for it to finish (or stop "
                            "it) before resuming") from None
        f.seek(0)
        f.truncate()
        f.write(f"process {os.getpid()} on {socket.gethostname()} since {now_iso()}")
        f.flush()
        self._lock = f

    def release(self) -> None:
        if self._lock is not None:
            self.lock_path.unlink(missing_ok=True)
            self._lock.close()  # closing the file releases the flock
            self._lock = None

    def add(self, result: LatencyResult) -> None:
        self.run.put(result)
        self.flush()

    def finish(self, status: str = "complete") -> None:
        self.run.status = status
        self.run.finished = now_iso()
        try:
            self.flush()
        finally:
            self.release()

    @property
    def moved_to(self) -> Path | None:
        return self.path if self.path != self.first_path else None

    def _rescue_paths(self) -> list[Path]:
        name = f"{self.first_path.stem}.rescued.json"
        folders = [self.first_path.parent, *([self.rescue_dir / "rescued-runs"] if self.rescue_dir else []),
                   Path(tempfile.gettempdir()) / "mobileone-bench-rescued-runs"]
        return [folder / name for folder in folders]

    def flush(self) -> None:
        text = dumps_run(self.run)
        error: OSError | None = None
        for attempt in range(self.WRITE_TRIES):
            try:
                atomic_write_text(self.path, text)
                return
            except OSError as e:
                error = e
                time.sleep(self.RETRY_WAIT_S * (attempt + 1))
        for candidate in self._rescue_paths():
            if candidate == self.path:
                continue
            try:
                atomic_write_text(candidate, text)
            except OSError:
                continue
            self.write_error = f"{self.path}: {error.strerror or error}"
            self.path = candidate
            return
        raise OSError(f"cannot write the run to {self.path} ({error.strerror or error}) nor to any rescue file")


def run_path(out_dir: Path, run_id: str) -> Path:
    return Path(out_dir) / f"{run_id}.json"


# --- Reading: decode strictly, migrate older schemas, validate everything --------------------------------------

# Which runtime's version a schema-1 cell's env_key recorded, by device (bench.env.env_key when schema 1 was
# current): the migration rebuilds a missing key with it. Frozen: it describes old files, not today's devices.
SCHEMA1_RUNTIMES = {"cpu": "onnxruntime", "torch": "torch", "tflite": "ai-edge-litert", "coreml": "coremltools",
                    "trt": "tensorrt", "cuda": "torch"}
_PROTOCOL_DEFAULTS = {f.name: f.default for f in fields(Protocol) if f.default is not MISSING}
_SUMMARY_DEFAULTS = {f.name: None for f in fields(Summary) if f.default is None and f.name not in Summary.OPTIONAL}
_KEY_DEFAULTS = {f.name: f.default for f in fields(ComparabilityKey) if f.default is not MISSING}


def migrate_1_to_2(data: dict) -> dict:
    """Schema 1 -> 2 (results/README.md, "Format history"). Schema 1 was read leniently, so what its reader
    defaulted is filled in here; the result is then checked as strictly as a schema-2 file.

    - protocol: {} (none recorded) becomes null; an imported cell's {"name": "external", ...} gets its trim
      (null when not given); a measured cell's protocol gets the settings it lacks at their defaults (max_s,
      added during schema 1: no cap) and an infinite cap (Infinity) becomes null.
    - env_key: a cell without one gets it from the run's env, with the device -> runtime map of schema 1;
      one without the fields added in schema 2 (os_version, compute_units; an imported key's cpu_model,
      runtime_version, gpu) gets them empty.
    - summary: figures it lacks are null; Infinity/NaN in free-form data (env, config, runner_info) is null,
      and protocol_overrides in config write an infinite cap as null.
    Values that are not of the expected shape are left as they are, for the checks to name them."""
    out = dict(data)
    out["schema"] = 2
    for key, default in (("command", []), ("config", {}), ("env", {}), ("finished", ""), ("status", "interrupted"),
                         ("cells", [])):
        out.setdefault(key, default)
    env = out["env"]
    if isinstance(env, dict):
        out["env"] = env = json_safe(env)
    if isinstance(out["config"], dict):
        config = dict(out["config"])
        if isinstance(config.get("protocol_overrides"), dict):
            config["protocol_overrides"] = settings_to_json(config["protocol_overrides"])
        out["config"] = json_safe(config)
    if isinstance(out["cells"], list):
        out["cells"] = [_migrate_cell_1(c, env) if isinstance(c, dict) else c for c in out["cells"]]
    return out


def _migrate_cell_1(cell: dict, env) -> dict:
    c = dict(cell)
    for f in fields(LatencyResult):  # the schema-1 reader took a missing field's default
        if f.name not in c:
            if f.default is not MISSING:
                c[f.name] = f.default
            elif f.default_factory is not MISSING:
                c[f.name] = f.default_factory()
    p = c.get("protocol")
    if p == {}:
        c["protocol"] = None
    elif isinstance(p, dict) and p.get("name") == "external":
        c["protocol"] = {"trim": None, **p}
    elif isinstance(p, dict):
        c["protocol"] = settings_to_json({**_PROTOCOL_DEFAULTS, **p})
    for name in ("summary", "device_summary"):
        if isinstance(c.get(name), dict):
            c[name] = {**_SUMMARY_DEFAULTS, **c[name]}
    key = c.get("env_key")
    if not key:
        try:
            c["env_key"] = ComparabilityKey.of(env, c.get("device"), c.get("runner"), c.get("threads"),
                                               c.get("precision"), SCHEMA1_RUNTIMES.get(c.get("device"))).to_dict()
        except (InvalidField, TypeError):  # a cell too broken to key: the checks name what is wrong
            c["env_key"] = None
    elif isinstance(key, dict):
        c["env_key"] = {**_KEY_DEFAULTS, **key}
    if isinstance(c.get("rejected_rounds"), list):
        c["rejected_rounds"] = [{"contention": None, **r} if isinstance(r, dict) else r
                                for r in c["rejected_rounds"]]
    return c


# One function per old schema, turning a file of that schema into the next one's; applied in order on load.
MIGRATIONS = {1: migrate_1_to_2}
# History of the format (see results/README.md). A reader accepts exactly these versions.
SUPPORTED_SCHEMAS = {*MIGRATIONS, SCHEMA_VERSION}


def run_from_dict(data: dict) -> Run:
    """A Run from a results file's object in the current schema, every field checked (strict: all present,
    nothing unknown). Raises a UserError naming the field (and the cell)."""
    for key in data:
        if key not in _RUN_FIELDS:
            raise InvalidField(str(key), "is not a field of a run")
    for key in _RUN_FIELDS:
        if key not in data:
            raise InvalidField(key, "is missing")
    cells = data["cells"]
    if not isinstance(cells, list):
        raise InvalidField("cells", "must be a list of cells", cells)
    for i, c in enumerate(cells):
        if not isinstance(c, dict):
            raise InvalidField(f"cells[{i}]", "must be an object {...} (a cell)", c)
    config = data["config"]
    if isinstance(config, dict) and isinstance(config.get("protocol_overrides"), dict):
        config = {**config, "protocol_overrides": settings_from_json(config["protocol_overrides"])}
    return Run(run_id=data["run_id"], created=data["created"], command=data["command"], config=config,
               env=data["env"], status=data["status"], finished=data["finished"],
               cells=[LatencyResult.from_dict(c, strict=True) for c in cells])


_BARE_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|(-?Infinity|NaN)')
_KEY_BEFORE = re.compile(r'"((?:[^"\\]|\\.)*)"\s*:\s*$')


def _where_token(text: str) -> str:
    """The first Infinity/NaN token outside a string, with its key and line: 'latency_ms: Infinity (line 9)'."""
    for m in _BARE_TOKEN.finditer(text):
        if m.group(1):
            key = _KEY_BEFORE.search(text, max(0, m.start() - 200), m.start())
            line = text.count("\n", 0, m.start()) + 1
            return f"{key.group(1) + ': ' if key else ''}{m.group(1)} (line {line})"
    return "Infinity or NaN"


def load_run(path: Path) -> Run:
    """Read a results file: strict UTF-8 and JSON, an older schema migrated, every field checked. Any
    problem is a UserError of one line naming the file (and the cell and field)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"results file {path} not found") from None
    except OSError as e:
        raise UserError(f"cannot read results file {path}: {e.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise UserError(f"results file {path} is not UTF-8 text (byte 0x{raw[e.start]:02x} on line {line}); "
                        "it is damaged or not a results file") from None
    tokens: list[str] = []  # Infinity, -Infinity, NaN: Python's json reads them, strict JSON has none
    try:
        data = json.loads(text, parse_constant=lambda t: tokens.append(t) or float(t))
    except json.JSONDecodeError as e:
        raise UserError(f"results file {path} is not valid JSON ({e.msg} at line {e.lineno})") from None
    except RecursionError:
        raise UserError(f"results file {path} is nested too deeply to be a results file") from None
    if not isinstance(data, dict) or data.get("kind") != RUN_KIND:
        raise UserError(f"{path} is not a mobileone-bench results file (no kind {RUN_KIND!r})")
    schema = data.get("schema")
    if not isinstance(schema, int) or isinstance(schema, bool) or schema not in SUPPORTED_SCHEMAS:
        raise UserError(f"results file {path} has schema {schema!r}; this bench reads schema "
                        f"{', '.join(map(str, sorted(SUPPORTED_SCHEMAS)))}: upgrade mobileone-bench to read it")
    if tokens and schema >= 2:
        raise UserError(f"results file {path}: {_where_token(text)} is not JSON; a schema-{schema} file is strict "
                        "JSON (an unlimited protocol setting is written as null)")
    try:
        for version in range(schema, SCHEMA_VERSION):
            data = MIGRATIONS[version](data)
        return run_from_dict(data)
    except UserError as e:
        raise UserError(f"results file {path}: {e}") from None


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


def cell_env(run: Run, cell: LatencyResult) -> dict:
    """The environment of the host that measured `cell`: a cluster run records each host's under
    env["hosts"] (keyed by the host label in runner_info["host"]); a local run has one, the run's."""
    hosts = run.env.get("hosts")
    host = cell.runner_info.get("host")
    if isinstance(hosts, dict) and isinstance(hosts.get(host), dict):
        return hosts[host]
    return run.env


def to_frame(runs: list[Run]):
    """Tidy frame: one row per cell, with the run's id, time and host, the summary flattened."""
    import pandas as pd

    rows = []
    for run in runs:
        for c in run.cells:
            env = cell_env(run, c)
            row = {
                "run_id": run.run_id, "created": run.created,
                "host": c.runner_info.get("host") or env.get("hostname", ""),
                "cpu_model": env.get("cpu", {}).get("model", ""), "model": c.model, "device": c.device,
                "runner": c.runner, "form": c.form, "precision": c.precision, "threads": c.threads,
                "status": c.status, "error": c.error, "source": c.source, "flags": ",".join(c.flags),
                "protocol": c.protocol.name if c.protocol else "", "load_ms": c.load_ms,
                "first_inference_ms": c.first_inference_ms, "cell": cell_id(c.key),
            }
            if c.summary:
                row.update(c.summary.to_dict())
            if c.device_summary:
                row["device_latency_ms"] = c.device_summary.latency_ms
            rows.append(row)
    return pd.DataFrame(rows)
