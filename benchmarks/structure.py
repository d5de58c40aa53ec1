"""Print the largest modules and functions of engine/ and archivist_tui/ (lines, from the syntax tree).

With benchmarks/import_circles.py (the import circles) and the ``duplicates`` listing it is how the
structure is measured before and after a reorganisation.

Usage: ``python benchmarks/structure.py [--top N] [package ...]`` (default: 12, engine archivist_tui).
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from import_circles import PACKAGES, ROOT, module_files  # noqa: E402


def sizes(packages: tuple[str, ...]) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """(lines, module) and (lines, module:function) pairs, largest first."""
    modules, functions = [], []
    for name, path in module_files(ROOT, packages).items():
        text = path.read_text(encoding="utf-8")
        modules.append((len(text.splitlines()), name))
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                functions.append((node.end_lineno - node.lineno + 1, f"{name}:{node.name}"))
    return sorted(modules, reverse=True), sorted(functions, reverse=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("packages", nargs="*", default=list(PACKAGES))
    args = parser.parse_args(argv)
    modules, functions = sizes(tuple(args.packages))
    print(f"{len(modules)} modules, {sum(n for n, _ in modules)} lines, {len(functions)} functions")
    print("largest modules:")
    for n, name in modules[:args.top]:
        print(f"  {n:5d}  {name}")
    print("largest functions:")
    for n, name in functions[:args.top]:
        print(f"  {n:5d}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
