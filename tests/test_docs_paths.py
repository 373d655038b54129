"""Docs and docstrings point at files that exist: every repository path named in README.md, docs/, results/
and the packages' source (a `bench/...py`, `docs/...md`, `tests/...py` and the like) is there."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PATH = re.compile(r"(?<![\w./-])((?:bench|devices|exporters|docs|tests|results|benchmarks|examples|\.github)"
                  r"/[\w./-]*\.(?:py|md|toml|yml|csv|json|sh|txt))")
# A template path in prose, the docs' worked example, and files that commands write (runs, baselines).
PLACEHOLDERS = ("NAME", "openvino", "<", "*", "results/runs/", "results/baselines/")


def named_paths() -> dict[str, list[str]]:
    sources = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "results" / "README.md",
               *sorted(p for pkg in ("bench", "devices", "exporters") for p in (ROOT / pkg).rglob("*.py"))]
    found: dict[str, list[str]] = {}
    for src in sources:
        for m in PATH.finditer(src.read_text()):
            path = m.group(1).rstrip(".")
            if not any(p in path for p in PLACEHOLDERS):
                found.setdefault(path, []).append(str(src.relative_to(ROOT)))
    return found


def test_named_paths_exist():
    missing = {p: where for p, where in named_paths().items() if not (ROOT / p).exists()}
    assert missing == {}


def test_the_scan_sees_paths():
    assert "docs/architecture.md" in named_paths()
