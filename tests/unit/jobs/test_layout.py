"""The jobs package's import rules, read from the source: jobs never names the chat side, imports no project
module inside a function, its modules and packages import each other without cycles, and jobs.hyperv imports
only itself."""

from __future__ import annotations

import ast
import re
from pathlib import Path

JOBS = Path(__file__).resolve().parents[3] / "jobs"
OURS = ("jobs", "bot", "lab")


def _module(path: Path) -> str:
    parts = path.relative_to(JOBS.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[ast.stmt, str]]:
    """(statement, module imported) of every import in the file whose top package is ours."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(node, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [(node, f"{node.module}.{alias.name}") for alias in node.names]
    return [(node, name) for node, name in found if name.split(".")[0] in OURS]


FILES = sorted(JOBS.rglob("*.py"))
MODULES = {_module(p) for p in FILES}


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in FILES:
        targets = set()
        for _, name in _imports(path):  # `from jobs.x import y`: y is a module or a name in jobs.x
            targets.add(name if name in MODULES else name.rpartition(".")[0])
        graph[_module(path)] = {t for t in targets if t in MODULES}
    return graph


def test_jobs_never_names_the_chat_side() -> None:
    named = re.compile(r"\bbot\b")
    offenders = [f"{p.relative_to(JOBS.parent)}:{n}" for p in FILES
                 for n, line in enumerate(p.read_text().splitlines(), 1) if named.search(line)]
    assert offenders == []


def test_no_project_import_inside_a_function() -> None:
    local = [f"{p.relative_to(JOBS.parent)}:{node.lineno} {name}" for p in FILES
             for node, name in _imports(p) if node.col_offset > 0]  # indented: inside a def, class or if
    assert local == []


def _sibling_edges(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """a -> b for siblings a, b (modules or packages under one package) when something in a imports b."""
    edges: dict[str, set[str]] = {}
    for importer, targets in graph.items():
        for target in targets:
            i, t = importer.split("."), target.split(".")
            depth = next((n for n, (x, y) in enumerate(zip(i, t)) if x != y), None)
            if depth is not None and depth < len(i) and depth < len(t):
                edges.setdefault(".".join(i[:depth + 1]), set()).add(".".join(t[:depth + 1]))
    return edges


def test_no_import_cycles_between_siblings_and_hyperv_is_the_bottom() -> None:
    """No cycle among the modules and packages of one package, at any depth (what import-linter's
    acyclic_siblings contract checks); module-level cycles are among them."""
    graph = _graph()
    assert all(t.startswith("jobs.hyperv") for m, ts in graph.items() if m.startswith("jobs.hyperv") for t in ts)
    edges, done = _sibling_edges(graph), set()

    def visit(node: str, path: tuple[str, ...]) -> None:
        assert node not in path, "import cycle: " + " -> ".join((*path[path.index(node):], node))
        if node in done:
            return
        for target in sorted(edges.get(node, ())):
            visit(target, (*path, node))
        done.add(node)

    for node in sorted(edges):
        visit(node, ())
