#!/usr/bin/env bash
# The GPU check in one call, from a checkout without `pip install -e .`: bash benchmarks/gpu_check.sh OUT [--wheels DIR] [--dry-run]
# (benchmarks/gpu_check.py keeps its own 8-minute budget; the outer timeout only guards against a hung driver call.)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
exec timeout --signal=TERM 540 "${PYTHON:-python3}" "$root/benchmarks/gpu_check.py" "$@"
