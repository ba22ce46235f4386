"""No import cycle among ilyd's modules: a module can be read, tested and moved knowing
only what it imports.

The graph is built from the source with `ast`, so imports inside functions and under
`TYPE_CHECKING` count as much as those at the top: a cycle hidden in a function is still
two modules that cannot be understood apart. The one exemption is devorg's route
registry: `DevOrg._register_routes` imports every route module, and the route modules
name `DevOrg` in their types.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "ilyd"
REGISTRY = "ilyd.devorg.app"
REGISTRY_FUNCTION = "_register_routes"


def module_names() -> dict[str, Path]:
    """Every module of the package by its dotted name (a package by its own name)."""
    names = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            inside.update(id(sub) for sub in ast.walk(node))
    return inside


def _registry_nodes(tree: ast.AST) -> set[int]:
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == REGISTRY_FUNCTION:
            inside.update(id(sub) for sub in ast.walk(node))
    return inside


def _imported(node: ast.Import | ast.ImportFrom, module: str, is_package: bool,
              known: dict[str, Path]) -> Iterator[str]:
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = module if is_package else module.rpartition(".")[0]
        if node.level:
            parts = base.split(".")[: len(base.split(".")) - node.level + 1]
            base = ".".join(parts + ([node.module] if node.module else []))
        else:
            base = node.module or ""
        names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base
                 for a in node.names]
    for name in names:
        target = name
        while target and target not in known:
            target = target.rpartition(".")[0]
        if target and target != module:
            yield target


def import_graph() -> dict[str, dict[str, int]]:
    """module -> {module it imports: line of the first such import}."""
    known = module_names()
    graph: dict[str, dict[str, int]] = {name: {} for name in known}
    for module, path in known.items():
        tree = ast.parse(path.read_text("utf-8"))
        typing_only = _type_checking_nodes(tree)
        registry = _registry_nodes(tree) if module == REGISTRY else set()
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom) or id(node) in registry:
                continue
            for target in _imported(node, module, path.name == "__init__.py", known):
                if (id(node) in typing_only and target == REGISTRY
                        and module.startswith("ilyd.devorg.")):
                    continue  # a route module naming DevOrg in its types
                graph[module].setdefault(target, node.lineno)
    return graph


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(start: str) -> None:
        work = [(start, iter(graph[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, targets = work[-1]
            for target in targets:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(graph[target])))
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))

    for name in graph:
        if name not in index:
            visit(name)
    return found


def test_the_graph_sees_imports_inside_functions_and_under_type_checking():
    graph = import_graph()
    assert "ilyd.control.protocol" in graph["ilyd.control.verbs"]
    assert "ilyd.actors.context" in graph["ilyd.actors.org"]
    known = module_names()
    tree = ast.parse("def f():\n    from ilyd.control import protocol\n"
                     "if TYPE_CHECKING:\n    from ilyd.errors import ControlError\n")
    found = {t for node in ast.walk(tree) if isinstance(node, ast.Import | ast.ImportFrom)
             for t in _imported(node, "ilyd.x", False, known)}
    assert found == {"ilyd.control.protocol", "ilyd.errors"}


def test_a_cycle_is_found_and_named():
    graph = {"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}, "d": {"a": 1}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_no_module_of_ilyd_imports_itself_back_through_others():
    graph = import_graph()
    found = cycles(graph)
    report = []
    for component in found:
        members = set(component)
        edges = [f"{m} -> {t} (line {line})" for m in component
                 for t, line in sorted(graph[m].items()) if t in members]
        report.append("cycle: " + ", ".join(component) + "\n  " + "\n  ".join(edges))
    assert not found, "\n".join(report)
