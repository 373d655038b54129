"""The gate package's import graph: project imports at module top, no command-line modules, no torch."""
import ast
import json
import subprocess
import sys

from bench.reference import REPO_ROOT

PACKAGE = REPO_ROOT / "bench" / "gate"


def test_imports_are_at_module_top():
    for path in sorted(PACKAGE.glob("*.py")):
        tree = ast.parse(path.read_text())
        top = {id(node) for node in tree.body}
        inner = [node.lineno for node in ast.walk(tree)
                 if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in top]
        assert inner == [], f"{path.name}: imports inside functions at lines {inner}"


def test_the_package_imports_no_command_line_module_and_no_torch():
    modules = ["bench.gate"] + [f"bench.gate.{p.stem}" for p in sorted(PACKAGE.glob("*.py")) if p.stem != "__init__"]
    code = ("import importlib, json, sys\n"
            f"for m in {modules!r}: importlib.import_module(m)\n"
            "print(json.dumps(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO_ROOT)
    loaded = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert not {m for m in loaded if m == "bench.cli" or m.startswith("bench.commands")}
    assert "torch" not in loaded
