"""Shared fixtures: real int8 exports, made once per session (conversion takes about a minute a model)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
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
