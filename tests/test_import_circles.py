"""No import circles inside engine/ and archivist_tui/, lazy imports inside functions included.

benchmarks/import_circles.py reads every module's syntax tree (about a second) and finds the
strongly connected components of the import graph. lint-imports' contracts (pyproject.toml) keep
the same circles out package by package; this test is the module-by-module check.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Circles that remain (none now): each may shrink or vanish, none may grow, and no new one may appear.
KNOWN: list[set[str]] = []


def _tool():
    spec = importlib.util.spec_from_file_location("import_circles", ROOT / "benchmarks" / "import_circles.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_no_import_circles_in_engine_and_the_workstation():
    tool = _tool()
    graph = tool.import_graph(ROOT, ("engine", "archivist_tui"))
    new = [c for c in tool.circles(graph) if not any(set(c) <= known for known in KNOWN)]
    assert not new, "import circles (module -> modules it imports inside the circle):\n" + "\n".join(
        f"  {m} -> {sorted(graph[m] & set(c))}" for c in new for m in c)


def test_lazy_and_relative_imports_count(tmp_path):
    """The tool sees an import inside a function and a relative one, so a circle made of them is found."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from pkg.sub import b\n    return b\n")
    (pkg / "sub" / "b.py").write_text("from .. import c\n")
    (pkg / "c.py").write_text("from pkg import a as _a  # noqa\n")
    (pkg / "d.py").write_text("import pkg.a\n")
    tool = _tool()
    graph = tool.import_graph(tmp_path, ("pkg",))
    assert graph["pkg.a"] == {"pkg.sub.b"}
    assert graph["pkg.sub.b"] == {"pkg.c"}
    assert tool.circles(graph) == [["pkg.a", "pkg.c", "pkg.sub.b"]]
