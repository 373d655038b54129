"""Optional packages, declared once with the extra that installs them: found without importing them, and a
clear one-line error naming the extra where one is missing."""
from __future__ import annotations

import importlib
import importlib.util
from importlib import metadata
from types import ModuleType

from bench.core.errors import MissingBackendError


def installed(module: str) -> bool:
    """Whether `module` can be imported, without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package that is absent, or a broken __spec__
        return False


def missing(*modules: str) -> list[str]:
    return [m for m in modules if not installed(m)]


def install_hint(extra: str | None) -> str:
    return f"pip install 'mobileone-bench[{extra}]'" if extra else "pip install mobileone-bench"


def require(module: str, extra: str | None, what: str) -> None:
    """A clear error, naming the extra to install, when an optional package is absent."""
    if not installed(module):
        raise MissingBackendError(f"{what} needs the Python package '{module}'; install it with "
                                  f"{install_hint(extra)}")


def optional_import(module: str, extra: str | None, what: str) -> ModuleType:
    """Import an optional package, or raise MissingBackendError naming the extra that provides it."""
    require(module, extra, what)
    return importlib.import_module(module)


def versions_of(*distributions: str) -> dict[str, str]:
    out = {}
    for dist in distributions:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "absent"
    return out
