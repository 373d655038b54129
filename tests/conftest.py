"""Shared test helpers live beside this file (tests/import_probe.py); make them importable."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
