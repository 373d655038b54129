"""The gate's test helpers live beside this file (gate_helpers.py); make them importable by name."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
