"""The layering DESIGN.md states, checked on the source: who may import whom, and no import cycles.

Every import counts, also those inside functions (a lazy import is still a dependency).
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = ("heirloom", "catalog", "policies", "tasks", "voice_models", "flows")
ALLOWED = {
    "heirloom": {"heirloom"},
    "catalog": {"heirloom", "catalog"},
    "policies": {"heirloom", "policies"},
    "tasks": {"heirloom", "catalog", "policies", "tasks"},
    "voice_models": {"heirloom", "catalog", "policies", "tasks", "voice_models"},
    "flows": set(OURS),
}
STAGES = ("ingest", "prepare", "align", "consent", "watermark", "exhibits", "generation", "provenance", "audio")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def _modules() -> dict[str, Path]:
    return {_module_name(p): p for top in OURS for p in (ROOT / top).rglob("*.py")}


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every import in the file, a ``from X import y`` naming X.y when that is a module."""
    modules = _modules()
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            subs = [f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in modules]
            out += [(node.lineno, s) for s in subs] or [(node.lineno, node.module)]
    return out


def _ours(name: str) -> bool:
    return name.split(".")[0] in OURS


def test_every_layer_imports_only_the_layers_under_it() -> None:
    wrong = []
    for name, path in _modules().items():
        layer = name.split(".")[0]
        for line, imported in _imports(path):
            if _ours(imported) and imported.split(".")[0] not in ALLOWED[layer]:
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {imported}")
    assert not wrong, "\n".join(wrong)


def test_prefect_is_imported_only_under_flows() -> None:
    wrong = [
        f"{path.relative_to(ROOT)}:{line}"
        for name, path in _modules().items()
        if not name.startswith("flows")
        for line, imported in _imports(path)
        if imported.split(".")[0] == "prefect"
    ]
    assert not wrong, "prefect imported outside flows/: " + ", ".join(wrong)


def test_stages_reach_each_other_only_through_their_packages() -> None:
    wrong = []
    for name, path in _modules().items():
        parts = name.split(".")
        here = parts[1] if parts[0] == "tasks" and len(parts) > 1 else None
        for line, imported in _imports(path):
            bits = imported.split(".")
            if bits[0] == "tasks" and len(bits) > 2 and bits[1] in STAGES and bits[1] != here:
                wrong.append(
                    f"{path.relative_to(ROOT)}:{line} imports {imported}; use `from tasks.{bits[1]} import ...`"
                )
    assert not wrong, "\n".join(wrong)


def test_every_stage_package_names_its_entry_points() -> None:
    for stage in STAGES:
        init = ROOT / "tasks" / stage / "__init__.py"
        tree = ast.parse(init.read_text())
        assert ast.get_docstring(tree), f"{init} has no docstring saying what the stage takes and gives"
        exported = [n for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "__all__"]
        assert exported, f"{init} has no __all__"


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), or a module importing itself."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
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
            if len(component) > 1 or v in graph.get(v, ()):
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_module_of_ours_is_part_of_an_import_cycle() -> None:
    modules = _modules()
    graph = {name: {m for _, m in _imports(path) if m in modules} for name, path in modules.items()}
    assert not _cycles(graph)


@pytest.mark.parametrize(
    ("graph", "expected"),
    [({"a": {"b"}, "b": {"a"}, "c": {"a"}}, [["a", "b"]]), ({"a": {"b"}, "b": set()}, []), ({"a": {"a"}}, [["a"]])],
)
def test_the_cycle_finder_finds_cycles(graph: dict[str, set[str]], expected: list[list[str]]) -> None:
    assert _cycles(graph) == expected
