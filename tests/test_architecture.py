"""The layout's rules, read from the code: imports go one way (no module
imports a layer above its own, no cycles), only the session builds
simulations and only the engine factory builds engines (so every front end
goes through Session.open_run), protocol code never imports torch and model
code never imports the editor protocols, and production code never imports
the test support package."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "neuraldbg"

# Lower layers first; a package may import its own modules and any lower layer's.
LAYERS: list[set[str]] = [
    {"<root>"},  # neuraldbg/__init__.py, config.py
    {"source"},
    {"trace"},
    {"tracer"},
    {"backends"},
    {"simulation", "holes", "inverse", "hosting", "testing"},
    {"session"},
    {"eval", "dap"},
    {"server"},
    {"cli"},
    {"__main__"},
]
RANK = {pkg: rank for rank, layer in enumerate(LAYERS) for pkg in layer}
PROTOCOL_PACKAGES = {"server", "dap", "session", "cli", "eval"}
MODEL_PACKAGES = {"backends", "hosting", "simulation", "trace", "testing"}


def _module(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _package(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1 or (len(parts) == 2 and parts[1] == "config"):
        return "<root>"
    return parts[1]


MODULES = {_module(p): p for p in sorted(PACKAGE.rglob("*.py"))}
TREES = {m: ast.parse(p.read_text(encoding="utf-8"), str(p)) for m, p in MODULES.items()}


def imports(module: str) -> set[str]:
    """Every module name ``module`` imports, at any depth (function-level imports count too)."""
    out: set[str] = set()
    for node in ast.walk(TREES[module]):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            submodules = {f"{node.module}.{a.name}" for a in node.names} & MODULES.keys()
            # "from pkg import module" imports the module; anything else is read from node.module
            out.update(submodules)
            if len(submodules) < len(node.names):
                out.add(node.module)
    return out


def internal_edges() -> dict[str, set[str]]:
    return {m: {n for n in imports(m) if n in MODULES and n != m} for m in MODULES}


def test_every_package_has_a_layer() -> None:
    assert {_package(m) for m in MODULES} <= set(RANK), {_package(m) for m in MODULES} - set(RANK)


def test_no_module_imports_a_layer_above_its_own() -> None:
    upward = [f"{m} imports {n}" for m, targets in internal_edges().items() for n in sorted(targets)
              if _package(n) != _package(m) and RANK[_package(n)] >= RANK[_package(m)]]
    assert upward == []


def test_no_import_cycles() -> None:
    edges = internal_edges()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
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
                cycles.append(sorted(component))

    for v in edges:
        if v not in index:
            visit(v)
    assert cycles == []


def _calls(module: str, names: set[str]) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(TREES[module]):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None
            if name in names:
                found.add(name)
    return found


@pytest.mark.parametrize(("constructor", "owner"), [
    ("Simulation", "neuraldbg.session.session"),
    ("ExecEngine", "neuraldbg.simulation.factory"),
    ("ModelEngine", "neuraldbg.simulation.factory"),
])
def test_only_the_owner_constructs(constructor: str, owner: str) -> None:
    builders = sorted(m for m in MODULES if constructor in _calls(m, {constructor}))
    assert builders == [owner]


def test_engine_factories_are_made_by_the_session_only() -> None:
    assert sorted(m for m in MODULES if _calls(m, {"EngineFactory"})) == ["neuraldbg.session.session"]


def test_protocol_code_never_imports_torch_and_model_code_never_imports_editor_protocols() -> None:
    heavy = {"torch", "transformers", "accelerate", "bitsandbytes"}
    editor = {"pygls", "lsprotocol"}
    wrong = []
    for m in MODULES:
        roots = {n.split(".")[0] for n in imports(m)}
        if _package(m) in PROTOCOL_PACKAGES and roots & heavy:
            wrong.append(f"{m} imports {sorted(roots & heavy)}")
        if _package(m) in MODEL_PACKAGES and roots & editor:
            wrong.append(f"{m} imports {sorted(roots & editor)}")
    assert wrong == []


def test_production_code_never_imports_the_test_support_package() -> None:
    users = sorted(m for m, targets in internal_edges().items()
                   if _package(m) != "testing" and any(_package(n) == "testing" for n in targets))
    assert users == []


def test_the_package_root_holds_only_the_entry_points_and_the_settings() -> None:
    loose = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert loose == ["__init__.py", "__main__.py", "config.py"]
