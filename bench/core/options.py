"""Typed options: true/false values given as text or booleans, and one declared option of a device."""
from __future__ import annotations

from typing import Any

from bench.core.errors import UserError


def as_bool(key: str, value, what: str = "option") -> bool:
    """A true/false option given as a bool or as text (true/false, yes/no, on/off, 1/0)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise UserError(f"{what} {key}={value!r} is not true/false; use {key}=true or {key}=false")


def option_flag(extra: dict, name: str, default: bool) -> bool:
    """A true/false runner option (`copies`, `cuda_graph`, ...) as given on the command line or in code."""
    return as_bool(name, extra.get(name, default))


def _type_name(t) -> str:
    return getattr(t, "__name__", str(t))


def check_value(key: str, value: Any, typ: type, allowed: tuple | None) -> Any:
    if typ is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if typ is int and isinstance(value, bool) or not isinstance(value, typ):
        raise UserError(f"{key} = {value!r} is not a {_type_name(typ)}"
                        + (f"; allowed: {', '.join(map(str, allowed))}" if allowed else ""))
    if allowed is not None and value not in allowed:
        raise UserError(f"{key} = {value!r} is not allowed; use one of {', '.join(map(str, allowed))}")
    return value


def parse_shape(key: str, value) -> tuple[int, ...]:
    """A tensor shape given as "1x3x224x224" (or a list of positive integers)."""
    parts = value if isinstance(value, (list, tuple)) else str(value).lower().replace(",", "x").split("x")
    try:
        shape = tuple(int(str(p).strip()) for p in parts)
    except ValueError:
        shape = ()
    if len(shape) != 4 or any(d <= 0 for d in shape):
        raise UserError(f"{key} = {value!r} is not an NCHW shape of positive integers; write it like 1x3x224x224")
    return shape


def non_negative(key: str, value: int) -> int:
    if value < 0:
        raise UserError(f"{key} = {value!r} is not a device index; use 0 or more")
    return value
