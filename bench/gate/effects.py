"""The minimum effect of each model: `--min-effect` and the `--effects FILE` that `bench calibrate` writes."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from bench.core.errors import UserError
from bench.gate.verdict import DEFAULT_MIN_EFFECT

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
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError:
        raise UserError(f"--effects {path} not found; write one with `bench calibrate --out {path}`") from None
    except json.JSONDecodeError as e:
        raise UserError(f"--effects {path} is not valid JSON ({e.msg} at line {e.lineno}); "
                        "write one with `bench calibrate`") from None
    table = data.get("effects", data) if isinstance(data, dict) else None
    if not isinstance(table, dict) or not table:
        raise UserError(f"--effects {path} has no {{model: fraction}} table; write one with `bench calibrate`")
    effects = {str(m): check_effect(v, f"{path}: {m}") for m, v in table.items()}
    calibrated = "effects" in data  # `bench calibrate`'s output says where it was measured
    return Effects(base, effects, str(p), data.get("cpu_model") if calibrated else None,
                   data.get("threads") if calibrated else None)
