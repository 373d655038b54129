"""Core ML tests: conversion needs the coreml extra (any OS); predictions need macOS."""
import importlib.util
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
HAS_COREMLTOOLS = importlib.util.find_spec("coremltools") is not None


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES


@pytest.fixture
def coremltools_installed():
    if not HAS_COREMLTOOLS:
        pytest.skip("coremltools is not installed (pip install 'mobileone-bench[coreml]')")

