"""The study's manifest (study.json under --out): its devices and protocol, and per stage its suite, run file,
status and wall time. Written atomically after every change, so an interrupted study resumes from it."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from bench.core.errors import UserError
from bench.core.io import atomic_write_json, now_iso, read_json

MANIFEST = "study.json"
SCHEMA = 1
PENDING, RUNNING, COMPLETE, SKIPPED, INTERRUPTED = "pending", "running", "complete", "skipped", "interrupted"


@dataclass(frozen=True)
class StageRecord:
    name: str
    title: str
    status: str = PENDING
    config: dict | None = None  # SuiteConfig.to_dict(); None for a skipped stage
    run: str | None = None  # the run file, relative to the study folder
    wall_s: float = 0.0  # summed over resumes
    skipped: str = ""


@dataclass(frozen=True)
class Manifest:
    devices: tuple[str, ...]
    protocol: str
    cores: int
    base: dict | None = None  # the SuiteConfig the stages were planned from (to plan again on --resume)
    models: str | None = None  # --models: every stage restricted to these
    created: str = field(default_factory=now_iso)
    stages: tuple[StageRecord, ...] = ()
    schema: int = SCHEMA

    def stage(self, name: str) -> StageRecord | None:
        return next((s for s in self.stages if s.name == name), None)

    def with_stage(self, record: StageRecord) -> "Manifest":
        stages = tuple(record if s.name == record.name else s for s in self.stages)
        if record.name not in {s.name for s in self.stages}:
            stages += (record,)
        return replace(self, stages=stages)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["devices"] = list(self.devices)
        d["stages"] = [asdict(s) for s in self.stages]
        return d


def manifest_path(out: Path) -> Path:
    return Path(out) / MANIFEST


def save(out: Path, manifest: Manifest) -> None:
    atomic_write_json(manifest_path(out), manifest.to_dict())


def load(out: Path) -> Manifest:
    path = manifest_path(out)
    if not path.is_file():
        raise UserError(f"no study in {out} ({MANIFEST} not found); run `bench study --out {out}` without --resume")
    try:
        d = read_json(path)
        if not isinstance(d, dict) or d.get("schema") != SCHEMA:
            raise ValueError(f"schema {d.get('schema') if isinstance(d, dict) else None!r}")
        stages = tuple(StageRecord(**s) for s in d["stages"])
        return Manifest(devices=tuple(d["devices"]), protocol=str(d["protocol"]), cores=int(d["cores"]),
                        base=d.get("base"), models=d.get("models"), created=str(d["created"]), stages=stages)
    except (ValueError, KeyError, TypeError) as e:
        raise UserError(f"{path} is not a study manifest ({e}); pass another --out, or delete the file to start "
                        "over") from None
