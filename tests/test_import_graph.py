"""No import circle anywhere in the package: every module can be read, and changed, after the ones
it imports. Imports under ``if TYPE_CHECKING:`` do not count (they never run); imports inside
functions do (they run, only later). The graph is grimp's, the library behind import-linter."""

from __future__ import annotations

import sys

import grimp


def import_cycles(package: str) -> list[list[str]]:
    """The modules of ``package`` that import each other in a circle, one sorted list per circle
    (Tarjan's strongly connected components of the import graph, those of two or more modules)."""
    graph = grimp.build_graph(package, exclude_type_checking_imports=True, cache_dir=None)
    edges = {module: sorted(graph.find_modules_directly_imported_by(module)) for module in graph.modules}
    index: dict[str, int] = {}
    lowest: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = lowest[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in edges.get(module, []):
            if imported not in index:
                visit(imported)
                lowest[module] = min(lowest[module], lowest[imported])
            elif imported in on_stack:
                lowest[module] = min(lowest[module], index[imported])
        if lowest[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(edges):
        if module not in index:
            visit(module)
    return cycles


def test_the_package_has_no_import_cycle():
    assert import_cycles("rft_plugins") == []


def test_a_circle_through_a_function_level_import_is_found(tmp_path, monkeypatch):
    package = tmp_path / "circular_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from . import b\n")
    (package / "b.py").write_text("def later():\n    from . import c\n")
    (package / "c.py").write_text("from typing import TYPE_CHECKING\nfrom .a import *\nif TYPE_CHECKING:\n    from . import d\n")
    (package / "d.py").write_text("from . import c\n")  # c -> d only for type checkers: no circle
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        assert import_cycles("circular_pkg") == [["circular_pkg.a", "circular_pkg.b", "circular_pkg.c"]]
    finally:
        for name in [name for name in sys.modules if name.startswith("circular_pkg")]:
            del sys.modules[name]
