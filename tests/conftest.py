"""Shared test helpers live beside this file (tests/import_probe.py); make them importable.

Fixtures used across tests/bench, tests/devices and tests/exporters are defined here: the GPU fixture files
(trtexec's outputs and help, TensorRT inspector JSON, the stand-in trtexec), the coremltools skip, and the
real int8 TFLite exports made once per session (conversion takes about a minute a model)."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

FIXTURES = Path(__file__).parent / "fixtures"  # data: gpu/, coreml/, tflite/, results/

# ---- GPU / trtexec fixture files ----


@pytest.fixture
def fixtures() -> Path:
    """tests/fixtures/gpu. The importers' tests, which read tests/fixtures/coreml, define their own."""
    return FIXTURES / "gpu"


# ---- Core ML: conversion needs the coreml extra (any OS); predictions need macOS ----

HAS_COREMLTOOLS = importlib.util.find_spec("coremltools") is not None


@pytest.fixture
def coremltools_installed():
    if not HAS_COREMLTOOLS:
        pytest.skip("coremltools is not installed (pip install 'mobileone-bench[coreml]')")


# ---- TFLite: real int8 exports, made once per session ----

CONVERTER = ("litert_torch", "ai_edge_quantizer", "ai_edge_litert")


def converter_missing() -> str | None:
    missing = [m for m in CONVERTER if importlib.util.find_spec(m) is None]
    return f"needs the tflite extra ({', '.join(missing)} missing): pip install -e '.[tflite]'" if missing else None


@pytest.fixture(scope="session")
def needs_converter() -> None:
    reason = converter_missing()
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="session")
def tflite_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("tflite-cache")


@pytest.fixture(scope="session")
def exported(tflite_cache, needs_converter):
    """model name -> (artifact, cache_hit) of its first export in this session."""
    from bench.core.artifact import ExportRequest
    from exporters.tflite import export

    made: dict[str, tuple] = {}

    def get(name: str):
        if name not in made:
            made[name] = export(ExportRequest(name), tflite_cache)
        return made[name]

    return get
