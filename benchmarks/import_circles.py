"""Print the import circles (strongly connected components) inside engine/ and archivist_tui/.

Reads every module's syntax tree, not the running program, so it counts every import: those at
module level, those inside functions (lazy imports, which ``lint-imports`` does not see by
default) and those under ``if TYPE_CHECKING:``. A circle made of lazy imports still couples the
two modules both ways, so it counts the same.

``from pkg import name`` is an edge to ``pkg.name`` when that is a module, else to ``pkg`` itself
(its ``__init__``). Importing a submodule runs its parents' ``__init__`` too; those implicit edges
are left out, as grimp and import-linter leave them out.

Usage: ``python benchmarks/import_circles.py [package ...]`` (default: engine archivist_tui).
Exit status 1 when there is a circle. tests/test_import_circles.py runs it as a test.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("engine", "archivist_tui")


def module_files(root: Path, packages: tuple[str, ...]) -> dict[str, Path]:
    """Map each dotted module name under ``packages`` to its source file."""
    modules: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _base(module: str, path: Path, level: int, name: str | None) -> str:
    """Resolve a relative ``from ... import`` to the absolute name it refers to."""
    if level == 0:
        return name or ""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    package = package[: len(package) - (level - 1)]
    return ".".join(package + ([name] if name else []))


def _owner(name: str, modules: dict[str, Path]) -> str | None:
    """The innermost known module that ``name`` lies in (the module itself or a parent package)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def import_graph(root: Path = ROOT, packages: tuple[str, ...] = PACKAGES) -> dict[str, set[str]]:
    """Edges ``importer -> imported`` between the modules of ``packages``, lazy imports included."""
    modules = module_files(root, packages)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _base(module, path, node.level, node.module)
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    targets.append(full if full in modules else base)
            for target in targets:
                owner = _owner(target, modules)
                if owner is not None and owner != module:
                    graph[module].add(owner)
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
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
    return sorted(found)


def main(argv: list[str] | None = None) -> int:
    packages = tuple(argv if argv else PACKAGES)
    graph = import_graph(ROOT, packages)
    found = circles(graph)
    edges = sum(len(targets) for targets in graph.values())
    print(f"{len(graph)} modules, {edges} imports between them (lazy ones included)")
    if not found:
        print("no import circles")
        return 0
    for component in found:
        members = set(component)
        print(f"circle of {len(component)}:")
        for module in component:
            inside = sorted(graph[module] & members)
            print(f"  {module} -> {', '.join(inside)}")
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
