"""The minimum effect of each model: `--min-effect` and the `--effects FILE` that `bench calibrate` writes."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from bench.core.errors import UserError
from bench.gate.verdict import DEFAULT_MIN_EFFECT
from bench.importers import MAX_JSON_DEPTH, clip, json_depth

EFFECTS_KIND = "mobileone-bench/effects"


@dataclass(frozen=True)
class Effects:
    """The minimum effect of each model: a per-model table (from `bench calibrate`) over a default."""

    default: float = DEFAULT_MIN_EFFECT
    per_model: dict[str, float] = field(default_factory=dict)
    source: str = ""
    cpu_model: str | None = None  # where `bench calibrate` measured the table (None: not a calibration)
    threads: int | None = None

    def of(self, model: str) -> float:
        return self.per_model.get(model, self.default)

    def elsewhere_note(self, cpu_model: str, threads: int) -> str | None:
        """A note when the table was calibrated on another CPU or thread count than it is used at."""
        if self.cpu_model in (None, cpu_model) and self.threads in (None, threads):
            return None
        return (f"minimum effects calibrated on {self.cpu_model} at {self.threads} thread(s), used here on "
                f"{cpu_model} at {threads}")


def check_effect(value: float, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise UserError(f"{what} = {value!r} must be a fraction between 0 and 1 (0.05 = 5%)")
    return float(value)


def load_effects(path: str | None, default: float | None) -> Effects:
    """`--effects FILE`: the JSON `bench calibrate` writes ({"effects": {model: fraction}}), or a plain
    {model: fraction} object. `--min-effect` sets the default for models the file does not name."""
    base = check_effect(default, "--min-effect") if default is not None else DEFAULT_MIN_EFFECT
    if not path:
        return Effects(base)
    p = Path(path)
    fix = f"write one with `bench calibrate --out {path}`"
    if p.is_dir():
        raise UserError(f"--effects {path} is a folder; pass the JSON file in it that `bench calibrate` wrote")
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise UserError(f"--effects {path} not found; {fix}") from None
    except OSError as e:
        raise UserError(f"--effects {path} cannot be read ({e.strerror or e}); check the path and its "
                        "permissions") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UserError(f"--effects {path} is not UTF-8 text (a binary file?); pass the JSON file "
                        f"`bench calibrate` wrote, or {fix}") from None
    depth = json_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise UserError(f"--effects {path} is nested {depth}+ levels deep (at most {MAX_JSON_DEPTH}); an effects "
                        f"file is {{\"effects\": {{model: fraction}}}}: {fix}")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(f"--effects {path} is not valid JSON ({e.msg} at line {e.lineno}); {fix}") from None
    except RecursionError:
        raise UserError(f"--effects {path} is nested too deeply to read; {fix}") from None
    table = data.get("effects", data) if isinstance(data, dict) else None
    if not isinstance(table, dict) or not table:
        raise UserError(f"--effects {path} has no {{model: fraction}} table; {fix}")
    effects = {str(m): check_effect(v, f"--effects {path}: {m}") for m, v in table.items()}
    calibrated = "effects" in data  # `bench calibrate`'s output says where it was measured
    cpu_model = data.get("cpu_model") if calibrated else None
    threads = data.get("threads") if calibrated else None
    if cpu_model is not None and not isinstance(cpu_model, str):
        raise UserError(f"--effects {path}: cpu_model {clip(repr(cpu_model))} is not a string; {fix}")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise UserError(f"--effects {path}: threads {clip(repr(threads))} is not a whole number >= 1; {fix}")
    return Effects(base, effects, str(p), cpu_model, threads)
