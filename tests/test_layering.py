"""The layering of docs/architecture.md, checked by walking every import (top-level and in functions) with
ast: each module imports only its own layer or the ones below, the plugins (exporters/, devices/) only the
core, the environment, the zoo and the tool wrappers, never each other, and no import circle anywhere."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bench", "devices", "exporters")

# Lowest first. A module belongs to the layer of the longest prefix that names it.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("core", ("bench.core",)),
    ("base", ("bench.env", "bench.zoo", "bench.stats", "bench.reference", "bench.tools", "bench.console",
              "bench.measure", "bench.store")),
    ("plugins", ("exporters", "devices")),
    ("orchestration", ("bench.config", "bench.pipeline", "bench.gate", "bench.analysis", "bench.importers",
                       "bench.progress", "bench.compare", "bench.ab", "bench.study", "bench.cluster")),
    ("interface", ("bench.cli", "bench.commands")),
)
# What the plugins may import from below their own layer.
PLUGIN_ALLOWED = ("bench.core", "bench.env", "bench.zoo", "bench.tools")
PACKAGE_ROOTS = ("bench",)  # package __init__ files that import nothing of the project's own


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules(root: Path) -> dict[str, Path]:
    return {module_name(p, root): p for pkg in PACKAGES for p in (root / pkg).rglob("*.py")}


def imports_of(path: Path, name: str, modules: dict[str, Path]) -> set[str]:
    """The project modules `path` imports, anywhere in it; `from pkg import sub` counts as importing pkg.sub."""
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in modules:
                t = t.rpartition(".")[0]
            if t and t.split(".")[0] in PACKAGES and t != name:
                found.add(t)
    return found


def layer_of(module: str) -> int | None:
    best = None
    for rank, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + "."):
                if best is None or len(prefix) > best[1]:
                    best = (rank, len(prefix))
    return None if best is None else best[0]


def violations(root: Path = ROOT) -> list[str]:
    modules = project_modules(root)
    graph = {m: imports_of(p, m, modules) for m, p in modules.items()}
    problems = []
    for mod, targets in sorted(graph.items()):
        if mod in PACKAGE_ROOTS or mod in PACKAGES:
            if targets:
                problems.append(f"{mod}: a package root imports {sorted(targets)}")
            continue
        rank = layer_of(mod)
        if rank is None:
            problems.append(f"{mod}: in no layer (add it to LAYERS and docs/architecture.md)")
            continue
        for t in sorted(targets):
            if t in PACKAGES or t in PACKAGE_ROOTS:
                continue
            t_rank = layer_of(t)
            if t_rank is None:
                continue  # reported on its own line
            if t_rank > rank:
                problems.append(f"{mod} ({LAYERS[rank][0]}) imports {t} ({LAYERS[t_rank][0]}): a layer above")
            elif LAYERS[rank][0] == "plugins":
                top = t.split(".")[0]
                if top in ("exporters", "devices") and top != mod.split(".")[0]:
                    problems.append(f"{mod} imports {t}: exporters and devices never import each other")
                elif t_rank < rank and not any(t == a or t.startswith(a + ".") for a in PLUGIN_ALLOWED):
                    problems.append(f"{mod} imports {t}: plugins stand only on {', '.join(PLUGIN_ALLOWED)}")
    problems += [f"import circle: {' -> '.join(c)}" for c in circles(graph)]
    return problems


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One representative circle per strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component) + [sorted(component)[0]])

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_project_follows_its_layers():
    assert violations() == []


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    for pkg in PACKAGES:
        (tmp_path / pkg).mkdir(exist_ok=True)
        (tmp_path / pkg / "__init__.py").touch()
    return tmp_path


def test_the_checker_catches_an_upward_import_inside_a_function(tmp_path):
    root = _tree(tmp_path, {
        "bench/core/__init__.py": "",
        "bench/core/errors.py": "def f():\n    from bench.pipeline import run_suite\n",
        "bench/pipeline.py": "from bench.core import errors\n",
    })
    found = violations(root)
    assert any("bench.core.errors (core) imports bench.pipeline (orchestration)" in v for v in found)
    assert any(v.startswith("import circle: bench.core.errors -> bench.pipeline") for v in found)


def test_the_checker_keeps_exporters_and_devices_apart(tmp_path):
    root = _tree(tmp_path, {
        "exporters/onnx.py": "from devices.ort_cpu import Runner\n",
        "devices/ort_cpu.py": "from bench.measure import measure\nclass Runner: pass\n",
        "bench/measure.py": "",
    })
    found = violations(root)
    assert "exporters.onnx imports devices.ort_cpu: exporters and devices never import each other" in found
    assert any(v.startswith("devices.ort_cpu imports bench.measure: plugins stand only on") for v in found)
