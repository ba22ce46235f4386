"""devorg's modules import one another without a cycle: what two modules both need lives
in a leaf module, or is handed in, rather than imported back. Every import counts,
those inside functions and under `if TYPE_CHECKING:` too. The one exemption is the route
registry: `DevOrg._register_routes` imports the route modules, and a route module (one
with a `register(router, dev)`) names `DevOrg` for its type hints only."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import ilyd

PACKAGE = Path(ilyd.__file__).parent
APP = "ilyd.devorg.app"
REGISTRY = "_register_routes"


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return ((isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
            or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"))


def _imports(tree: ast.AST, in_registry: bool = False, type_checking: bool = False
             ) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool, bool]]:
    """Every import statement with whether it sits in the route registry function and
    whether it sits under `if TYPE_CHECKING:`."""
    for child in ast.iter_child_nodes(tree):
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child, in_registry, type_checking
        registry = in_registry or (isinstance(child, ast.FunctionDef)
                                   and child.name == REGISTRY)
        checking = type_checking or (isinstance(child, ast.If) and _is_type_checking(child))
        yield from _imports(child, registry, checking)


def _targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool,
             modules: dict[str, Path]) -> list[tuple[str, list[str]]]:
    """(imported module, names taken from it) for one import statement."""
    if isinstance(node, ast.Import):
        return [(alias.name, []) for alias in node.names]
    base = node.module or ""
    if node.level:
        package = module.split(".") if is_package else module.split(".")[:-1]
        package = package[:len(package) - node.level + 1]
        base = ".".join(package + ([node.module] if node.module else []))
    out = []
    for alias in node.names:
        sub = f"{base}.{alias.name}"
        out.append((sub, []) if sub in modules else (base, [alias.name]))
    return out


def _owner(name: str, modules: dict[str, Path]) -> str | None:
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _graph() -> dict[str, dict[str, int]]:
    """module -> {imported module: line}, ilyd's own modules only, registry discounted."""
    modules = _modules()
    graph: dict[str, dict[str, int]] = {m: {} for m in modules}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        routes = any(isinstance(node, ast.FunctionDef) and node.name == "register"
                     for node in tree.body)
        for node, in_registry, type_checking in _imports(tree):
            for target, names in _targets(node, module, path.name == "__init__.py", modules):
                owner = _owner(target, modules)
                if owner is None or owner == module:
                    continue
                if module == APP and in_registry:
                    continue
                if owner == APP and routes and type_checking and names == ["DevOrg"]:
                    continue
                graph[module].setdefault(owner, node.lineno)
    return graph


def _cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
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
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def _describe(graph: dict[str, dict[str, int]], cycle: list[str]) -> str:
    lines = []
    for module in cycle:
        edges = ", ".join(f"{t} (line {n})" for t, n in graph[module].items() if t in cycle)
        lines.append(f"{module} imports {edges}")
    return "\n".join(lines)


def test_no_devorg_module_imports_back_a_module_that_imports_it() -> None:
    graph = _graph()
    knots = [c for c in _cycles(graph) if any(m.startswith("ilyd.devorg") for m in c)]
    assert not knots, "import cycles:\n\n" + "\n\n".join(_describe(graph, c) for c in knots)
