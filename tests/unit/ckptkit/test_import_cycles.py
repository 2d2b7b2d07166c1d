"""No two ckptkit modules import each other, directly or around a circle.

Every import statement counts: at module level, inside functions and under
``if TYPE_CHECKING:`` (a circle of type-only imports is still a circle for a
reader). Importing ``ckptkit.a.b`` from outside the package ``ckptkit.a`` also
runs ``ckptkit/a/__init__.py``, so that edge is counted too; a package importing its
own submodules is not a circle. The root facade ``ckptkit/__init__.py`` only
re-exports and is left out.
"""

from __future__ import annotations

import ast
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parents[3] / "src" / "ckptkit"


def _module_names() -> dict[str, Path]:
    names: dict[str, Path] = {}
    for path in _PACKAGE.rglob("*.py"):
        parts = ["ckptkit", *path.relative_to(_PACKAGE).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _targets(node: ast.AST, modules: dict[str, Path]) -> list[str]:
    """The ckptkit modules an import statement names (most specific first)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name in modules]
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        named = [f"{node.module}.{alias.name}" for alias in node.names]
        return [name for name in [*named, node.module] if name in modules]
    return []


def _import_graph() -> dict[str, set[str]]:
    modules = _module_names()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            for target in _targets(node, modules):
                # Packages that `target` lies in run first; the importer's own
                # package (or the importer itself) is already running.
                parts = target.split(".")
                for cut in range(2, len(parts) + 1):
                    module = ".".join(parts[:cut])
                    if not (name + ".").startswith(module + "."):
                        graph[name].add(module)
    graph.pop("ckptkit")
    for edges in graph.values():
        edges.discard("ckptkit")
    return graph


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return None


def test_ckptkit_modules_import_each_other_in_no_circle() -> None:
    cycle = _find_cycle(_import_graph())
    assert cycle is None, " -> ".join(cycle or [])


def test_cycle_finder_reports_a_circle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert _find_cycle(graph) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": set()}) is None


def test_graph_sees_the_layers() -> None:
    graph = _import_graph()
    assert "ckptkit._file.writer" in graph["ckptkit._api"]
    assert "ckptkit.migrations" in graph["ckptkit._api"]  # via its __init__
    assert "ckptkit.migrations" not in graph["ckptkit.migrations._disk"]
