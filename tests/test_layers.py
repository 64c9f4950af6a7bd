"""The package's floor plan, held against the code: each layer imports only the layers below it, and no module
imports itself back through others (imports inside functions and under TYPE_CHECKING count too)."""

from __future__ import annotations

import ast
from pathlib import Path

from .conftest import ROOT

PACKAGE = "mlflow_ws_admin"
#: Bottom to top; a layer may import itself and every layer before it (docs/architecture.md draws the same).
LAYERS = ("common", "db", "stores", "findings", "engine", "auth", "report", "usecases", "cli")


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted((ROOT / PACKAGE).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that ``path`` imports, anywhere in it."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith(PACKAGE))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(PACKAGE) and not node.level:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                out.add(sub if sub in modules else node.module)
    return out


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, modules) - {name} for name, path in modules.items()}


def test_every_module_sits_in_a_layer() -> None:
    loose = [m for m in _modules() if _layer(m) is None and m not in (PACKAGE, f"{PACKAGE}.__main__")]
    assert loose == []


def test_layers_import_only_downwards() -> None:
    upward = []
    for module, imported in _graph().items():
        here = _layer(module)
        if here is None:
            continue
        allowed = set(LAYERS[: LAYERS.index(here) + 1])
        # The package root holds only ``__version__``: every layer may read it.
        upward += [f"{module} -> {other}" for other in sorted(imported - {PACKAGE}) if _layer(other) not in allowed]
    assert upward == []


def test_no_import_circles() -> None:
    graph = _graph()
    # Tarjan's strongly connected components: any component of two or more modules is a circle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in graph:
                continue
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    assert circles == []


def test_each_package_says_what_it_owns_and_may_import() -> None:
    for layer in LAYERS:
        doc = ast.get_docstring(ast.parse((ROOT / PACKAGE / layer / "__init__.py").read_text())) or ""
        assert "import" in doc, f"{layer}/__init__.py must say what the layer may import"
